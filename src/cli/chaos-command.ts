/**
 * `chatnode chaos`: runs the chaos proxy (src/chaos/proxy.ts) in the foreground, prints its counters every
 * --stats-every and once more when stopped with Ctrl-C (SIGINT) or SIGTERM.
 */
import { randomInt } from "node:crypto";
import { isIP } from "node:net";
import type { Command } from "commander";
import { type ChaosConfig, NO_CHAOS, parseDurationMs } from "../chaos/decisions.ts";
import { ChaosProxy, formatCounters, type Route } from "../chaos/proxy.ts";
import { parseRatePpm } from "../faults/ppm.ts";

export interface ChaosCliOptions {
  listen?: string;
  to?: string;
  map: string[];
  host: string;
  loss?: string;
  duplicate?: string;
  corrupt?: string;
  corruptBits?: string;
  truncate?: string;
  delay?: string;
  jitter?: string;
  blackholeEvery?: string;
  blackholeFor?: string;
  seed?: string;
  statsEvery: string;
  maxClients?: string;
}

export interface ChaosPlan {
  routes: Route[];
  config: ChaosConfig;
  seed: number;
  statsEveryMs: number;
  maxClientsPerRoute: number;
}

/** Where the command writes, and how it waits for the signal to stop: injectable for tests. */
export interface ChaosIo {
  out(line: string): void;
  /** Resolves when the proxy should stop (by default: the first SIGINT or SIGTERM). */
  stopped(): Promise<string>;
  /** Called once the proxy listens (tests use it to learn the ports). */
  started?(proxy: ChaosProxy): void;
}

const HELP_EXAMPLES = `
Each datagram, in both directions, is dropped, duplicated, delayed, bit-flipped or truncated at the rates given,
from a seeded random generator: the same --seed and the same traffic give the same faults. A client is learned from
its first datagram; the target's replies go back to it. Rates are 0..1, a percentage or ppm; durations are ms
unless suffixed (ms, s, m).

Examples:
  # alice talks to bob (port 12002) through port 13002 at 30% loss both ways, with reordering:
  chatnode chaos --listen 13002 --to 127.0.0.1:12002 --loss 30% --delay 5 --jitter 40 --seed 7

  # every node behind its own proxy port, with duplication, corruption and a 2 s outage every 10 s:
  chatnode chaos --map 13001=127.0.0.1:12001 --map 13002=127.0.0.1:12002 --map 13003=127.0.0.1:12003 \\
      --duplicate 10% --corrupt 2% --truncate 1% --blackhole-every 10s --blackhole-for 2s

  For every datagram to cross the proxy, let the directory give each user its proxy port (e.g. register alice at
  13001) and start each node on its real port with --port (chatnode chat -u alice --port 12001): peers send to
  13001, the proxy forwards to 12001, and replies find their way back. Counters are printed every --stats-every
  and at exit (Ctrl-C).
`;

/** "13002", "127.0.0.1:13002", "[::1]:13002" → host and port. */
export function parseEndpoint(
  text: string,
  defaultHost: string,
  what: string,
): { host: string; port: number } {
  const t = text.trim();
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(t) ?? /^([^:\s]+):(\d+)$/.exec(t) ?? /^()(\d+)$/.exec(t);
  const host = match?.[1] || defaultHost;
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`${what} must be PORT or HOST:PORT (got "${text}")`);
  if (!isIP(host)) throw new RangeError(`${what}: "${host}" is not an IP address`);
  return { host, port };
}

/** Turns the command's options into routes and a fault configuration; throws a RangeError a user can read. */
export function planChaos(
  o: ChaosCliOptions,
  randomSeed: () => number = () => randomInt(2 ** 31),
): ChaosPlan {
  const routes: Route[] = [];
  const addRoute = (listen: string, to: string) => {
    const l = parseEndpoint(listen, o.host, "the listening address");
    if (l.port === 0) throw new RangeError("the listening port must not be 0");
    const t = parseEndpoint(to, "127.0.0.1", "the target");
    if (t.port === 0) throw new RangeError("the target port must not be 0");
    routes.push({ listenHost: l.host, listenPort: l.port, targetHost: t.host, targetPort: t.port });
  };
  if ((o.listen === undefined) !== (o.to === undefined))
    throw new RangeError("--listen and --to go together (or use --map LISTEN=HOST:PORT)");
  if (o.listen !== undefined && o.to !== undefined) addRoute(o.listen, o.to);
  for (const m of o.map) {
    const [listen, to, extra] = m.split("=");
    if (listen === undefined || to === undefined || extra !== undefined)
      throw new RangeError(`--map must be LISTEN=HOST:PORT, e.g. 13001=127.0.0.1:12001 (got "${m}")`);
    addRoute(listen, to);
  }
  if (routes.length === 0)
    throw new RangeError("nothing to proxy: give --listen PORT --to HOST:PORT or --map");
  const seen = new Set<string>();
  for (const r of routes) {
    const key = `${r.listenHost}:${r.listenPort}`;
    if (seen.has(key)) throw new RangeError(`${key} is listed twice`);
    seen.add(key);
  }
  const rate = (v: string | undefined, name: string) => (v === undefined ? 0 : parseRatePpm(v, name));
  const ms = (v: string | undefined, name: string) => (v === undefined ? 0 : parseDurationMs(v, name));
  const bits = o.corruptBits === undefined ? NO_CHAOS.corruptBitsMax : Number(o.corruptBits);
  if (!Number.isInteger(bits) || bits < 1 || bits > 64) throw new RangeError("--corrupt-bits must be 1..64");
  const config: ChaosConfig = {
    lossPpm: rate(o.loss, "--loss"),
    duplicatePpm: rate(o.duplicate, "--duplicate"),
    corruptPpm: rate(o.corrupt, "--corrupt"),
    corruptBitsMax: bits,
    truncatePpm: rate(o.truncate, "--truncate"),
    delayMs: ms(o.delay, "--delay"),
    jitterMs: ms(o.jitter, "--jitter"),
    blackholeEveryMs: ms(o.blackholeEvery, "--blackhole-every"),
    blackholeForMs: ms(o.blackholeFor, "--blackhole-for"),
  };
  if (config.blackholeForMs > 0 && config.blackholeEveryMs === 0)
    throw new RangeError("--blackhole-for needs --blackhole-every");
  if (config.blackholeEveryMs > 0 && config.blackholeForMs === 0)
    throw new RangeError("--blackhole-every needs --blackhole-for");
  if (config.blackholeEveryMs > 0 && config.blackholeForMs >= config.blackholeEveryMs)
    throw new RangeError("--blackhole-for must be shorter than --blackhole-every");
  const seed = o.seed === undefined ? randomSeed() : Number(o.seed);
  if (!Number.isSafeInteger(seed)) throw new RangeError("--seed must be an integer");
  const maxClients = o.maxClients === undefined ? 64 : Number(o.maxClients);
  if (!Number.isInteger(maxClients) || maxClients < 1)
    throw new RangeError("--max-clients must be at least 1");
  return {
    routes,
    config,
    seed,
    statsEveryMs: parseDurationMs(o.statsEvery, "--stats-every"),
    maxClientsPerRoute: maxClients,
  };
}

function describe(plan: ChaosPlan): string {
  const c = plan.config;
  const pct = (ppm: number) => `${ppm / 10_000}%`;
  const faults = [
    c.lossPpm && `loss ${pct(c.lossPpm)}`,
    c.duplicatePpm && `duplicate ${pct(c.duplicatePpm)}`,
    c.corruptPpm && `corrupt ${pct(c.corruptPpm)} (≤${c.corruptBitsMax} bits)`,
    c.truncatePpm && `truncate ${pct(c.truncatePpm)}`,
    (c.delayMs || c.jitterMs) && `delay ${c.delayMs} ms + jitter < ${c.jitterMs} ms`,
    c.blackholeEveryMs && `blackhole ${c.blackholeForMs} ms every ${c.blackholeEveryMs} ms`,
  ].filter(Boolean);
  return `faults (both directions, seed ${plan.seed}): ${faults.length > 0 ? faults.join(", ") : "none"}`;
}

function signalled(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** Runs the proxy described by `plan` until io.stopped() resolves; returns the final counters. */
export async function runChaos(plan: ChaosPlan, io: ChaosIo): Promise<ChaosProxy["counters"]> {
  const proxy = await ChaosProxy.start({
    routes: plan.routes,
    config: plan.config,
    seed: plan.seed,
    maxClientsPerRoute: plan.maxClientsPerRoute,
  });
  const ports = proxy.ports();
  plan.routes.forEach((r, i) => {
    const listen = `${r.listenHost}:${ports[i]}`;
    io.out(`chaos: ${listen} ⇄ ${r.targetHost}:${r.targetPort}`);
  });
  io.out(describe(plan));
  io.started?.(proxy);
  const timer =
    plan.statsEveryMs > 0
      ? setInterval(
          () => io.out(`[${new Date().toISOString()}]\n${formatCounters(proxy.counters)}`),
          plan.statsEveryMs,
        )
      : undefined;
  const signal = await io.stopped();
  if (timer) clearInterval(timer);
  await proxy.close();
  io.out(`stopped (${signal}); final counters:\n${formatCounters(proxy.counters)}`);
  return proxy.counters;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Adds `chaos` to the chatnode program. */
export function addChaosCommand(program: Command, io?: Partial<ChaosIo>): Command {
  return program
    .command("chaos")
    .description("run a UDP proxy that drops, duplicates, delays, reorders, corrupts and truncates datagrams")
    .option("--listen <[host:]port>", "port (or host:port) to listen on, with --to")
    .option("--to <host:port>", "where --listen forwards to")
    .option("--map <listen=host:port>", "a route LISTEN=HOST:PORT; repeat for several nodes", collect, [])
    .option("--host <ip>", "listening address for routes given as a bare port", "127.0.0.1")
    .option("--loss <rate>", "drop this share of datagrams, each direction (e.g. 30%)")
    .option("--duplicate <rate>", "send this share of datagrams twice")
    .option("--corrupt <rate>", "flip 1..--corrupt-bits random bits in this share of datagrams")
    .option("--corrupt-bits <n>", "most bits flipped in a corrupted datagram (default 4)")
    .option("--truncate <rate>", "cut this share of datagrams to a random shorter length")
    .option("--delay <duration>", "hold every datagram this long")
    .option("--jitter <duration>", "plus a random extra below this (reorders datagrams)")
    .option("--blackhole-every <duration>", "cut the link periodically, e.g. every 10s ...")
    .option("--blackhole-for <duration>", "... for this long, e.g. 2s")
    .option("--seed <n>", "seed of the fault decisions (default: random, printed)")
    .option("--stats-every <duration>", "print the counters this often (0: only at exit)", "5s")
    .option("--max-clients <n>", "distinct clients per route before the oldest is forgotten (default 64)")
    .addHelpText("after", HELP_EXAMPLES)
    .action(async (options: ChaosCliOptions, command: Command) => {
      let plan: ChaosPlan;
      try {
        plan = planChaos(options);
      } catch (error) {
        if (error instanceof RangeError) command.error(`error: ${error.message}`, { exitCode: 2 });
        throw error;
      }
      try {
        await runChaos(plan, {
          out: io?.out ?? ((line) => process.stdout.write(`${line}\n`)),
          stopped: io?.stopped ?? signalled,
          ...(io?.started && { started: io.started }),
        });
      } catch (error) {
        // A port in use or an address this machine does not have: the user's to fix, like the chat's own.
        command.error(`error: ${(error as Error).message}`, { exitCode: 2 });
      }
    });
}
