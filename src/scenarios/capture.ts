/**
 * Observing the UDP traffic of the nodes in this process, for the replay and forgery scenarios: while a tap is
 * open, every datagram any node:dgram socket in this process sends is copied (bytes, source port, destination)
 * before it goes out unchanged. It wraps `dgram.Socket.prototype.send` for the duration of the tap only and
 * restores it when the last tap closes. Nothing is delayed, dropped or altered.
 */
import { createSocket, Socket } from "node:dgram";

export interface CapturedDatagram {
  fromPort: number;
  toHost: string;
  toPort: number;
  bytes: Uint8Array;
}

type Listener = (datagram: CapturedDatagram) => void;

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
export function tapUdp(listener: Listener): () => void {
  if (!originalSend) {
    const original = Socket.prototype.send;
    originalSend = original;
    const patched = function (this: Socket, ...args: unknown[]) {
      const datagram = datagramOf(this, args);
      if (datagram) for (const l of listeners) l(datagram);
      return (original as (...a: unknown[]) => void).apply(this, args);
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

/** Sends raw datagrams from a fresh socket (an attacker's), waiting until each was handed to the kernel. */
export async function sendRaw(
  host: string,
  datagrams: readonly { port: number; bytes: Uint8Array }[],
): Promise<void> {
  const socket = createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, host, () => resolve());
    });
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) =>
        socket.send(d.bytes, d.port, host, (error) => (error ? reject(error) : resolve())),
      );
    }
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
