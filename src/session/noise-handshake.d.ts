/**
 * The part of Holepunch's noise-handshake (CommonJS, no type declarations ship with it) that src/session calls.
 * Buffers in, buffers out; `send`/`recv` throw on a message that is too short or fails to decrypt.
 */
declare module "noise-handshake" {
  export interface KeyPair {
    publicKey: Uint8Array;
    secretKey: Uint8Array;
  }

  export default class NoiseState {
    constructor(pattern: "IK", initiator: boolean, staticKeyPair: KeyPair);
    /** The local ephemeral key pair; set before the first `send` to choose it (it is erased on completion). */
    e: KeyPair | null;
    /** The remote static public key, once known. */
    rs: Uint8Array | null;
    complete: boolean;
    /** The transport keys, once complete. */
    tx: Uint8Array | null;
    rx: Uint8Array | null;
    /** The handshake hash h, once complete. */
    hash: Uint8Array | null;
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Uint8Array;
    recv(message: Uint8Array): Uint8Array;
  }
}

declare module "noise-handshake/dh.js" {
  import type { KeyPair } from "noise-handshake";

  const curve: {
    /** With `secretKey`, its public key (the buffer is kept, not copied); without, a fresh random pair. */
    generateKeyPair(secretKey?: Uint8Array): KeyPair;
  };
  export default curve;
}
