/**
 * One session's keys as one side holds them: a cipher and counter for sending, a cipher and replay window for
 * receiving, the two indices that name it on the wire, and when it was made. Erased as a whole.
 */
import type { Address } from "../engine/types.ts";
import type { SessionKeys } from "./handshake.ts";
import { ReplayWindow } from "./replay-window.ts";
import { SessionCipher } from "./transport.ts";

export class Keypair {
  readonly sender: SessionCipher;
  readonly receiver: SessionCipher;
  readonly replay = new ReplayWindow();
  /** The next counter to send under. */
  sendCounter = 0;
  /** Set for a responder's keypair once the initiator's first transport datagram proved it live. */
  confirmed: boolean;
  /** When a replaced keypair stops opening datagrams; undefined while it is current. */
  eraseAt: number | undefined;

  constructor(
    keys: SessionKeys,
    /** Our index: transport datagrams to us under this session carry it. */
    readonly localIndex: number,
    /** The peer's index, which our transport datagrams carry. */
    readonly remoteIndex: number,
    readonly createdAt: number,
    /** Whether this side initiated it (only the initiator rekeys on age, so both sides do not at once). */
    readonly initiator: boolean,
    /** A responder's: where the initiation came from, i.e. where the peer is, whatever its address said. */
    readonly initiatedFrom?: Address,
  ) {
    this.sender = new SessionCipher(keys.send);
    this.receiver = new SessionCipher(keys.receive);
    keys.erase();
    // The initiator has seen the responder's answer; the responder waits for the initiator's first datagram.
    this.confirmed = initiator;
  }

  get erased(): boolean {
    return this.sender.erased;
  }

  erase(): void {
    this.sender.erase();
    this.receiver.erase();
  }
}

/**
 * A new local index: the 4 random bytes `random` gives, as a big-endian u32, drawn again while `taken` (a name
 * already in use would route another session's datagrams here).
 */
export function freshIndex(
  random: (length: number) => Uint8Array,
  taken: (index: number) => boolean,
): number {
  for (;;) {
    const bytes = random(4);
    const index = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
    if (!taken(index)) return index;
  }
}
