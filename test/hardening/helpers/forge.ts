/**
 * What an attacker on the network can make of the session layer's wire (src/session/wire.ts) without the keys it
 * lacks, and a test's own view of a node's sealed traffic: its raw wire datagrams and the engine datagrams its
 * sessions opened. (capture.ts decodes engine datagrams; these are the session layer's.)
 */

import { randomBytes } from "node:crypto";
import type { Socket } from "node:dgram";
import type { Address, PeerId } from "../../../src/engine/types.ts";
import { InitiatorHandshake, staticKeyPair } from "../../../src/session/handshake.ts";
import { Sessions } from "../../../src/session/sessions.ts";
import {
  encodeInitiation,
  encodeTransport,
  transportHeader,
  writeTimestamp,
} from "../../../src/session/wire.ts";
import type { Capture } from "./capture.ts";
import { engineOf, socketOf, tunnelOf } from "./capture.ts";

/**
 * A well-formed initiation to `recipientStatic` (mac1 included: the recipient's public key is public) from the
 * static key `claimed`, its Diffie-Hellman done with `secret`. With the claimed key's own secret it is a real
 * handshake (refused as unknown-key unless pinned); with any other secret it claims a key it does not hold, and
 * fails to verify (decrypt-failed).
 */
export function forgedInitiation(
  claimed: Uint8Array,
  secret: Uint8Array,
  recipientStatic: Uint8Array,
  timestampMs = Date.now(),
): Uint8Array {
  const local = { publicKey: new Uint8Array(claimed), secretKey: staticKeyPair(secret).secretKey };
  const handshake = new InitiatorHandshake(
    local,
    recipientStatic,
    randomBytes(32),
    writeTimestamp(timestampMs),
  );
  const bytes = encodeInitiation(randomBytes(4).readUInt32BE(0), handshake.message, recipientStatic);
  handshake.erase();
  return bytes;
}

/** A real initiation from the holder of `secret` (an X25519 private key): its own key, fully verifiable. */
export function ownInitiation(secret: Uint8Array, recipientStatic: Uint8Array): Uint8Array {
  return forgedInitiation(staticKeyPair(secret).publicKey, secret, recipientStatic);
}

/** A transport datagram under an index, counter and ciphertext of the forger's choosing. */
export function forgedTransport(receiver: number, counter: number, ciphertextBytes: number): Uint8Array {
  return encodeTransport(transportHeader(receiver, counter), randomBytes(16 + ciphertextBytes));
}

/** The X25519 public key of a secret key (a user's pinned static key). */
export function staticPublicOf(x25519PrivateKey: Uint8Array): Uint8Array {
  return staticKeyPair(x25519PrivateKey).publicKey;
}

/** Records every datagram `node`'s socket sends from now on, as it went on the wire (sealed). */
export function tapWire(node: object, into: Uint8Array[]): void {
  const socket = socketOf(node);
  const send = socket.send.bind(socket) as (...args: unknown[]) => void;
  (socket as unknown as { send: (...args: unknown[]) => void }).send = (...args: unknown[]) => {
    if (args[0] instanceof Uint8Array) into.push(Uint8Array.from(args[0]));
    send(...args);
  };
}

/** Records every engine datagram `node`'s sessions open from now on: what the engine is handed. */
export function tapOpened(node: object, capture: Capture): void {
  const sessions = tunnelOf(node).sessions;
  const self = engineOf(node).selfId;
  const receive = sessions.receive.bind(sessions);
  sessions.receive = (now, from, bytes) => {
    const opened = receive(now, from, bytes);
    if (opened) {
      const plaintext = Uint8Array.from(opened.plaintext);
      capture.tap({ route: 0, direction: "forward", from: opened.peer, to: self, bytes: plaintext });
    }
    return opened;
  };
}

/**
 * A peer's session layer run by the test itself over a plain socket (sans-IO Sessions): the holder of that peer's
 * keys, who can seal real datagrams, and then stop answering (`detach`) to replay them.
 */
export class SocketSession {
  readonly sessions: Sessions;
  /** Every datagram this side put on the wire. */
  readonly sent: Uint8Array[] = [];
  private attached = true;

  constructor(
    private readonly socket: Socket,
    privateKey: Uint8Array,
    peer: { id: PeerId; staticKey: Uint8Array; address: Address },
  ) {
    this.sessions = new Sessions(staticKeyPair(privateKey), [{ ...peer }], (n) => randomBytes(n));
    socket.on("message", (bytes, rinfo) => {
      if (!this.attached) return;
      this.sessions.receive(Date.now(), `${rinfo.address}:${rinfo.port}`, new Uint8Array(bytes));
      this.drain();
    });
  }

  send(peer: PeerId, plaintext: Uint8Array): void {
    this.sessions.send(Date.now(), peer, plaintext);
    this.drain();
  }

  /** Stops reading the socket: the peer's handshakes go unanswered from here on. */
  detach(): void {
    this.attached = false;
  }

  private drain(): void {
    for (let t = this.sessions.pollTransmit(); t; t = this.sessions.pollTransmit()) {
      const [host, port] = [
        t.to.slice(0, t.to.lastIndexOf(":")),
        Number(t.to.slice(t.to.lastIndexOf(":") + 1)),
      ];
      this.sent.push(t.bytes);
      this.socket.send(t.bytes, port, host);
    }
  }
}
