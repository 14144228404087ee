/**
 * One seed, start to end: the seed chooses the options (cluster size, workload, faults), a plan of timed actions
 * (sends, partitions, blackholes, crashes and restarts) is drawn up front, the safety phase runs the plan under
 * faults with every invariant checked at every step, then the network heals, every node comes back, and the
 * liveness phase requires every message to get through in bounded virtual time.
 */

import { createHash } from "node:crypto";
import { DEFAULT_CONFIG, type EngineConfig, giveUpBoundMs } from "../src/engine/config.ts";
import type { EngineEvent } from "../src/engine/events.ts";
import { type EngineStats, newStats } from "../src/engine/stats.ts";
import { MAX_TEXT_BYTES, type MessageKind } from "../src/engine/types.ts";
import { SeededRng } from "../src/faults/seeded-rng.ts";
import type { SessionStats } from "../src/session/events.ts";
import type { SessionTiming } from "../src/session/timing.ts";
import { Adversary, ATTACKS } from "./adversary.ts";
import { Cluster, type ClusterObserver, type SendPlan, SimCrash, SimStall } from "./cluster.ts";
import { Checker, type Violation } from "./invariants.ts";
import { type FaultCounts, type LinkProfile, zeroFaults } from "./network.ts";

/** Everything a seed decides; any field can be forced from the command line (the rest still come from the seed). */
export interface SimOptions {
  nodes: number;
  messages: number;
  privatePpm: number;
  /** Share of messages of 1 to 8 KiB (several fragments). */
  mediumPpm: number;
  /** Share of messages of 8 to 64 KiB (up to the 64 KiB limit). */
  largePpm: number;
  lossPpm: number;
  dupPpm: number;
  corruptPpm: number;
  /** Largest fixed one-way delay of a link (each link draws its own, from 1 ms up). */
  delayMs: number;
  /** Extra random delay per datagram: far above the gap between datagrams, so they arrive reordered. */
  jitterMs: number;
  partitions: number;
  blackholes: number;
  crashes: number;
  /** Length of the faulty phase; messages are written during its first 70%. */
  safetyMs: number;
  windowFrames: number;
  realCrypto: boolean;
  /** An adversary (sim/adversary.ts): replays, and mallory, the highest node, lying with its keys (3 nodes or more). */
  adversary: boolean;
  /**
   * Session rekey interval, ms, or 0 for the default (2 minutes, longer than a run). One seed in three rekeys every
   * few seconds, so that handshakes, rekeys, grace windows and erasure run under the faults too.
   */
  rekeyMs: number;
}

export type Overrides = Partial<SimOptions>;

/** The issue's fault profile: 40% loss, 10% duplication, reordering, a few % corruption, partitions that heal. */
export const DEFAULT_FAULTS = {
  lossPpm: 400_000,
  dupPpm: 100_000,
  corruptPpm: 30_000,
  delayMs: 20,
  jitterMs: 40,
} as const;

/** Slack on top of heartbeat + give-up bound for the liveness phase: a few round trips, and then some. */
export const LIVENESS_SLACK_MS = 2_000;

/** Draws the options of `seed`. Every draw happens whatever the overrides, so an override changes only itself. */
export function chooseOptions(seed: number, overrides: Overrides = {}): SimOptions {
  const rng = new SeededRng(seed ^ 0x0b7105);
  const sizeRoll = rng.below(1000);
  const nodes =
    sizeRoll < 700
      ? 2 + rng.below(4)
      : sizeRoll < 960
        ? 6 + rng.below(3)
        : sizeRoll < 997
          ? 9 + rng.below(8)
          : 17 + rng.below(34);
  const messages = 2 + rng.below(14);
  const privatePpm = 300_000;
  const mediumPpm = 80_000;
  const largePpm = rng.chance(30_000) ? 150_000 : 0;
  const partitionRoll = rng.below(100);
  const partitions = partitionRoll < 40 ? 0 : partitionRoll < 80 ? 1 : 2 + rng.below(2);
  const blackholes = rng.chance(150_000) ? 1 : 0;
  const crashRoll = rng.below(100);
  const crashes = crashRoll < 60 ? 0 : crashRoll < 88 ? 1 : 2 + rng.below(2);
  // Mostly the default window; sometimes a small one, so that messages queue behind it.
  const windowFrames = rng.chance(150_000)
    ? ([2, 4, 8, 16][rng.below(4)] ?? 64)
    : DEFAULT_CONFIG.windowFrames;
  // Drawn last, so that the draws above (and every seed's run without one) are what they were before it existed.
  const adversary = rng.chance(250_000);
  const rekeyMs = rng.below(3) === 0 ? 2_000 + rng.below(6_000) : 0;
  const chosen: SimOptions = {
    nodes,
    messages,
    privatePpm,
    mediumPpm,
    largePpm,
    ...DEFAULT_FAULTS,
    partitions,
    blackholes,
    crashes,
    safetyMs: 20_000,
    windowFrames,
    realCrypto: false,
    adversary,
    rekeyMs,
  };
  const options = { ...chosen, ...definedOnly(overrides) };
  if (options.nodes < 2 || options.nodes > 50) throw new RangeError("--nodes must be 2 to 50");
  return options;
}

export interface SeedResult {
  seed: number;
  options: SimOptions;
  violations: Violation[];
  /** Violations per invariant, including those beyond the ones kept in `violations`. */
  violationCounts: Record<string, number>;
  messages: number;
  privateMessages: number;
  multiFragmentMessages: number;
  /** One per (message, recipient). */
  copies: number;
  deliveries: number;
  faults: FaultCounts & EpisodeCounts;
  datagrams: number;
  engine: EngineStats;
  /** The session layer's counters, every node and incarnation added up. */
  sessions: SessionTotals;
  steps: number;
  virtualMs: number;
  /** SHA-256 over the trace, when asked for. */
  traceHash?: string;
}

/** Faults the plan injects (as opposed to the network's per-datagram ones), and the adversary's attacks. */
interface EpisodeCounts {
  crash: number;
  /** Crashes that struck inside a store commit (counted in `crash` too). */
  "power-loss": number;
  restart: number;
  "partition-episode": number;
  "blackhole-episode": number;
  [attack: `attack-${string}`]: number;
}

export interface RunHooks {
  /** Each line of the trace (sends, events, crashes), as it happens. */
  trace?: (line: string) => void;
  /** Compute SHA-256 over the trace lines (for the determinism test). */
  hash?: boolean;
}

interface Action {
  at: number;
  order: number;
  run: () => void;
}

export function runSeed(seed: number, overrides: Overrides = {}, hooks: RunHooks = {}): SeedResult {
  const options = chooseOptions(seed, overrides);
  const rng = new SeededRng(seed);
  const planRng = rng.fork();
  const startMs = planRng.chance(500_000)
    ? planRng.below(1_000)
    : 1_700_000_000_000 + planRng.below(1_000_000_000);
  const config: Partial<EngineConfig> = { windowFrames: options.windowFrames };
  const fullConfig: EngineConfig = { ...DEFAULT_CONFIG, ...config };
  const bound = giveUpBoundMs(fullConfig);

  const links: LinkProfile[] = [];
  for (let i = 0; i < options.nodes * options.nodes; i++) {
    links.push({
      lossPpm: options.lossPpm,
      duplicatePpm: options.dupPpm,
      corruptPpm: options.corruptPpm,
      delayMs: 1 + planRng.below(Math.max(1, options.delayMs)),
      jitterMs: options.jitterMs,
    });
  }

  const hash = hooks.hash ? createHash("sha256") : undefined;
  const tracing = hash !== undefined || hooks.trace !== undefined;
  let checker: Checker | undefined;
  const tracer = (line: string) => {
    hash?.update(line);
    hash?.update("\n");
    hooks.trace?.(line);
  };
  const observer: ClusterObserver = {
    onSend: (step, now, node, entry) => {
      checker?.onSend(step, now, node, entry);
      if (tracing)
        tracer(
          `${step} ${now - startMs} n${node} send ${entry.kind} ${entry.msgId} to ${[...entry.recipients.keys()].join(",")} ${JSON.stringify(entry.text.length > 80 ? `${entry.text.slice(0, 80)}…(${entry.text.length})` : entry.text)}`,
        );
    },
    onEvent: (step, now, node, event) => {
      checker?.onEvent(step, now, node, event);
      if (tracing) tracer(`${step} ${now - startMs} n${node} ${describeEvent(event)}`);
    },
    onDataFrame: (step, now, node, frame) => checker?.onDataFrame(step, now, node, frame),
    onCrash: (step, now, node) => {
      checker?.onCrash(step, now, node);
      if (tracing) tracer(`${step} ${now - startMs} n${node} CRASH`);
    },
    onRestart: (step, now, node) => {
      if (tracing) tracer(`${step} ${now - startMs} n${node} RESTART`);
    },
    afterStep: (step, now) => checker?.afterStep(step, now),
  };

  const faults: EpisodeCounts = {
    crash: 0,
    "power-loss": 0,
    restart: 0,
    "partition-episode": 0,
    "blackhole-episode": 0,
  };
  let cluster: Cluster | undefined;
  const result = (c: Checker | undefined): SeedResult => {
    const base: SeedResult = {
      seed,
      options,
      violations: c?.violations ?? [],
      violationCounts: Object.fromEntries(c?.perInvariant ?? []),
      messages: c?.messagesSent ?? 0,
      privateMessages: c?.privateSent ?? 0,
      multiFragmentMessages: c?.multiFragmentSent ?? 0,
      copies: c?.copiesSent ?? 0,
      deliveries: c?.deliveries ?? 0,
      faults: { ...(cluster?.network.faults ?? zeroFaults()), ...faults },
      datagrams: cluster?.network.datagramsSent ?? 0,
      engine: cluster ? cluster.totalStats() : newStats(),
      sessions: sumSessions(cluster?.sessionStats() ?? []),
      steps: cluster?.step ?? 0,
      virtualMs: cluster ? cluster.now - startMs : 0,
    };
    if (hash) base.traceHash = hash.digest("hex");
    return base;
  };

  try {
    const c = new Cluster(
      {
        nodes: options.nodes,
        seed,
        startMs,
        links,
        config,
        realCrypto: options.realCrypto,
        ...(options.rekeyMs > 0 && { sessionTiming: fastRekey(options.rekeyMs) }),
      },
      rng.fork(),
      observer,
    );
    cluster = c;
    checker = new Checker(
      c.nodes.map((n) => n.id),
      bound,
      startMs,
      (receiver, sender, msgId) => c.holds(receiver, sender, msgId),
    );
    const ck = checker;
    const actions = planActions(options, planRng, c, startMs, faults, tracing ? tracer : undefined, ck);
    if (hasAdversary(options)) actions.push(...planAttacks(options, rng.fork(), c, startMs, faults));
    actions.sort((x, y) => x.at - y.at || x.order - y.order);

    // Phase 1, safety: the plan runs under faults; the checker looks at every step.
    for (const action of actions) {
      c.runUntil(action.at);
      action.run();
    }
    const healAt = startMs + options.safetyMs;
    c.runUntil(healAt);

    // Heal: no more loss, corruption or partitions, and every crashed node comes back from its store.
    c.network.heal();
    for (const n of c.nodes) {
      c.cancelPowerLoss(n.index);
      if (c.isUp(n.index)) continue;
      c.restart(n.index);
      faults.restart++;
    }
    if (tracing) tracer(`${c.step} ${c.now - startMs} HEAL`);

    // Phase 2, liveness: every message must arrive within heartbeat + give-up bound + slack.
    // A peer silent through the partition is probed at most probeMsMax apart (a heartbeat apart once online).
    const presenceMs = Math.max(fullConfig.heartbeatMs, fullConfig.probeMsMax) * 1.1;
    const deadline = healAt + presenceMs + bound + LIVENESS_SLACK_MS;
    c.runUntil(deadline, () => ck.allComplete());
    ck.checkOrder(c.step, c.now);
    ck.checkNeedlessGiveUps(c.step, c.now);
    ck.checkLiveness(c.step, c.now, healAt, (i) => {
      const engine = c.node(i).engine;
      if (!engine) return 0;
      let parked = 0;
      for (const p of engine.peers()) parked += p.parked;
      return engine.pendingCount() + parked;
    });
    return result(ck);
  } catch (error) {
    const ck = checker ?? new Checker([], 0, startMs);
    if (error instanceof SimStall) {
      ck.report(
        "liveness",
        "I7 liveness (stall)",
        error.step,
        error.now,
        error.node,
        undefined,
        error.message,
      );
    } else if (error instanceof SimCrash) {
      ck.report("crash", "engine threw", error.step, error.now, error.node, undefined, error.message);
    } else {
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      ck.report(
        "crash",
        "simulator threw",
        cluster?.step ?? 0,
        cluster?.now ?? startMs,
        undefined,
        undefined,
        detail,
      );
    }
    checker = ck;
    return result(ck);
  }
}

/** Mallory needs two honest nodes besides her: a victim link. */
function hasAdversary(options: SimOptions): boolean {
  return options.adversary && options.nodes >= 3;
}

/** The adversary's attacks: one every 10 to 90 ms of the safety phase, each chosen at random when it runs. */
function planAttacks(
  options: SimOptions,
  rng: SeededRng,
  cluster: Cluster,
  startMs: number,
  faults: EpisodeCounts,
): Action[] {
  const adversary = new Adversary(
    {
      size: options.nodes,
      send: (from, to, bytes) => cluster.inject(from, to, bytes),
      sendInner: (from, to, bytes) => cluster.injectInner(from, to, bytes),
      idOf: (i) => cluster.node(i).id,
      epochOf: (i) => cluster.node(i).epoch,
      nextSeqOf: (sender, receiver) => cluster.nextSeqOf(sender, receiver),
      cryptoOf: (i) => cluster.cryptoFor(i, rng.fork()),
    },
    rng.fork(),
  );
  cluster.tap = (from, to, bytes) => adversary.observe(from, to, bytes);
  cluster.innerTap = (from, to, bytes) => adversary.observeInner(from, to, bytes);
  const actions: Action[] = [];
  let order = 1_000_000_000;
  for (let at = 10 + rng.below(80); at < options.safetyMs; at += 10 + rng.below(80)) {
    actions.push({
      at: startMs + at,
      order: order++,
      run: () => {
        adversary.attack();
        for (const attack of ATTACKS) faults[`attack-${attack}`] = adversary.counts[attack];
      },
    });
  }
  return actions;
}

/** Draws every timed action of the safety phase from the seed, before anything runs. */
function planActions(
  options: SimOptions,
  rng: SeededRng,
  cluster: Cluster,
  startMs: number,
  faults: EpisodeCounts,
  tracer: ((line: string) => void) | undefined,
  checker: Pick<Checker, "onDisruption">,
): Action[] {
  const actions: Action[] = [];
  let order = 0;
  const add = (offsetMs: number, run: () => void) =>
    actions.push({ at: startMs + offsetMs, order: order++, run });
  const n = options.nodes;
  const safety = options.safetyMs;
  const note = (what: string) => tracer?.(`${cluster.step} ${cluster.now - startMs} ${what}`);

  const sendTimes: number[] = [];
  let together: { from: number; plans: SendPlan[] } | undefined;
  for (let i = 0; i < options.messages; i++) {
    // Sometimes written together with the previous one, by the same node in the same turn of its event loop (one
    // poll: the engine signs them as one batch, and sends them as one BATCH where they fit).
    if (together && rng.chance(250_000)) {
      // Mostly a message like the first (a chat's burst: to the same people), sometimes any other.
      const plan = planMessage(options, rng, together.from, n);
      const first = together.plans[0] as SendPlan;
      together.plans.push(rng.chance(700_000) ? { ...plan, kind: first.kind, to: first.to } : plan);
      continue;
    }
    // Often in a burst right after the previous one, so that several messages are in flight (and held out of
    // order by their receivers) at once.
    const previous = sendTimes[sendTimes.length - 1];
    const at =
      previous !== undefined && rng.chance(400_000)
        ? previous + rng.below(100)
        : rng.below(Math.floor(safety * 0.7));
    sendTimes.push(at);
    // Mallory, the adversary's node, writes nothing of its own (sim/adversary.ts).
    const from = rng.below(hasAdversary(options) ? n - 1 : n);
    const group = { from, plans: [planMessage(options, rng, from, n)] };
    together = group;
    add(at, () => cluster.send(group.from, group.plans));
  }

  for (let i = 0; i < options.partitions; i++) {
    const start = rng.below(Math.floor(safety * 0.8));
    const length = 500 + rng.below(12_000);
    const end = Math.min(start + length, safety - 1);
    const a: number[] = [];
    const b: number[] = [];
    for (let node = 0; node < n; node++) (rng.chance(500_000) ? a : b).push(node);
    if (a.length === 0) a.push(b.shift() as number);
    if (b.length === 0) b.push(a.shift() as number);
    const oneWay = rng.chance(250_000);
    // Either direction counts: a cut one way loses the DATA or its ACK alike.
    const touches = (s: number, r: number) =>
      (a.includes(s) && b.includes(r)) || (b.includes(s) && a.includes(r));
    add(start, () => {
      faults["partition-episode"]++;
      note(`PARTITION ${a.join(",")} ${oneWay ? "->" : "<->"} ${b.join(",")}`);
      cluster.network.split(a, b, oneWay);
      checker.onDisruption(cluster.now, `partition ${i}`, touches);
    });
    add(end, () => {
      note(`PARTITION-HEAL ${a.join(",")} ${oneWay ? "->" : "<->"} ${b.join(",")}`);
      cluster.network.join(a, b, oneWay);
      checker.onDisruption(cluster.now, `partition ${i}`);
    });
  }

  for (let i = 0; i < options.blackholes; i++) {
    const start = rng.below(Math.floor(safety * 0.8));
    const end = Math.min(start + 500 + rng.below(6_000), safety - 1);
    add(start, () => {
      faults["blackhole-episode"]++;
      note("BLACKHOLE");
      cluster.network.startBlackhole();
      checker.onDisruption(cluster.now, `blackhole ${i}`, () => true);
    });
    add(end, () => {
      note("BLACKHOLE-END");
      cluster.network.endBlackhole();
      checker.onDisruption(cluster.now, `blackhole ${i}`);
    });
  }

  for (let i = 0; i < options.crashes; i++) {
    const node = rng.below(n);
    // Half the crashes strike just after a message was written, while it is in flight.
    const after =
      sendTimes.length > 0 && rng.chance(500_000) ? sendTimes[rng.below(sendTimes.length)] : undefined;
    const at = after !== undefined ? after + rng.below(300) : rng.below(Math.floor(safety * 0.8));
    // Mostly seconds down (long enough for peers to give up and park); sometimes back within the same few ms.
    const down = rng.chance(200_000) ? rng.below(50) : 1_000 + rng.below(6_000);
    const back = Math.min(at + down, safety - 1);
    // One crash in three is a power loss inside the node's next store commit: nothing of that flush is written,
    // and nothing of it may have left the node.
    const powerLoss = rng.below(3) === 0;
    let crashed = false;
    const wentDown = () => {
      crashed = true;
      faults.crash++;
      checker.onDisruption(cluster.now, `crash ${i}`, (s, r) => s === node || r === node);
    };
    const strike = () => {
      faults["power-loss"]++;
      wentDown();
    };
    add(at, () => {
      if (!cluster.isUp(node)) return;
      if (powerLoss) {
        cluster.crashAtNextCommit(node, strike);
        return;
      }
      cluster.crash(node);
      wentDown();
    });
    add(back, () => {
      // A power loss that found no commit to strike by now does not happen.
      cluster.cancelPowerLoss(node, strike);
      if (!crashed || cluster.isUp(node)) return;
      faults.restart++;
      cluster.restart(node);
      checker.onDisruption(cluster.now, `crash ${i}`);
    });
  }

  return actions.sort((x, y) => x.at - y.at || x.order - y.order);
}

function planMessage(options: SimOptions, rng: SeededRng, from: number, n: number): SendPlan {
  const kind: MessageKind = rng.chance(options.privatePpm) ? "private" : "broadcast";
  const sizeRoll = rng.below(1_000_000);
  const bytes =
    sizeRoll < options.largePpm
      ? // Skewed towards the small end (a 64 KiB message costs ~100 times a 1 KiB one), reaching the limit.
        8_192 + rng.below(rng.below(MAX_TEXT_BYTES - 8_192) + 2)
      : sizeRoll < options.largePpm + options.mediumPpm
        ? 1_024 + rng.below(7_169)
        : 1 + rng.below(160);
  const text = randomText(rng, bytes);
  const others: number[] = [];
  for (let i = 0; i < n; i++) if (i !== from) others.push(i);
  if (kind === "private") return { kind, to: [others[rng.below(others.length)] as number], text };
  // Mostly to everyone (no `to`); sometimes to a chosen subset.
  if (others.length < 2 || rng.chance(700_000)) return { kind, text };
  const to = others.filter(() => rng.chance(500_000));
  return { kind, to: to.length > 0 ? to : [others[0] as number], text };
}

/** Code points of 1 to 4 UTF-8 bytes, NUL and newlines included: the engine must carry any valid text. */
const ALPHABET = [
  ..."abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-_/\\",
  "\n",
  "\t",
  "\u0000",
  "é",
  "ß",
  "ж",
  "λ",
  "中",
  "文",
  "€",
  "😀",
  "🚀",
  "𝄞",
];
const ALPHABET_BYTES = ALPHABET.map((c) => new TextEncoder().encode(c).length);

/** Valid text of at most `maxBytes` UTF-8 bytes (never a lone surrogate, which UTF-8 cannot carry). */
export function randomText(rng: SeededRng, maxBytes: number): string {
  const parts: string[] = [];
  let used = 0;
  for (;;) {
    const i = rng.below(ALPHABET.length);
    const size = ALPHABET_BYTES[i] ?? 1;
    if (used + size > maxBytes) break;
    parts.push(ALPHABET[i] as string);
    used += size;
  }
  return parts.length > 0 ? parts.join("") : "x";
}

function describeEvent(event: EngineEvent): string {
  switch (event.type) {
    case "message":
      return `message ${event.kind} ${event.msgId} from ${event.from} (${event.text.length} chars)`;
    case "delivered":
      return `delivered ${event.msgId} to ${event.to} tries=${event.tries}`;
    case "failed":
      return `failed ${event.msgId} to ${event.to} ${event.reason} tries=${event.tries}`;
    case "waiting":
      return `waiting ${event.msgId} for ${event.to} ${event.cause} tries=${event.tries}`;
    case "rejected":
      return `rejected ${event.reason}${event.from ? ` from ${event.from}` : ""}`;
    case "duplicate":
      return `duplicate from ${event.from}${event.msgId ? ` ${event.msgId}` : ""}`;
    case "peer-online":
      return `peer-online ${event.peer}`;
    case "peer-offline":
      return `peer-offline ${event.peer}`;
  }
}

function definedOnly(overrides: Overrides): Overrides {
  const out: Overrides = {};
  for (const [k, v] of Object.entries(overrides))
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

export interface SessionTotals {
  handshakesStarted: number;
  established: number;
  keysErased: number;
  refused: Record<string, number>;
}

function sumSessions(all: readonly SessionStats[]): SessionTotals {
  const out: SessionTotals = { handshakesStarted: 0, established: 0, keysErased: 0, refused: {} };
  for (const s of all) {
    out.handshakesStarted += s.handshakesStarted;
    out.established += s.established;
    out.keysErased += s.keysErased;
    for (const [k, v] of Object.entries(s.refused)) out.refused[k] = (out.refused[k] ?? 0) + (v ?? 0);
  }
  return out;
}

/**
 * Session timers scaled to a rekey every `rekeyMs`: keys linger a second, and die at least 5 s after the rekey began.
 * The runtime leaves 60 s between the two (120 s, 180 s), time for a dozen handshake tries; a margin of a second or
 * two (1.5 times the rekey, as this once was) let 40% loss defeat every try before the key died, and a healthy link
 * stall for longer than the engine's give-up (seeds 7329 and 8867).
 */
function fastRekey(rekeyMs: number): Partial<SessionTiming> {
  const rejectAfterMs = rekeyMs + Math.max(Math.round(rekeyMs / 2), 5_000);
  return { rekeyAfterMs: rekeyMs, rejectAfterMs, previousGraceMs: 1_000 };
}
