/**
 * Turns a run's measurements into bench/results/latest.json, the Markdown table bench/results/latest.md (every
 * figure with its ratio to the limit it is judged against, and the targets) and the chart bench/results/loss.svg.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StartupResult } from "./costs.ts";
import type { Limits } from "./limits.ts";
import type { OfflinePeersResult } from "./offline-peers.ts";
import type { ScaleResult } from "./scale.ts";
import type { SimScalePhase } from "./sim-scale.ts";
import { ratio } from "./stats.ts";
import { lossChart } from "./svg.ts";
import type { LoadPoint } from "./two-nodes.ts";

export interface BenchResults {
  meta: {
    date: string;
    command: string;
    quick: boolean;
    store: string;
    inflight: number;
    /** Engine settings that differ from DEFAULT_CONFIG (an experiment); empty for the defaults. */
    engineConfig: Record<string, number>;
    textBytes: number;
    node: string;
    /** node:crypto's OpenSSL (absent in results written before it was recorded). */
    openssl?: string;
    cpus: number;
    cpuModel: string;
    loadAvgStart: number[];
    loadAvgEnd: number[];
    gitCommit: string;
    durationS: number;
    measureMs: number;
  };
  /** Measured at the start and again at the end of the run; `limits` is their mean and `noise` their spread. */
  limitsStart: Limits | null;
  limitsEnd: Limits | null;
  limits: Limits | null;
  noise: { verifyPct: number; signPct: number; udxPct: number } | null;
  twoNodes: LoadPoint[];
  tenNodes: LoadPoint[];
  scale: ScaleResult[];
  /** Scale in the simulator (sim-scale.ts): engines on the virtual clock and network, model crypto. */
  simScale: SimScalePhase | null;
  startup: StartupResult | { error: string } | null;
  /** Bytes toward peers that are not running (offline-peers.ts); absent in results written before it existed. */
  offlinePeers?: OfflinePeersResult | null;
  targets: Target[];
  errors: string[];
}

export interface Target {
  name: string;
  value: string;
  goal: string;
  met: boolean | null;
}

/** The mean of two limit measurements (each rate averaged; latency summaries from the first). */
export function meanLimits(a: Limits | null, b: Limits | null): Limits | null {
  if (!a || !b) return a ?? b;
  const m = (x: number, y: number) =>
    Number.isFinite(x) && Number.isFinite(y) ? (x + y) / 2 : Number.isFinite(x) ? x : y;
  const udx =
    "msgsPerSec" in a.udx && "msgsPerSec" in b.udx
      ? { msgsPerSec: m(a.udx.msgsPerSec, b.udx.msgsPerSec), messageBytes: a.udx.messageBytes }
      : a.udx;
  return {
    signPerSec: m(a.signPerSec, b.signPerSec),
    verifyPerSec: m(a.verifyPerSec, b.verifyPerSec),
    opensslSignPerSec: m(a.opensslSignPerSec, b.opensslSignPerSec),
    opensslVerifyPerSec: m(a.opensslVerifyPerSec, b.opensslVerifyPerSec),
    verifyRepeatPerSec: m(a.verifyRepeatPerSec, b.verifyRepeatPerSec),
    sealPerSec: m(a.sealPerSec, b.sealPerSec),
    openPerSec: m(a.openPerSec, b.openPerSec),
    dgram: {
      window1: {
        roundTripsPerSec: m(a.dgram.window1.roundTripsPerSec, b.dgram.window1.roundTripsPerSec),
        rtt: a.dgram.window1.rtt,
      },
      window64: {
        roundTripsPerSec: m(a.dgram.window64.roundTripsPerSec, b.dgram.window64.roundTripsPerSec),
        rtt: a.dgram.window64.rtt,
      },
    },
    udx,
  };
}

export function spreadPct(a: number, b: number): number {
  return (100 * Math.abs(a - b)) / Math.max(1e-9, (a + b) / 2);
}

const udxRate = (l: Limits | null) => (l && "msgsPerSec" in l.udx ? l.udx.msgsPerSec : Number.NaN);

export function evaluateTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const l = r.limits;
  const b0 = r.twoNodes.find((p) => p.kind === "broadcast" && p.loss === 0);
  const b40 = r.twoNodes.find((p) => p.kind === "broadcast" && p.loss === 0.4);
  const verify = l?.verifyPerSec ?? Number.NaN;
  if (b0) {
    const q = ratio(b0.msgsPerSec, verify);
    t.push({
      name: "0% loss: delivered signed msgs/s ÷ Ed25519 verify rate",
      value: `${b0.msgsPerSec.toFixed(0)} ÷ ${verify.toFixed(0)} = ${pct(q)}`,
      goal: "≥ 70%",
      met: Number.isFinite(q) ? q >= 0.7 : null,
    });
  }
  if (b0 && b40) {
    const q = ratio(b40.msgsPerSec, b0.msgsPerSec);
    t.push({
      name: "40% loss both ways: goodput ÷ 0%-loss goodput",
      value: pct(q),
      goal: "≥ 50%",
      met: Number.isFinite(q) ? q >= 0.5 : null,
    });
    t.push({
      name: "40% loss both ways: p99 delivery latency at full load (closed loop, same run as the goodput)",
      value: `${b40.latency.p99.toFixed(1)} ms`,
      goal: "≤ 50 ms",
      met: Number.isFinite(b40.latency.p99) ? b40.latency.p99 <= 50 : null,
    });
    if (b40.light)
      t.push({
        name: "40% loss both ways: p99 delivery latency at light load (100 msgs/s)",
        value: `${b40.light.latency.p99.toFixed(1)} ms`,
        goal: "≤ 50 ms",
        met: Number.isFinite(b40.light.latency.p99) ? b40.light.latency.p99 <= 50 : null,
      });
  }
  const t0 = r.tenNodes.find((p) => p.loss === 0);
  const t40 = r.tenNodes.find((p) => p.loss === 0.4);
  if (t40) {
    t.push({
      name: `${t40.nodes}-node broadcast at 40% loss: every message delivered exactly once`,
      value: `${t40.exactlyOnce ? "yes" : "no"} (${t40.sent} msgs × ${t40.nodes - 1} recipients, ${t40.failed} failed, ${t40.duplicates} dup)`,
      goal: "yes",
      met: t40.exactlyOnce,
    });
  }
  if (t0 && t40) {
    const q = ratio(t40.msgsPerSec, t0.msgsPerSec);
    t.push({
      name: `${t40.nodes}-node broadcast: deliveries/s at 40% ÷ at 0%`,
      value: pct(q),
      goal: "≥ 50%",
      met: Number.isFinite(q) ? q >= 0.5 : null,
    });
  }
  const big = r.scale[r.scale.length - 1];
  if (big) {
    t.push({
      name: `${big.nodes} nodes in one process: one broadcast round fully delivered`,
      value: big.complete
        ? `${big.roundMs.toFixed(0)} ms`
        : `not complete after ${(big.waitedMs / 1000).toFixed(0)} s (${big.deliveries} of ${big.expected})`,
      goal: "< 2000 ms",
      met: big.complete && big.roundMs < 2000,
    });
    t.push({
      name: `${big.nodes} nodes in one process: memory per peer (per node ÷ its ${big.nodes - 1} peers)`,
      value: `${kib(big.bytesPerPeer)} (${kib(big.bytesPerNode)} per node)`,
      goal: "< 50 KiB",
      met: big.bytesPerPeer < 50 * 1024,
    });
  }
  if (r.startup && "medianMs" in r.startup) {
    const s = r.startup;
    t.push({
      name: "start-up to ready (CLI)",
      value: `${n0(s.medianMs)} ms (node boot ${n0(s.nodeBootMs)} + key unlock ${n0(s.unlockMs)} + ChatNode ${n0(s.overheadMs)}; ${times(ratio(s.medianMs, s.nodeBootMs + s.unlockMs))} the two fixed costs${s.withoutExtraCaMs !== null ? `; ${n0(s.withoutExtraCaMs)} ms without NODE_EXTRA_CA_CERTS` : ""})`,
      goal: "< 300 ms",
      met: Number.isFinite(s.medianMs) ? s.medianMs < 300 : null,
    });
  }
  const o = r.offlinePeers;
  if (o) {
    t.push({
      name: `${o.broadcasts} broadcasts in ${o.seconds} s, ${o.silentPeers} peers not running: bytes to them`,
      value: `${n0(o.bytesToSilent)} B in ${n0(o.datagramsToSilent)} datagrams (${pct(o.bytesToSilent / o.limitBytes)} of the limit); the running peer showed ${o.deliveredToRunning}/${o.broadcasts}`,
      goal: `< ${n0(o.limitBytes)} B`,
      met: o.bytesToSilent < o.limitBytes && o.deliveredToRunning === o.broadcasts,
    });
  }
  return t;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "n/a";
}
function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}
function n0(x: number): string {
  return Number.isFinite(x) ? x.toFixed(0) : "n/a";
}
function times(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : "n/a";
}
function ms(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : "n/a";
}

export function markdown(r: BenchResults): string {
  const l = r.limits;
  const verify = l?.verifyPerSec ?? Number.NaN;
  const udx = udxRate(l);
  const rtt = l?.dgram.window1.rtt.p50 ?? Number.NaN;
  const lines: string[] = [];
  lines.push(`# ChatNode benchmark results`, "");
  lines.push(
    `\`${r.meta.command}\` — ${r.meta.date}, commit ${r.meta.gitCommit}, Node ${r.meta.node}, ${r.meta.cpus} × ${r.meta.cpuModel}, ` +
      `load average ${r.meta.loadAvgStart.map((x) => x.toFixed(1)).join("/")} at start, ${r.meta.loadAvgEnd.map((x) => x.toFixed(1)).join("/")} at end; ` +
      `${r.meta.store} store, ${r.meta.inflight} messages in flight per sender, ${r.meta.textBytes}-byte texts, ${r.meta.measureMs} ms windows; engine config ${Object.keys(r.meta.engineConfig).length > 0 ? `**changed**: ${JSON.stringify(r.meta.engineConfig)}` : "default"}; run took ${r.meta.durationS.toFixed(0)} s.`,
    "",
  );
  lines.push("## Limits (same run)", "");
  lines.push("| limit | value | start / end of run |", "| --- | ---: | --- |");
  const se = (f: (x: Limits) => number, digits = 0) =>
    r.limitsStart && r.limitsEnd
      ? `${f(r.limitsStart).toFixed(digits)} / ${f(r.limitsEnd).toFixed(digits)}`
      : "";
  if (l) {
    lines.push(
      `| Ed25519 sign (src/crypto: libsodium, what ChatNode uses) | ${n0(l.signPerSec)} /s | ${se((x) => x.signPerSec)} |`,
    );
    lines.push(
      `| Ed25519 verify (libsodium; the targets' limit) | ${n0(l.verifyPerSec)} /s | ${se((x) => x.verifyPerSec)} |`,
    );
    lines.push(
      `| Ed25519 sign / verify through node:crypto (OpenSSL ${r.meta.openssl ?? "?"}), for reference | ${n0(l.opensslSignPerSec)} / ${n0(l.opensslVerifyPerSec)} /s | ${se((x) => x.opensslVerifyPerSec)} (verify) |`,
    );
    lines.push(
      `| verify of a message whose batch was already checked (another of its batch, or a retransmit; port's memory) | ${n0(l.verifyRepeatPerSec)} /s | ${se((x) => x.verifyRepeatPerSec)} |`,
    );
    lines.push(`| HPKE seal, 200-byte text | ${n0(l.sealPerSec)} /s | ${se((x) => x.sealPerSec)} |`);
    lines.push(`| HPKE open | ${n0(l.openPerSec)} /s | ${se((x) => x.openPerSec)} |`);
    lines.push(
      `| node:dgram round trips, window 1 | ${n0(l.dgram.window1.roundTripsPerSec)} /s (RTT p50 ${ms(l.dgram.window1.rtt.p50)} ms, p99 ${ms(l.dgram.window1.rtt.p99)} ms) | ${se((x) => x.dgram.window1.roundTripsPerSec)} |`,
    );
    lines.push(
      `| node:dgram round trips, window 64 | ${n0(l.dgram.window64.roundTripsPerSec)} /s | ${se((x) => x.dgram.window64.roundTripsPerSec)} |`,
    );
    lines.push(`| udx-native stream, 200-byte messages | ${n0(udx)} msgs/s | ${se((x) => udxRate(x))} |`);
  }
  if (r.noise)
    lines.push(
      "",
      `Noise: the limits moved by ${r.noise.verifyPct.toFixed(0)}% (verify), ${r.noise.signPct.toFixed(0)}% (sign), ${r.noise.udxPct.toFixed(0)}% (udx) between the start and the end of the run.`,
    );
  lines.push("", "## Two nodes, two processes", "");
  lines.push(
    "| kind | loss | msgs/s | ÷ verify | ÷ udx | ÷ own 0% | p50 ms | p99 ms | max ms | p50 ÷ dgram RTT | retransmits/msg (early) | duplicates/msg | exactly once | light load p50 / p99 / max ms | light p50 ÷ dgram RTT |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
  );
  for (const p of r.twoNodes) {
    const base = r.twoNodes.find((q) => q.kind === p.kind && q.loss === 0);
    lines.push(
      `| ${p.kind} | ${(p.loss * 100).toFixed(0)}% | ${n0(p.msgsPerSec)} | ${pct(ratio(p.msgsPerSec, verify))} | ${pct(ratio(p.msgsPerSec, udx))} | ${pct(ratio(p.msgsPerSec, base?.msgsPerSec ?? Number.NaN))} | ${ms(p.latency.p50)} | ${ms(p.latency.p99)} | ${ms(p.latency.max)} | ${n0(ratio(p.latency.p50, rtt))}× | ${p.retransmitsPerMsg.toFixed(2)} (${p.earlyRetransmitsPerMsg.toFixed(2)}) | ${p.duplicateFramesPerMsg.toFixed(2)} | ${p.exactlyOnce ? "yes" : "NO"} | ${p.light ? `${ms(p.light.latency.p50)} / ${ms(p.light.latency.p99)} / ${ms(p.light.latency.max)}${p.light.exactlyOnce ? "" : " (NOT exactly once)"}` : "n/a"} | ${p.light ? `${n0(ratio(p.light.latency.p50, rtt))}×` : "n/a"} |`,
    );
  }
  lines.push(
    "",
    `Full load: the sender keeps ${r.meta.inflight} messages unacknowledged (closed loop), so latency includes queueing (Little's law: ≈ ${r.meta.inflight} ÷ msgs/s). Light load: one message every 10 ms (100 msgs/s, open loop).`,
  );
  if (r.tenNodes.length > 0) {
    lines.push("", `## ${r.tenNodes[0]?.nodes ?? 10} nodes, one process each, all broadcasting`, "");
    lines.push(
      "| loss | deliveries/s | ÷ verify | ÷ own 0% | p50 ms | p99 ms | max ms | msgs sent | exactly once | drained in |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    );
    for (const p of r.tenNodes) {
      const base = r.tenNodes.find((q) => q.loss === 0);
      lines.push(
        `| ${(p.loss * 100).toFixed(0)}% | ${n0(p.msgsPerSec)} | ${pct(ratio(p.msgsPerSec, verify))} | ${pct(ratio(p.msgsPerSec, base?.msgsPerSec ?? Number.NaN))} | ${ms(p.latency.p50)} | ${ms(p.latency.p99)} | ${ms(p.latency.max)} | ${p.sent} | ${p.exactlyOnce ? "yes" : "NO"} | ${p.drainMs.toFixed(0)} ms |`,
      );
    }
  }
  if (r.scale.length > 0) {
    lines.push("", "## Scale: N nodes in one process (one core), memory stores", "");
    lines.push(
      "| nodes | one broadcast round delivered | all ACKed | ÷ verify time of N×(N-1) | retransmits | failed | memory per node | per peer entry | per node after round | start, all online |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const s of r.scale) {
      const verifyMs = (s.expected / verify) * 1000;
      lines.push(
        `| ${s.nodes} | ${s.complete ? `${s.roundMs.toFixed(0)} ms` : `**not complete** after ${(s.waitedMs / 1000).toFixed(0)} s (${s.deliveries} of ${s.expected})`} | ${Number.isFinite(s.roundAckedMs) ? `${s.roundAckedMs.toFixed(0)} ms` : "n/a"} | ${s.complete ? pct(ratio(verifyMs, s.roundMs)) : "n/a"} (${verifyMs.toFixed(0)} ms) | ${s.round.retransmits} | ${s.round.failed} | ${kib(s.bytesPerNode)} | ${kib(s.bytesPerPeer)} | ${kib(s.bytesPerNodeAfterRound)} | ${s.startMs.toFixed(0)} ms |`,
      );
    }
  }
  if (r.simScale) lines.push("", ...simScaleTable(r.simScale));
  lines.push("", "## Costs", "");
  const b0 = r.twoNodes.find((p) => p.kind === "broadcast" && p.loss === 0);
  const p0 = r.twoNodes.find((p) => p.kind === "private" && p.loss === 0);
  lines.push("| figure | value | ratio |", "| --- | ---: | ---: |");
  for (const p of [b0, p0]) {
    if (!p) continue;
    const w = p.wireBytesPerMsg;
    lines.push(
      `| wire bytes per ${r.meta.textBytes}-byte ${p.kind} message, 0% loss, sealed as on the wire (DATA + ACK, handshake and keepalive share + HELLO share) | ${w.total.toFixed(0)} (${w.data.toFixed(0)} + ${w.ack.toFixed(1)} + ${w.hello.toFixed(1)}), ${w.datagrams.toFixed(2)} datagrams | ${(w.total / r.meta.textBytes).toFixed(2)}× the text |`,
    );
    lines.push(
      `| CPU per delivered ${p.kind} message (both processes) | ${p.cpuMicrosPerMsg.toFixed(0)} µs | ${(p.cpuMicrosPerMsg / (1e6 / verify)).toFixed(1)}× one verify |`,
    );
  }
  if (r.startup) {
    if ("error" in r.startup) lines.push(`| start-up to ready | failed: ${r.startup.error} | |`);
    else lines.push(...startupRows(r.startup));
  }
  if (r.startup && "medianMs" in r.startup)
    lines.push(
      "",
      "Start-up: each figure is the median of the same number of runs, interleaved, after one warm-up run of each. " +
        'Node boot is spawn to exit of `node -e ""` in the same environment; the key unlock is one awaited ' +
        "`readKeyFile` of alice's key file in the bench process (scrypt on libuv's thread pool). " +
        "The target is judged on the start-up as configured.",
    );
  if (r.startup && "note" in r.startup && r.startup.note) lines.push("", `Start-up: ${r.startup.note}.`);
  lines.push("", "## Targets", "", "| target | value | goal | met |", "| --- | --- | --- | --- |");
  for (const t of r.targets)
    lines.push(
      `| ${t.name} | ${t.value} | ${t.goal} | ${t.met === null ? "n/a" : t.met ? "yes" : "**no**"} |`,
    );
  if (r.errors.length > 0) lines.push("", "## Errors", "", ...r.errors.map((e) => `- ${e}`));
  lines.push("");
  return lines.join("\n");
}

/**
 * The simulator's scale table (Markdown; run.ts prints it on the console too): virtual time of the round, against
 * the network's longest one-way delay; wall time, per delivery; cost on the wire; exactly-once; memory per peer entry.
 */
export function simScaleTable(p: SimScalePhase): string[] {
  const lines: string[] = ["## Scale in the simulator (engine only, virtual time, model crypto)", ""];
  const first = p.runs[0];
  const oneWay = first ? first.delayMsMax + first.jitterMs : Number.NaN;
  lines.push(
    `| nodes | loss each way | round delivered (virtual) | ÷ longest one-way delay (${n0(oneWay)} ms) | all ACKed (virtual) | wall time of the round | wall per delivery | datagrams | retransmits | failed | duplicate deliveries | exactly once | per peer entry: engine | with the sim's stores | all online after (virtual) | total wall |`,
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
  );
  for (const s of p.runs) {
    const round = s.complete
      ? `${n0(s.roundVirtualMs)} ms`
      : `**not complete**: ${s.deliveries} of ${s.expected}${s.error ? ` (${s.error})` : ""}`;
    lines.push(
      `| ${s.nodes} | ${(s.loss * 100).toFixed(0)}% | ${round} | ${s.complete ? times(ratio(s.roundVirtualMs, oneWay)) : "n/a"} | ${s.complete ? `${n0(s.roundAckedVirtualMs)} ms` : `${s.acks} of ${s.expected}`} | ${(s.roundWallMs / 1000).toFixed(1)} s | ${n0((s.roundWallMs * 1000) / s.expected)} µs | ${s.round.datagrams} | ${s.round.retransmits} | ${s.round.failed} | ${s.duplicateDeliveries} | ${s.exactlyOnce ? "yes" : "**NO**"} | ${n0(s.bytesPerPeerEngine)} B | ${n0(s.bytesPerPeer)} B | ${n0(s.onlineVirtualMs)} ms | ${(s.totalWallMs / 1000).toFixed(1)} s |`,
    );
  }
  const zero = p.runs.filter((s) => s.loss === 0);
  if (zero.length > 0)
    lines.push(
      "",
      `0% loss: ${zero.map((s) => `${s.nodes} nodes, round ${s.complete ? `${n0(s.roundVirtualMs)} ms virtual` : "not complete"}, ${n0((s.roundWallMs * 1000) / s.expected)} µs wall per delivery`).join("; ")}.`,
    );
  lines.push(
    "",
    `N real engines (src/engine) in the bench's process on the simulator's virtual clock and network (sim/cluster.ts), with its model crypto (HMAC stand-ins for Ed25519, HPKE and the MACs); seed ${first?.seed ?? "n/a"}, ${first?.textBytes ?? "n/a"}-byte texts. ` +
      `Links: a fixed 1 to ${first?.delayMsMax ?? "n/a"} ms each plus up to ${first?.jitterMs ?? "n/a"} ms per datagram (they reorder); no duplication or corruption. ` +
      "The start is lossless (every node hears every peer once); then every node broadcasts one message at the same virtual instant, and the loss applies to every datagram from then on. " +
      "Round: virtual ms from the broadcasts to the last of the N × (N − 1) deliveries (ACKed: to the last ACK at its sender); the virtual figures are deterministic for the seed. " +
      "Wall time: simulating that round on one core (engines, model crypto, the simulator), and per delivery; total wall includes building the cluster, the start and the forced GCs. " +
      "Datagrams, retransmits and failed (give-ups): engine counters summed over the round; duplicate deliveries: a message handed to its recipient twice; exactly once: every recipient got every message once, with its id and text, and every sender every ACK. " +
      "Memory per peer entry: heap used + external after forced GCs once every node knows every peer, minus the same before the cluster was built, ÷ N × (N − 1). " +
      "It is the engine's state only: no sockets, no runtime (ChatNode) and no real store; \"with the sim's stores\" adds the persisted peer snapshots, which the simulator keeps in maps; both include the simulator's per-link tables (about 10 bytes per entry).",
  );
  if (p.dropped) lines.push("", `Sizes: ${p.sizes.join(", ")} nodes. ${p.dropped}.`);
  return lines;
}

/** The Costs rows of the start-up: the figure, its two fixed costs (node boot, key unlock) and what is left. */
function startupRows(s: StartupResult): string[] {
  const n = (samples: readonly number[] | null) => `median of ${samples?.length ?? 0}`;
  const share = (x: number) => `${pct(ratio(x, s.medianMs))} of the start-up`;
  const sc = s.unlockScrypt;
  const rows = [
    `| start-up to ready: \`chatnode chat --json\` (as configured${s.extraCaCerts ? ", NODE_EXTRA_CA_CERTS set" : ""}) | ${n0(s.medianMs)} ms ${n(s.samplesMs)} | ÷ (node boot + key unlock) ${n0(s.nodeBootMs + s.unlockMs)} ms: ${times(ratio(s.medianMs, s.nodeBootMs + s.unlockMs))}; target 300 ms: ${pct(ratio(s.medianMs, 300))} |`,
    `| node boot: \`node -e ""\`, spawn to exit (as configured) | ${n0(s.nodeBootMs)} ms ${n(s.nodeBootSamplesMs)} | ${share(s.nodeBootMs)} |`,
    `| key unlock: \`readKeyFile\`${sc ? `, scrypt N=2^${Math.log2(sc.N)} r=${sc.r} p=${sc.p}` : ""} | ${n0(s.unlockMs)} ms ${n(s.unlockSamplesMs)} | ${share(s.unlockMs)} |`,
    `| ChatNode's own overhead (start-up − node boot − key unlock) | ${n0(s.overheadMs)} ms | ${share(s.overheadMs)} |`,
  ];
  // Older results lack the field.
  if (s.unlockMemoryTouchMs != null && sc)
    rows.splice(
      3,
      0,
      `| of the unlock: page faults, touching ${(128 * sc.N * sc.r) / 2 ** 20} MiB of fresh memory (scrypt's V array) | ${n0(s.unlockMemoryTouchMs)} ms ${n(s.unlockMemoryTouchSamplesMs)} | ${pct(ratio(s.unlockMemoryTouchMs, s.unlockMs))} of the key unlock; the KDF's arithmetic is the rest |`,
    );
  if (s.withoutExtraCaMs !== null && s.nodeBootWithoutExtraCaMs !== null) {
    const fixed = s.nodeBootWithoutExtraCaMs + s.unlockMs;
    rows.push(
      `| start-up to ready without NODE_EXTRA_CA_CERTS | ${n0(s.withoutExtraCaMs)} ms ${n(s.withoutExtraCaSamplesMs)} | ÷ (its node boot + key unlock) ${n0(fixed)} ms: ${times(ratio(s.withoutExtraCaMs, fixed))}; ${pct(ratio(s.withoutExtraCaMs, s.medianMs))} of the as-configured start-up |`,
      `| node boot without NODE_EXTRA_CA_CERTS | ${n0(s.nodeBootWithoutExtraCaMs)} ms ${n(s.nodeBootWithoutExtraCaSamplesMs)} | ${pct(ratio(s.nodeBootWithoutExtraCaMs, s.nodeBootMs))} of the as-configured node boot |`,
      `| ChatNode's own overhead without NODE_EXTRA_CA_CERTS | ${n0(s.overheadWithoutExtraCaMs ?? Number.NaN)} ms | ${pct(ratio(s.overheadWithoutExtraCaMs ?? Number.NaN, s.withoutExtraCaMs))} of that start-up |`,
    );
  } else rows.push("| start-up to ready without NODE_EXTRA_CA_CERTS | not measured: it is not set here | |");
  return rows;
}

export function chart(r: BenchResults): string {
  const losses = [...new Set(r.twoNodes.map((p) => p.loss))].sort((a, b) => a - b);
  const series = (kind: LoadPoint["kind"], color: string, f: (p: LoadPoint) => number) => ({
    name: `2 nodes, ${kind}`,
    color,
    points: r.twoNodes.filter((p) => p.kind === kind).map((p) => [p.loss, f(p)] as [number, number]),
  });
  const ten = (color: string, f: (p: LoadPoint) => number) => ({
    name: `${r.tenNodes[0]?.nodes ?? 10} nodes, all broadcasting`,
    color,
    points: r.tenNodes.map((p) => [p.loss, f(p)] as [number, number]),
  });
  const goodput = (p: LoadPoint) => p.msgsPerSec;
  const p99 = (p: LoadPoint) => p.latency.p99;
  return lossChart(
    `ChatNode goodput and p99 latency against loss — ${r.meta.command}, ${r.meta.date}`,
    losses,
    {
      title: "Goodput (delivered 200-byte messages/s)",
      yLabel: "messages / s",
      series: [
        series("broadcast", "#1f77b4", goodput),
        series("private", "#ff7f0e", goodput),
        ten("#2ca02c", goodput),
      ],
      ...(r.limits && {
        reference: { value: r.limits.verifyPerSec * 0.7, label: "70% of Ed25519 verify rate" },
      }),
    },
    {
      title: "p99 delivery latency",
      yLabel: "milliseconds",
      series: [
        series("broadcast", "#1f77b4", p99),
        series("private", "#ff7f0e", p99),
        ten("#2ca02c", p99),
        {
          name: "2 nodes, broadcast, light load",
          color: "#9467bd",
          points: r.twoNodes
            .filter((p) => p.kind === "broadcast" && p.light)
            .map((p) => [p.loss, p.light?.latency.p99 ?? Number.NaN] as [number, number]),
        },
      ],
      reference: { value: 50, label: "target 50 ms at 40% loss" },
    },
  );
}

export function writeResults(dir: string, r: BenchResults): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "latest.json"), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(dir, "latest.md"), markdown(r));
  writeFileSync(join(dir, "loss.svg"), chart(r));
}
