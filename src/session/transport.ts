/**
 * A session's AEAD for one direction: ChaCha20-Poly1305 under a key from the handshake, with the datagram's
 * counter as Noise's nonce (noise-handshake's CipherState, so nonce encoding and tags are Noise's own). UDP loses
 * and reorders, so the counter travels with each datagram and is set explicitly for every seal and open, the way
 * WireGuard's transport messages carry theirs; the replay window (replay-window.ts) decides which counters to take.
 */
import CipherState from "noise-handshake/cipher.js";
import { KEY_BYTES } from "./handshake.ts";

export const TAG_BYTES = 16;
/**
 * The highest counter a key may use. noise-handshake encodes the low 32 bits of Noise's 64-bit nonce, so a key
 * must be replaced before 2^32 datagrams; sessions rekey long before (at a message count far below this).
 */
export const COUNTER_MAX = 2 ** 32 - 1;

const NO_AD = new Uint8Array(0);

export class SessionCipher {
  private state: CipherState | undefined;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError(`a session key is ${KEY_BYTES} bytes`);
    this.state = new CipherState(new Uint8Array(key));
  }

  get erased(): boolean {
    return this.state === undefined;
  }

  /** `plaintext` encrypted and authenticated together with `ad`, under nonce `counter`. */
  seal(counter: number, plaintext: Uint8Array, ad: Uint8Array = NO_AD): Uint8Array {
    const state = this.live();
    checkCounter(counter);
    state.setNonce(counter);
    return new Uint8Array(state.encrypt(plaintext, ad));
  }

  /** The plaintext, or undefined if `ciphertext` (with `ad`, under `counter`) does not verify. */
  open(counter: number, ciphertext: Uint8Array, ad: Uint8Array = NO_AD): Uint8Array | undefined {
    const state = this.live();
    if (!Number.isInteger(counter) || counter < 0 || counter > COUNTER_MAX) return undefined;
    if (ciphertext.length < TAG_BYTES) return undefined;
    state.setNonce(counter);
    try {
      return new Uint8Array(state.decrypt(ciphertext, ad));
    } catch {
      return undefined;
    }
  }

  /** Zeroes the key; any later seal or open is a bug and throws. */
  erase(): void {
    this.state?._clear();
    this.state = undefined;
  }

  private live(): CipherState {
    if (!this.state) throw new Error("this session key was erased");
    return this.state;
  }
}

function checkCounter(counter: number): void {
  if (!Number.isInteger(counter) || counter < 0 || counter > COUNTER_MAX)
    throw new RangeError(`a counter is an integer from 0 to ${COUNTER_MAX}`);
}
