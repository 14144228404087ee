/**
 * Observing the UDP traffic of the nodes in this process, for the replay and forgery scenarios: while a tap is
 * open, every datagram any node:dgram socket in this process sends is copied (bytes, source port, destination)
 * before it goes out unchanged. It wraps `dgram.Socket.prototype.send` for the duration of the tap only and
 * restores it when the last tap closes. A tap delays and alters nothing; only an interception (interceptUdp, an
 * attacker on the path) keeps a datagram from going out.
 *
 * What it sees is what an eavesdropper on the network sees: session datagrams (src/session/wire.ts), sealed. The
 * engine's packets inside them (DATA, ACK, HELLO) cannot be told apart; only the session type can.
 */
import { createSocket, Socket } from "node:dgram";
import { SessionPacketType } from "../session/wire.ts";

export interface CapturedDatagram {
  fromPort: number;
  toHost: string;
  toPort: number;
  bytes: Uint8Array;
}

/** The session datagram types, by name, as the first byte of a datagram on the wire says. */
export type SessionKind = "initiation" | "response" | "transport";

/** What kind of session datagram `bytes` is by its first byte, or undefined if it is none. */
export function sessionKindOf(bytes: Uint8Array): SessionKind | undefined {
  switch (bytes[0]) {
    case SessionPacketType.Initiation:
      return "initiation";
    case SessionPacketType.Response:
      return "response";
    case SessionPacketType.Transport:
      return "transport";
    default:
      return undefined;
  }
}

/** Sees every datagram sent; returning "drop" keeps it from going out (interceptions only). */
type Listener = (datagram: CapturedDatagram) => "drop" | undefined;

const listeners = new Set<Listener>();
let originalSend: Socket["send"] | undefined;

function sourcePort(socket: Socket): number {
  try {
    return socket.address().port;
  } catch {
    return 0;
  }
}

/** The datagram of a send() call: (msg, port, address[, cb]) or (msg, offset, length, port, address[, cb]). */
function datagramOf(socket: Socket, args: unknown[]): CapturedDatagram | undefined {
  const [msg, a, b, c, d] = args;
  if (!(msg instanceof Uint8Array)) return undefined;
  if (typeof a === "number" && typeof b === "string")
    return { fromPort: sourcePort(socket), toHost: b, toPort: a, bytes: Uint8Array.from(msg) };
  if (typeof a === "number" && typeof b === "number" && typeof c === "number" && typeof d === "string")
    return {
      fromPort: sourcePort(socket),
      toHost: d,
      toPort: c,
      bytes: Uint8Array.from(msg.subarray(a, a + b)),
    };
  return undefined;
}

/** Starts copying every datagram sent from this process to `listener`; call the result to stop. */
export function tapUdp(listener: (datagram: CapturedDatagram) => void): () => void {
  return listen((d) => {
    listener(d);
    return undefined;
  });
}

/**
 * An attacker on the path: the first datagram sent that `matches` is taken off the wire (it never reaches its
 * destination) and resolves the result; every other datagram goes out unchanged. `stop` ends the interception
 * (a pending wait then never resolves).
 */
export function interceptUdp(matches: (datagram: CapturedDatagram) => boolean): {
  taken: Promise<CapturedDatagram>;
  stop: () => void;
} {
  let take: (d: CapturedDatagram) => void = () => {};
  const taken = new Promise<CapturedDatagram>((resolve) => {
    take = resolve;
  });
  let done = false;
  const stop = listen((d) => {
    if (done || !matches(d)) return undefined;
    done = true;
    take(d);
    return "drop";
  });
  return { taken, stop };
}

function listen(listener: Listener): () => void {
  if (!originalSend) {
    const original = Socket.prototype.send;
    originalSend = original;
    const patched = function (this: Socket, ...args: unknown[]) {
      const datagram = datagramOf(this, args);
      let drop = false;
      if (datagram) for (const l of listeners) drop = l(datagram) === "drop" || drop;
      if (!drop) return (original as (...a: unknown[]) => void).apply(this, args);
      // Taken off the wire: to the sender it was sent, as a datagram lost later would have been.
      const callback = args.at(-1);
      if (typeof callback === "function") queueMicrotask(() => (callback as (e: null) => void)(null));
      return undefined;
    };
    Socket.prototype.send = patched as unknown as Socket["send"];
  }
  listeners.add(listener);
  let open = true;
  return () => {
    if (!open) return;
    open = false;
    listeners.delete(listener);
    if (listeners.size === 0 && originalSend) {
      Socket.prototype.send = originalSend;
      originalSend = undefined;
    }
  };
}

/**
 * An attacker's socket: sends raw datagrams and records every datagram that comes back to it (a node answering
 * the attacker). Close it when done.
 */
export class AttackerSocket {
  /** Every datagram received, with the port it came from. */
  readonly received: { fromPort: number; bytes: Uint8Array }[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly host: string,
  ) {
    socket.on("message", (bytes, rinfo) =>
      this.received.push({ fromPort: rinfo.port, bytes: Uint8Array.from(bytes) }),
    );
  }

  static async open(host: string): Promise<AttackerSocket> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.on("error", () => {}); // a datagram to a closed port: nothing to the attacker
    return new AttackerSocket(socket, host);
  }

  /** Sends each datagram, waiting until each was handed to the kernel. */
  async send(datagrams: readonly { port: number; bytes: Uint8Array }[]): Promise<void> {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) =>
        this.socket.send(d.bytes, d.port, this.host, (error) => (error ? reject(error) : resolve())),
      );
    }
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

/** Sends raw datagrams from a fresh socket (an attacker's), waiting until each was handed to the kernel. */
export async function sendRaw(
  host: string,
  datagrams: readonly { port: number; bytes: Uint8Array }[],
): Promise<void> {
  const attacker = await AttackerSocket.open(host);
  try {
    await attacker.send(datagrams);
  } finally {
    await attacker.close();
  }
}
