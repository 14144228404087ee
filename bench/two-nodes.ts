import type { EngineConfig } from "../src/engine/config.ts";
import { DATA_FIXED_BYTES, DATA_PROOF_MAX_BYTES, HELLO_BYTES } from "../src/engine/wire.ts";
import { TRANSPORT_OVERHEAD } from "../src/session/wire.ts";

/**
 * Two real nodes in two processes over loopback: node 0 sends 200-byte messages closed-loop to node 1 (broadcast,
 * then private), with the same loss injected on every datagram in both directions. Reports delivered msgs/s,
 * delivery latency, wire bytes and CPU per delivered message.
 */

import { ppmOf } from "../src/faults/ppm.ts";
import { ProcCluster } from "./procs.ts";
import type { NodeReport } from "./protocol.ts";
import { type Summary, summarize } from "./stats.ts";

export interface LoadPoint {
  kind: "broadcast" | "private";
  /** Injected loss on each direction of every link (lossOutPpm on every node). */
  loss: number;
  nodes: number;
  /** Distinct messages delivered per second inside the measurement window (summed over receivers). */
  msgsPerSec: number;
  latency: Summary;
  sent: number;
  failed: number;
  duplicates: number;
  /** Every message sent reached every recipient exactly once before the drain deadline. */
  exactlyOnce: boolean;
  drainMs: number;
  /** Over the window, per delivered message. */
  cpuMicrosPerMsg: number;
  wireBytesPerMsg: { data: number; ack: number; hello: number; total: number; datagrams: number };
  retransmitsPerMsg: number;
  /** The part of retransmitsPerMsg sent early (a later frame was acknowledged first); the rest are timeouts. */
  earlyRetransmitsPerMsg: number;
  /** Copies of frames the receiver already had (spurious retransmits and duplicated datagrams), per message. */
  duplicateFramesPerMsg: number;
  /** The same link at a light, chat-like load (open loop, one message every LIGHT_PACE_MS): protocol latency without queueing. */
  light?: { msgsPerSec: number; latency: Summary; exactlyOnce: boolean; retransmitsPerMsg: number };
}

/** The light-load probe's pace: 100 messages/s. */
export const LIGHT_PACE_MS = 10;

export interface PhaseOptions {
  warmupMs: number;
  measureMs: number;
  drainMs: number;
  inflight: number;
  textBytes: number;
  dataDir: string;
  store: "sqlite" | "memory";
  execArgv?: string[];
  config?: Partial<EngineConfig>;
  log: (line: string) => void;
}

/**
 * One load point from every node's report. Deliveries are counted by arrival time against the run's exact window
 * (`measureMs`); counters and CPU are sampled by each node's own timers, which fire late on a busy machine, so they
 * are turned into rates over each node's actual window before being divided by the delivery rate.
 */
export function pointFrom(
  measureMs: number,
  kind: LoadPoint["kind"],
  loss: number,
  reports: NodeReport[],
  drained: boolean,
  drainMs: number,
): LoadPoint {
  let windowReceived = 0;
  let sent = 0;
  let failed = 0;
  let duplicates = 0;
  // Per second, summed over the nodes.
  let cpu = 0;
  let data = 0;
  let ack = 0;
  let hello = 0;
  let datagrams = 0;
  let retransmits = 0;
  let early = 0;
  let duplicateFrames = 0;
  const latencies: number[] = [];
  for (const r of reports) {
    windowReceived += r.windowReceived;
    sent += r.sent;
    failed += r.failed;
    duplicates += r.duplicates;
    for (const l of r.latencies) latencies.push(l);
    const s = r.stats;
    if (!s || !(r.windowMs > 0)) continue;
    const perSec = 1000 / r.windowMs;
    cpu += r.cpuMicros * perSec;
    datagrams += s.datagramsOut * perSec;
    retransmits += s.retransmits * perSec;
    early += s.earlyRetransmits * perSec;
    duplicateFrames += s.duplicates * perSec;
    // On the wire, each as its session sealed it: the engine counts DATA bytes and HELLO has a fixed size; the rest
    // of what the session layer sent is ACKs, handshakes and keepalives.
    const sealedData = s.dataBytesOut + s.dataDatagramsOut * TRANSPORT_OVERHEAD;
    const sealedHello = s.hellosSent * SEALED_HELLO_BYTES;
    data += sealedData * perSec;
    ack += (s.sessions.wireBytesOut - sealedHello - sealedData) * perSec;
    hello += sealedHello * perSec;
  }
  const msgsPerSec = (windowReceived * 1000) / measureMs;
  const per = (x: number) => (msgsPerSec > 0 ? x / msgsPerSec : Number.NaN);
  return {
    kind,
    loss,
    nodes: reports.length,
    msgsPerSec,
    latency: summarize(latencies),
    sent,
    failed,
    duplicates,
    exactlyOnce: drained && failed === 0 && duplicates === 0,
    drainMs,
    cpuMicrosPerMsg: per(cpu),
    wireBytesPerMsg: {
      data: per(data),
      ack: per(ack),
      hello: per(hello),
      total: per(data + ack + hello),
      datagrams: per(datagrams),
    },
    retransmitsPerMsg: per(retransmits),
    earlyRetransmitsPerMsg: per(early),
    duplicateFramesPerMsg: per(duplicateFrames),
  };
}

/** A HELLO as it crosses the wire: fixed-size, sealed in its session (docs/PROTOCOL.md §5, §14). */
const SEALED_HELLO_BYTES = HELLO_BYTES + TRANSPORT_OVERHEAD;

/**
 * The largest DATA datagram carrying `payload` bytes on the wire: fixed fields, payload, the batch signature of a
 * full batch (index, size, a 4-hash audit path, the signature; docs/PROTOCOL.md §3), sealed in its session.
 */
export function dataDatagramBytes(payload: number): number {
  return DATA_FIXED_BYTES + payload + DATA_PROOF_MAX_BYTES + TRANSPORT_OVERHEAD;
}

export async function twoNodes(
  options: PhaseOptions & { losses: number[]; kinds?: LoadPoint["kind"][] },
): Promise<LoadPoint[]> {
  const points: LoadPoint[] = [];
  const cluster = await ProcCluster.start({
    nodes: 2,
    store: options.store,
    dataDir: options.dataDir,
    ...(options.execArgv && { execArgv: options.execArgv }),
    ...(options.config && { config: options.config }),
  });
  try {
    for (const kind of options.kinds ?? (["broadcast", "private"] as const)) {
      for (const loss of options.losses) {
        await cluster.setFaults({ lossOutPpm: ppmOf(loss), lossInPpm: 0 });
        const { reports, drained, drainMs } = await cluster.run({
          send: (i) => (i === 0 ? (kind === "broadcast" ? { kind } : { kind, to: 1 }) : null),
          inflight: options.inflight,
          textBytes: options.textBytes,
          warmupMs: options.warmupMs,
          measureMs: options.measureMs,
          drainMs: options.drainMs,
        });
        const p = pointFrom(options.measureMs, kind, loss, reports, drained, drainMs);
        const probe = await cluster.run({
          send: (i) => (i === 0 ? (kind === "broadcast" ? { kind } : { kind, to: 1 }) : null),
          inflight: options.inflight,
          paceMs: LIGHT_PACE_MS,
          textBytes: options.textBytes,
          warmupMs: options.warmupMs,
          measureMs: options.measureMs,
          drainMs: options.drainMs,
        });
        const light = pointFrom(options.measureMs, kind, loss, probe.reports, probe.drained, probe.drainMs);
        p.light = {
          msgsPerSec: light.msgsPerSec,
          latency: light.latency,
          exactlyOnce: light.exactlyOnce,
          retransmitsPerMsg: light.retransmitsPerMsg,
        };
        points.push(p);
        options.log(
          `  2 nodes ${kind.padEnd(9)} loss ${(loss * 100).toFixed(0).padStart(2)}%: ${p.msgsPerSec.toFixed(0)} msg/s, ` +
            `p50 ${p.latency.p50.toFixed(2)} p99 ${p.latency.p99.toFixed(2)} max ${p.latency.max.toFixed(2)} ms, ` +
            `exactly once ${p.exactlyOnce}, retransmits ${p.retransmitsPerMsg.toFixed(2)}/msg (early ${p.earlyRetransmitsPerMsg.toFixed(2)}), duplicates ${p.duplicateFramesPerMsg.toFixed(2)}/msg; light load (${1000 / LIGHT_PACE_MS}/s): p50 ${light.latency.p50.toFixed(2)} p99 ${light.latency.p99.toFixed(2)} ms`,
        );
      }
    }
  } finally {
    await cluster.setFaults({ lossOutPpm: 0, lossInPpm: 0 }).catch(() => {});
    await cluster.stop();
  }
  return points;
}
