/**
 * Ten real nodes, one process each, every one broadcasting 200-byte messages closed-loop to the nine others, at
 * 0% and 40% loss on every datagram in both directions: total deliveries/s, latency, and whether every message
 * reached every recipient exactly once.
 */

import { ppmOf } from "../src/faults/ppm.ts";
import { ProcCluster } from "./procs.ts";
import { type LoadPoint, type PhaseOptions, pointFrom } from "./two-nodes.ts";

export async function tenNodes(
  options: PhaseOptions & { losses: number[]; nodes: number },
): Promise<LoadPoint[]> {
  const points: LoadPoint[] = [];
  const cluster = await ProcCluster.start({
    nodes: options.nodes,
    store: options.store,
    dataDir: options.dataDir,
    ...(options.execArgv && { execArgv: options.execArgv }),
    ...(options.config && { config: options.config }),
  });
  try {
    for (const loss of options.losses) {
      await cluster.setFaults({ lossOutPpm: ppmOf(loss), lossInPpm: 0 });
      const { reports, drained, drainMs } = await cluster.run({
        send: () => ({ kind: "broadcast" }),
        inflight: options.inflight,
        textBytes: options.textBytes,
        warmupMs: options.warmupMs,
        measureMs: options.measureMs,
        drainMs: options.drainMs,
      });
      const p = pointFrom(options.measureMs, "broadcast", loss, reports, drained, drainMs);
      points.push(p);
      options.log(
        `  ${options.nodes} nodes broadcast loss ${(loss * 100).toFixed(0).padStart(2)}%: ${p.msgsPerSec.toFixed(0)} deliveries/s, ` +
          `p50 ${p.latency.p50.toFixed(2)} p99 ${p.latency.p99.toFixed(2)} max ${p.latency.max.toFixed(2)} ms, ` +
          `${p.sent} sent, exactly once ${p.exactlyOnce} (drained in ${p.drainMs.toFixed(0)} ms)`,
      );
    }
  } finally {
    await cluster.setFaults({ lossOutPpm: 0, lossInPpm: 0 }).catch(() => {});
    await cluster.stop();
  }
  return points;
}
