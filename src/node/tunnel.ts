/**
 * The session layer between the engine and the wire, as ChatNode and the simulator both run it: every datagram
 * the engine sends a peer is sealed under that pair's session (sessions.ts), every datagram from the wire is
 * opened there first, and the engine sees only what a session authenticated, with the peer it came through.
 * Sans-IO (the caller's clock, its socket as a callback) so that the simulator drives this same code.
 */
import type { Address, PeerId } from "../engine/types.ts";
import type { SessionEvent } from "../session/events.ts";
import type { Sessions } from "../session/sessions.ts";

/** The part of the engine the tunnel feeds. */
export interface TunnelEngine {
  handleDatagram(now: number, from: Address, bytes: Uint8Array, sender: PeerId): void;
}

export class Tunnel {
  constructor(
    readonly sessions: Sessions,
    private readonly engine: TunnelEngine,
    private readonly send: (to: Address, bytes: Uint8Array) => void,
    private readonly onEvent: (event: SessionEvent) => void,
  ) {}

  /** An engine datagram for `peer`: sealed now, or held while the pair's handshake runs. */
  outbound(now: number, peer: PeerId, bytes: Uint8Array): void {
    this.sessions.send(now, peer, bytes);
    this.drain();
  }

  /** A datagram from the wire; the engine gets it if a session opens it. */
  inbound(now: number, from: Address, bytes: Uint8Array): void {
    const opened = this.sessions.receive(now, from, bytes);
    this.drain();
    if (opened) this.engine.handleDatagram(now, from, opened.plaintext, opened.peer);
  }

  /** A handshake for `peer` to `address`, a place it may be; only an authenticated answer moves it there. */
  tryAddress(now: number, peer: PeerId, address: Address): void {
    this.sessions.tryAddress(now, peer, address);
    this.drain();
  }

  handleTimeout(now: number): void {
    this.sessions.handleTimeout(now);
    this.drain();
  }

  pollTimeout(): number | undefined {
    return this.sessions.pollTimeout();
  }

  private drain(): void {
    for (let t = this.sessions.pollTransmit(); t; t = this.sessions.pollTransmit()) this.send(t.to, t.bytes);
    for (let e = this.sessions.pollEvent(); e; e = this.sessions.pollEvent()) this.onEvent(e);
  }
}

/** The engine's and the tunnel's timers as one, for the loop (or the simulator) to arm a single timer. */
export function combinedTimers(
  engine: { handleTimeout(now: number): void; pollTimeout(): number | undefined },
  tunnel: Tunnel,
): { handleTimeout(now: number): void; pollTimeout(): number | undefined } {
  return {
    handleTimeout(now) {
      engine.handleTimeout(now);
      tunnel.handleTimeout(now);
    },
    pollTimeout() {
      const a = engine.pollTimeout();
      const b = tunnel.pollTimeout();
      return a === undefined ? b : b === undefined ? a : Math.min(a, b);
    },
  };
}
