/**
 * The session handshake: Noise IK (Noise_IK_25519_ChaChaPoly_BLAKE2b) as Holepunch's noise-handshake implements it,
 * the pattern WireGuard uses. The initiator already knows the responder's static key (pinned as a contact), so one
 * round trip authenticates both sides and yields a pair of transport keys; the initiator's identity travels
 * encrypted. Sans-IO: the ephemeral secret is injected (the runtime draws it from libsodium, the simulator from its
 * seed), nothing here reads a clock or a socket.
 *
 * Forward secrecy rests on the ephemeral secrets: each side's is erased the moment its half of the handshake is
 * done, as are the chaining key and hash inside the Noise state, so a later theft of both static keys cannot
 * recompute the transport keys of a recorded session.
 */
import NoiseState, { type KeyPair } from "noise-handshake";
import curve from "noise-handshake/dh.js";

export const NOISE_PROTOCOL = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
/** Mixed into the handshake hash: a handshake made for another protocol or version cannot complete here. */
export const SESSION_PROLOGUE: Uint8Array = new TextEncoder().encode("chatnode session v2");
export const KEY_BYTES = 32;
/** Initiation: ephemeral key (32), encrypted static key (32 + 16), payload tag (16). */
export const INITIATION_OVERHEAD = 96;
/** Response: ephemeral key (32), payload tag (16). */
export const RESPONSE_OVERHEAD = 48;

/**
 * Why a handshake message was refused. `decrypt-failed` covers every message that does not verify: a changed byte,
 * the wrong responder, a low-order (all-zero-DH) ephemeral key. `unknown-key`: the initiator's static key is not
 * one this node has pinned.
 */
export type HandshakeFailure = "bad-length" | "decrypt-failed" | "unknown-key";

export type HandshakeResult<T> = { ok: true; value: T } | { ok: false; reason: HandshakeFailure };

/** A static X25519 key pair for Noise, from the user's existing X25519 private key. */
export function staticKeyPair(privateKey: Uint8Array): KeyPair {
  if (privateKey.length !== KEY_BYTES) throw new RangeError(`an X25519 private key is ${KEY_BYTES} bytes`);
  return curve.generateKeyPair(new Uint8Array(privateKey));
}

/** What a completed handshake gives one side: a key for each direction, the handshake hash, the peer's key. */
export class SessionKeys {
  constructor(
    readonly send: Uint8Array,
    readonly receive: Uint8Array,
    /** Noise's h: the same on both sides, unique to this handshake (a session's name, a channel binding). */
    readonly handshakeHash: Uint8Array,
    readonly remoteStatic: Uint8Array,
  ) {}

  erase(): void {
    this.send.fill(0);
    this.receive.fill(0);
    this.handshakeHash.fill(0);
  }
}

/**
 * The initiator's half. The first message is ready at construction; `finish` takes the response. A response that
 * does not verify (noise, a forgery, a stray retransmission of another session's) leaves the handshake waiting for
 * the real one, because each attempt runs on a fresh Noise state rebuilt from the kept ephemeral secret.
 */
export class InitiatorHandshake {
  readonly message: Uint8Array;
  private ephemeralSecret: Uint8Array | undefined;

  constructor(
    private readonly local: KeyPair,
    private readonly remoteStatic: Uint8Array,
    ephemeralSecret: Uint8Array,
    private readonly payload: Uint8Array = new Uint8Array(0),
    private readonly prologue: Uint8Array = SESSION_PROLOGUE,
  ) {
    if (ephemeralSecret.length !== KEY_BYTES)
      throw new RangeError(`an ephemeral secret is ${KEY_BYTES} bytes`);
    if (remoteStatic.length !== KEY_BYTES) throw new RangeError(`a static public key is ${KEY_BYTES} bytes`);
    this.ephemeralSecret = new Uint8Array(ephemeralSecret);
    const { state, message } = this.begin(this.ephemeralSecret);
    eraseEphemeral(state);
    this.message = message;
  }

  get finished(): boolean {
    return this.ephemeralSecret === undefined;
  }

  /** The session keys and the responder's payload, or why `response` was refused. */
  finish(response: Uint8Array): HandshakeResult<{ keys: SessionKeys; payload: Uint8Array }> {
    const secret = this.ephemeralSecret;
    if (!secret) throw new Error("this handshake already finished or was erased");
    if (response.length < RESPONSE_OVERHEAD) return { ok: false, reason: "bad-length" };
    const { state } = this.begin(secret);
    let payload: Uint8Array;
    try {
      payload = new Uint8Array(state.recv(new Uint8Array(response)));
    } catch {
      eraseEphemeral(state);
      return { ok: false, reason: "decrypt-failed" };
    }
    this.erase();
    return { ok: true, value: { keys: takeKeys(state, this.remoteStatic), payload } };
  }

  /** Forgets the ephemeral secret: the handshake can no longer finish (given up, or superseded). */
  erase(): void {
    this.ephemeralSecret?.fill(0);
    this.ephemeralSecret = undefined;
  }

  private begin(secret: Uint8Array): { state: NoiseState; message: Uint8Array } {
    const state = new NoiseState("IK", true, this.local);
    state.initialise(this.prologue, this.remoteStatic);
    // A copy: Noise zeroes the ephemeral secret it was given when the handshake completes.
    state.e = curve.generateKeyPair(new Uint8Array(secret));
    const message = new Uint8Array(state.send(this.payload));
    return { state, message };
  }
}

/**
 * The responder's half: `read` checks an initiation and who sent it, `reply` answers it. Two steps, so that the
 * caller can decide on the initiator's payload (its epoch, say) before spending an ephemeral key on the reply.
 */
export class ResponderHandshake {
  private state: NoiseState | undefined;

  private constructor(
    state: NoiseState,
    readonly remoteStatic: Uint8Array,
    readonly payload: Uint8Array,
  ) {
    this.state = state;
  }

  /** Reads an initiation; refused unless it verifies and `isPinned` accepts the initiator's static key. */
  static read(
    local: KeyPair,
    message: Uint8Array,
    isPinned: (remoteStatic: Uint8Array) => boolean,
    prologue: Uint8Array = SESSION_PROLOGUE,
  ): HandshakeResult<ResponderHandshake> {
    if (message.length < INITIATION_OVERHEAD) return { ok: false, reason: "bad-length" };
    const state = new NoiseState("IK", false, local);
    state.initialise(prologue);
    let payload: Uint8Array;
    try {
      payload = new Uint8Array(state.recv(new Uint8Array(message)));
    } catch {
      return { ok: false, reason: "decrypt-failed" };
    }
    const remoteStatic = new Uint8Array(state.rs as Uint8Array);
    if (!isPinned(remoteStatic)) return { ok: false, reason: "unknown-key" };
    return { ok: true, value: new ResponderHandshake(state, remoteStatic, payload) };
  }

  /** The response to send and this side's session keys; the ephemeral secret is erased before this returns. */
  reply(
    ephemeralSecret: Uint8Array,
    payload: Uint8Array = new Uint8Array(0),
  ): { message: Uint8Array; keys: SessionKeys } {
    const state = this.state;
    if (!state) throw new Error("this handshake was already answered");
    if (ephemeralSecret.length !== KEY_BYTES)
      throw new RangeError(`an ephemeral secret is ${KEY_BYTES} bytes`);
    this.state = undefined;
    state.e = curve.generateKeyPair(new Uint8Array(ephemeralSecret));
    const message = new Uint8Array(state.send(payload));
    return { message, keys: takeKeys(state, this.remoteStatic) };
  }
}

// recv gets a copy of each message: on completion noise-handshake zeroes the remote ephemeral key it read, which
// is a view into the message it was given.

/** Copies the transport keys and hash out of a completed Noise state and zeroes the state's own copies. */
function takeKeys(state: NoiseState, remoteStatic: Uint8Array): SessionKeys {
  const tx = state.tx as Uint8Array;
  const rx = state.rx as Uint8Array;
  const hash = state.hash as Uint8Array;
  const keys = new SessionKeys(new Uint8Array(tx), new Uint8Array(rx), new Uint8Array(hash), remoteStatic);
  tx.fill(0);
  rx.fill(0);
  hash.fill(0);
  return keys;
}

/** Zeroes the ephemeral secret of a Noise state that will not complete (completion zeroes it itself). */
function eraseEphemeral(state: NoiseState): void {
  state.e?.secretKey.fill(0);
}
