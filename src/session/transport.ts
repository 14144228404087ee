/**
 * A session's AEAD for one direction: ChaCha20-Poly1305 (IETF, libsodium) under a key from the handshake, with the
 * datagram's counter as the nonce exactly as Noise's CipherState forms it (4 zero bytes, then the counter as a
 * 64-bit little-endian integer); test/session/handshake.test.ts holds it to the noise-c vector's transport
 * messages. UDP loses and reorders, so the counter travels with each datagram and is given explicitly for every
 * seal and open, as WireGuard's transport messages carry theirs; the replay window (replay-window.ts) decides
 * which counters to take. libsodium directly rather than noise-handshake's CipherState, which copies every input
 * and allocates a nonce per call: this is the path every datagram takes.
 */
import { sodium } from "../crypto/sodium.ts";
import { KEY_BYTES } from "./handshake.ts";

export const TAG_BYTES = 16;
/** The highest counter a key may use; sessions rekey long before (at a message count far below this). */
export const COUNTER_MAX = 2 ** 32 - 1;

const NO_AD = new Uint8Array(0);

export class SessionCipher {
  private key: Uint8Array | undefined;
  private readonly nonce = new Uint8Array(12);
  private readonly nonceView = new DataView(this.nonce.buffer);

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError(`a session key is ${KEY_BYTES} bytes`);
    this.key = new Uint8Array(key);
  }

  get erased(): boolean {
    return this.key === undefined;
  }

  /** `plaintext` encrypted and authenticated together with `ad`, under nonce `counter`. */
  seal(counter: number, plaintext: Uint8Array, ad: Uint8Array = NO_AD): Uint8Array {
    const key = this.live();
    checkCounter(counter);
    const out = new Uint8Array(plaintext.length + TAG_BYTES);
    sodium().crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, ad, null, this.nonceFor(counter), key);
    return out;
  }

  /** The plaintext, or undefined if `ciphertext` (with `ad`, under `counter`) does not verify. */
  open(counter: number, ciphertext: Uint8Array, ad: Uint8Array = NO_AD): Uint8Array | undefined {
    const key = this.live();
    if (!Number.isInteger(counter) || counter < 0 || counter > COUNTER_MAX) return undefined;
    if (ciphertext.length < TAG_BYTES) return undefined;
    const out = new Uint8Array(ciphertext.length - TAG_BYTES);
    try {
      sodium().crypto_aead_chacha20poly1305_ietf_decrypt(
        out,
        null,
        ciphertext,
        ad,
        this.nonceFor(counter),
        key,
      );
    } catch {
      return undefined;
    }
    return out;
  }

  /** Zeroes the key; any later seal or open is a bug and throws. */
  erase(): void {
    if (this.key) sodium().sodium_memzero(this.key);
    this.key = undefined;
  }

  private nonceFor(counter: number): Uint8Array {
    // Noise: 32 bits of zeros, then n as a little-endian u64 (the high half is zero below 2^32).
    this.nonceView.setUint32(4, counter, true);
    this.nonceView.setUint32(8, 0, true);
    return this.nonce;
  }

  private live(): Uint8Array {
    if (!this.key) throw new Error("this session key was erased");
    return this.key;
  }
}

function checkCounter(counter: number): void {
  if (!Number.isInteger(counter) || counter < 0 || counter > COUNTER_MAX)
    throw new RangeError(`a counter is an integer from 0 to ${COUNTER_MAX}`);
}
