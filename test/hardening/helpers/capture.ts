/**
 * Capturing real ChatNode traffic: a fault-free chaos proxy between the nodes taps every datagram in both
 * directions (sealed session datagrams, src/session/wire.ts), or a node's engine datagrams are tapped before its
 * session seals them (tapInner), and each engine datagram is labelled with what it is (from its type byte and
 * fields) and with who sent it to whom (which its session, not the datagram, says: tapInner knows both).
 */
import { createSocket, type Socket } from "node:dgram";
import { ChaosProxy, type Route, type TapRecord } from "../../../src/chaos/proxy.ts";
import type { Engine } from "../../../src/engine/engine.ts";
import type { MsgId, PeerId } from "../../../src/engine/types.ts";
import { decode, PacketType } from "../../../src/engine/wire.ts";
import type { Tunnel } from "../../../src/node/tunnel.ts";

export interface Captured {
  bytes: Uint8Array;
  hex: string;
  type: PacketType;
  sender: PeerId;
  recipient: PeerId;
  epoch: number;
  /** DATA only. */
  msgId?: MsgId;
  /** DATA, and a BATCH's first frame. */
  seq?: number;
  /** How many message frames it carries: 1 for a DATA, the count for a BATCH. */
  frames?: number;
}

/** Labels an engine datagram sent by `sender` to `recipient` (its session says so; the datagram names neither). */
export function label(bytes: Uint8Array, sender: PeerId, recipient: PeerId): Captured | undefined {
  const d = decode(bytes);
  if (!d.ok) return undefined;
  const p = d.packet;
  return {
    bytes: Uint8Array.from(bytes),
    hex: Buffer.from(bytes).toString("hex"),
    type: p.type,
    sender,
    recipient,
    epoch: p.epoch,
    ...(p.type === PacketType.Data && { msgId: p.msgId, seq: p.seq, frames: 1 }),
    ...(p.type === PacketType.Batch && { seq: p.seq, frames: p.frames.length }),
  };
}

export class Capture {
  readonly all: Captured[] = [];
  private readonly seen = new Set<string>();
  recording = true;

  /** `from` and `to` are the sender's and the recipient's key ids for an engine datagram (tapInner). */
  readonly tap = (record: TapRecord) => {
    if (!this.recording) return;
    const c = label(record.bytes, record.from as PeerId, record.to as PeerId);
    if (!c || this.seen.has(c.hex)) return; // retransmissions are byte-identical: keep one of each
    this.seen.add(c.hex);
    this.all.push(c);
  };

  has(bytes: Uint8Array): boolean {
    return this.seen.has(Buffer.from(bytes).toString("hex"));
  }

  find(hex: string): Captured | undefined {
    return this.all.find((c) => c.hex === hex);
  }

  to(recipient: PeerId): Captured[] {
    return this.all.filter((c) => c.recipient === recipient);
  }

  count(type: PacketType, recipient?: PeerId): number {
    return this.all.filter((c) => c.type === type && (recipient === undefined || c.recipient === recipient))
      .length;
  }
}

/** A fault-free proxy with one route per target port; returns it and its listening ports in the same order. */
export async function captureProxy(
  targets: readonly number[],
  capture: Capture,
): Promise<{ proxy: ChaosProxy; ports: number[] }> {
  const routes: Route[] = targets.map((port) => ({
    listenHost: "127.0.0.1",
    listenPort: 0,
    targetHost: "127.0.0.1",
    targetPort: port,
  }));
  const proxy = await ChaosProxy.start({ routes, tap: capture.tap });
  return { proxy, ports: proxy.ports() };
}

/** A plain UDP socket on 127.0.0.1 (port 0: any free one), for an attacker. */
export async function udpSocket(port = 0): Promise<Socket> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(port, "127.0.0.1", () => {
      s.off("error", reject);
      resolve();
    });
  });
  s.on("error", () => {});
  return s;
}

export function closeSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

export function sendTo(s: Socket, port: number, bytes: Uint8Array, host = "127.0.0.1"): Promise<void> {
  return new Promise((resolve) => s.send(bytes, port, host, () => resolve()));
}

export function addressOf(s: Socket): string {
  const a = s.address();
  return `${a.address}:${a.port}`;
}

/** A node's UDP socket (a private field: tests only, to capture its traffic and to send as if from it). */
export function socketOf(node: object): Socket {
  const socket = (node as { socket?: Socket }).socket;
  if (!socket) throw new Error("the node is not running");
  return socket;
}

/** Records every datagram `node` sends from now on (until it restarts: a new socket is not tapped). */
export function tapSends(node: object, capture: Capture): void {
  const socket = socketOf(node);
  const send = socket.send.bind(socket) as (...args: unknown[]) => void;
  (socket as unknown as { send: (...args: unknown[]) => void }).send = (...args: unknown[]) => {
    const bytes = args[0];
    if (bytes instanceof Uint8Array)
      capture.tap({ route: 0, direction: "forward", from: "", to: "", bytes: Uint8Array.from(bytes) });
    send(...args);
  };
}

/** A node's engine (a private field: tests only). */
export function engineOf(node: object): Engine {
  const engine = (node as { engine?: Engine }).engine;
  if (!engine) throw new Error("the node is not running");
  return engine;
}

/** A node's session layer (a private field: tests only). */
export function tunnelOf(node: object): Tunnel {
  const tunnel = (node as { tunnel?: Tunnel }).tunnel;
  if (!tunnel) throw new Error("the node is not running");
  return tunnel;
}

/**
 * Records every engine datagram `node` hands its session layer from now on, before it is sealed: what an attacker
 * holding that node's session keys would read. (The wire itself carries only sealed datagrams.)
 */
export function tapInner(node: object, capture: Capture): void {
  const tunnel = tunnelOf(node);
  const self = engineOf(node).selfId;
  const outbound = tunnel.outbound.bind(tunnel);
  tunnel.outbound = (now, peer, bytes) => {
    capture.tap({ route: 0, direction: "forward", from: self, to: peer, bytes: Uint8Array.from(bytes) });
    outbound(now, peer, bytes);
  };
}

/**
 * Sends `bytes` from `node` to `peer` as an engine datagram sealed under their session: the attacker who holds
 * `node`'s keys (or that link's session keys), whose packets the session layer lets through to the engine.
 */
export function sendInner(node: object, peer: PeerId, bytes: Uint8Array): void {
  const now = (node as { now(): number }).now();
  tunnelOf(node).outbound(now, peer, bytes);
}

/** A sealed datagram as a node received it: what a network attacker without keys can capture and resend. */
export interface WireRecord {
  bytes: Uint8Array;
  /** The ports it came from and arrived at (every test node is on 127.0.0.1). */
  from: number;
  to: number;
}

/**
 * Records every datagram `node`'s socket receives from now on, until `stop()`: only what reached the node (a
 * datagram sent before it was listening is no replay when it comes later).
 */
export function tapWire(node: object, into: WireRecord[]): { stop(): void } {
  const socket = socketOf(node);
  const to = socket.address().port;
  const record = (bytes: Buffer, rinfo: { port: number }) =>
    into.push({ bytes: Uint8Array.from(bytes), from: rinfo.port, to });
  socket.prependListener("message", record);
  return { stop: () => socket.off("message", record) };
}
