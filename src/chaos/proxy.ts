/**
 * The chaos proxy: a standalone UDP relay that damages traffic on purpose. Each route listens on one port and
 * forwards to one target. Every distinct client address that sends to the listening port gets its own upstream
 * socket (like a NAT), so the target sees one stable address per client and its replies are routed back to the
 * client they belong to. Each datagram, in either direction, meets the fate decisions.ts draws for it from a
 * seeded Rng: loss, duplication, delay and jitter (reordering), bit flips, truncation, and periodic blackholes.
 * Every fault is counted, per direction.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIP } from "node:net";
import { SeededRng } from "../faults/seeded-rng.ts";
import { type ChaosConfig, decide, NO_CHAOS, validateChaosConfig } from "./decisions.ts";

export type Direction = "forward" | "reverse";

export interface Route {
  listenHost: string;
  /** 0 picks a free port (see ChaosProxy.ports()). */
  listenPort: number;
  targetHost: string;
  targetPort: number;
}

export interface DirectionCounters {
  /** Datagrams that arrived at the proxy in this direction. */
  received: number;
  /** Copies sent on (a duplicated datagram counts twice). */
  forwarded: number;
  /** Dropped by the loss rate. */
  dropped: number;
  /** Dropped because a blackhole window was open. */
  blackholed: number;
  duplicated: number;
  corrupted: number;
  truncated: number;
  /** Copies held for a delay before being sent. */
  delayed: number;
  /** Copies sent after a datagram that arrived later than them. */
  reordered: number;
  /** Dropped because too many datagrams were already held for delay. */
  overflow: number;
}

export interface ChaosCounters {
  /** Client → target. */
  forward: DirectionCounters;
  /** Target → client. */
  reverse: DirectionCounters;
  /** Client addresses seen (sessions created), and sessions evicted to respect maxClientsPerRoute. */
  clients: number;
  evicted: number;
  /** Datagrams on an upstream socket from an address other than the target: ignored. */
  stray: number;
}

export interface TapRecord {
  route: number;
  direction: Direction;
  /** The address the datagram came from: the client (forward) or the target (reverse). */
  from: string;
  /** Where the proxy sends it: the target (forward) or the client (reverse). */
  to: string;
  bytes: Uint8Array;
}

export interface ChaosProxyOptions {
  routes: readonly Route[];
  config?: Partial<ChaosConfig>;
  seed?: number;
  /** Distinct clients per route; beyond it the least recently heard one's upstream socket is closed. */
  maxClientsPerRoute?: number;
  /** Datagrams held for delay at any moment, all routes together; beyond it datagrams are dropped. */
  maxHeld?: number;
  /** Sees every datagram as it arrived, before any fault: for capturing real traffic in tests. */
  tap?: (record: TapRecord) => void;
  now?: () => number;
}

export function newDirectionCounters(): DirectionCounters {
  return {
    received: 0,
    forwarded: 0,
    dropped: 0,
    blackholed: 0,
    duplicated: 0,
    corrupted: 0,
    truncated: 0,
    delayed: 0,
    reordered: 0,
    overflow: 0,
  };
}

function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function familyOf(host: string): "udp4" | "udp6" {
  return isIP(host) === 6 ? "udp6" : "udp4";
}

/** One client of one route: its address and the upstream socket that speaks for it to the target. */
interface Session {
  client: RemoteInfo;
  key: string;
  upstream: Socket;
  /** Arrival numbers, to count reordering per direction. */
  arrived: Record<Direction, number>;
  sentMax: Record<Direction, number>;
}

interface RouteState {
  index: number;
  route: Route;
  front: Socket;
  /** Insertion order is recency order: a session is re-inserted whenever its client is heard. */
  sessions: Map<string, Session>;
  targetKey: string;
}

export class ChaosProxy {
  readonly counters: ChaosCounters = {
    forward: newDirectionCounters(),
    reverse: newDirectionCounters(),
    clients: 0,
    evicted: 0,
    stray: 0,
  };
  private config: ChaosConfig;
  private readonly rng: SeededRng;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly routes: RouteState[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly maxClients: number;
  private readonly maxHeld: number;
  private closed = false;

  private constructor(private readonly options: ChaosProxyOptions) {
    this.config = validateChaosConfig({ ...NO_CHAOS, ...options.config });
    this.rng = new SeededRng(options.seed ?? 1);
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.maxClients = options.maxClientsPerRoute ?? 64;
    this.maxHeld = options.maxHeld ?? 10_000;
  }

  /** Binds every route's listening socket. Rejects with a readable Error if one cannot be bound. */
  static async start(options: ChaosProxyOptions): Promise<ChaosProxy> {
    if (options.routes.length === 0) throw new RangeError("the chaos proxy needs at least one route");
    for (const r of options.routes) {
      for (const host of [r.listenHost, r.targetHost])
        if (!isIP(host)) throw new RangeError(`"${host}" is not an IP address`);
      for (const port of [r.listenPort, r.targetPort])
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port ${port}`);
    }
    const proxy = new ChaosProxy(options);
    try {
      for (const [index, route] of options.routes.entries()) await proxy.bindRoute(index, route);
    } catch (error) {
      await proxy.close();
      throw error;
    }
    return proxy;
  }

  private async bindRoute(index: number, route: Route): Promise<void> {
    const front = createSocket(familyOf(route.listenHost));
    await new Promise<void>((resolve, reject) => {
      front.once("error", (err: NodeJS.ErrnoException) => {
        front.close();
        reject(
          new Error(
            err.code === "EADDRINUSE"
              ? `port ${route.listenPort} on ${route.listenHost} is already in use`
              : `cannot listen on ${formatAddress(route.listenHost, route.listenPort)}: ${err.message}`,
          ),
        );
      });
      front.bind(route.listenPort, route.listenHost, () => resolve());
    });
    front.on("error", () => {}); // per-datagram errors after binding: the datagram is lost, as on a real link
    const state: RouteState = {
      index,
      route,
      front,
      sessions: new Map(),
      targetKey: formatAddress(route.targetHost, route.targetPort),
    };
    front.on("message", (bytes, rinfo) => this.fromClient(state, bytes, rinfo));
    this.routes.push(state);
  }

  /** The listening ports, in route order (useful with listenPort 0). */
  ports(): number[] {
    return this.routes.map((r) => r.front.address().port);
  }

  getConfig(): ChaosConfig {
    return { ...this.config };
  }

  /** Changes the faults live; the Rng sequence carries on. */
  setConfig(change: Partial<ChaosConfig>): ChaosConfig {
    this.config = validateChaosConfig({ ...this.config, ...change });
    return this.getConfig();
  }

  /** Datagrams currently held for delay. */
  held(): number {
    return this.timers.size;
  }

  private session(state: RouteState, rinfo: RemoteInfo): Session {
    const key = formatAddress(rinfo.address, rinfo.port);
    const existing = state.sessions.get(key);
    if (existing) {
      state.sessions.delete(key);
      state.sessions.set(key, existing);
      return existing;
    }
    if (state.sessions.size >= this.maxClients) {
      const oldest = state.sessions.values().next().value;
      if (oldest) {
        state.sessions.delete(oldest.key);
        oldest.upstream.close();
        this.counters.evicted++;
      }
    }
    // Unbound: the first send binds it to a free port on every interface.
    const upstream = createSocket(familyOf(state.route.targetHost));
    const session: Session = {
      client: rinfo,
      key,
      upstream,
      arrived: { forward: 0, reverse: 0 },
      sentMax: { forward: 0, reverse: 0 },
    };
    upstream.on("error", () => {});
    upstream.on("message", (bytes, from) => {
      if (formatAddress(from.address, from.port) !== state.targetKey) {
        this.counters.stray++;
        return;
      }
      this.relay(state, session, "reverse", bytes);
    });
    state.sessions.set(key, session);
    this.counters.clients++;
    return session;
  }

  private fromClient(state: RouteState, bytes: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    this.relay(state, this.session(state, rinfo), "forward", bytes);
  }

  private relay(state: RouteState, session: Session, direction: Direction, buffer: Buffer): void {
    const c = this.counters[direction];
    c.received++;
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
    const clientKey = session.key;
    this.options.tap?.({
      route: state.index,
      direction,
      from: direction === "forward" ? clientKey : state.targetKey,
      to: direction === "forward" ? state.targetKey : clientKey,
      bytes: Uint8Array.from(bytes),
    });
    const arrival = ++session.arrived[direction];
    const fate = decide(this.rng, this.config, bytes, this.now() - this.startedAt);
    if (fate.action === "drop") {
      if (fate.why === "loss") c.dropped++;
      else c.blackholed++;
      return;
    }
    if (fate.corrupted) c.corrupted++;
    if (fate.truncated) c.truncated++;
    if (fate.duplicated) c.duplicated++;
    for (const copy of fate.copies) {
      if (copy.delayMs <= 0) {
        this.emit(state, session, direction, arrival, copy.bytes);
        continue;
      }
      if (this.timers.size >= this.maxHeld) {
        c.overflow++;
        continue;
      }
      c.delayed++;
      const out = Uint8Array.from(copy.bytes);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.emit(state, session, direction, arrival, out);
      }, copy.delayMs);
      this.timers.add(timer);
    }
  }

  private emit(
    state: RouteState,
    session: Session,
    direction: Direction,
    arrival: number,
    bytes: Uint8Array,
  ) {
    if (this.closed) return;
    const c = this.counters[direction];
    if (arrival < session.sentMax[direction]) c.reordered++;
    else session.sentMax[direction] = arrival;
    c.forwarded++;
    if (direction === "forward") {
      if (!state.sessions.has(session.key)) return; // evicted while the datagram was held
      session.upstream.send(bytes, state.route.targetPort, state.route.targetHost, () => {});
    } else {
      state.front.send(bytes, session.client.port, session.client.address, () => {});
    }
  }

  /** Stops: drops whatever is held, closes every socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closing: Promise<void>[] = [];
    const closeSocket = (s: Socket) =>
      closing.push(
        new Promise<void>((resolve) => {
          try {
            s.close(() => resolve());
          } catch {
            resolve(); // never bound (no datagram was ever sent on it) or already closed
          }
        }),
      );
    for (const r of this.routes) {
      for (const s of r.sessions.values()) closeSocket(s.upstream);
      r.sessions.clear();
      closeSocket(r.front);
    }
    await Promise.all(closing);
  }
}

/** Two lines, one per direction, for periodic and final reports. */
export function formatCounters(c: ChaosCounters): string {
  const line = (name: string, d: DirectionCounters) =>
    `${name}: received ${d.received}, forwarded ${d.forwarded}, dropped ${d.dropped}, blackholed ${d.blackholed}, ` +
    `duplicated ${d.duplicated}, corrupted ${d.corrupted}, truncated ${d.truncated}, delayed ${d.delayed}, ` +
    `reordered ${d.reordered}, overflow ${d.overflow}`;
  return [
    line("client→target", c.forward),
    line("target→client", c.reverse),
    `clients ${c.clients}, evicted ${c.evicted}, stray ${c.stray}`,
  ].join("\n");
}
