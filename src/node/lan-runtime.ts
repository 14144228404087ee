/**
 * LAN discovery's I/O: one multicast DNS socket (224.0.0.251:5353, through `multicast-dns`), one timer, and the
 * node it works for. What to do with what is heard is src/paths/lan-discovery.ts (sans-IO); this file only moves
 * packets and time between it and the socket, and hands its actions to the node.
 */
import makeMdns from "multicast-dns";
import type { PeerId } from "../engine/types.ts";
import { type LanAction, LanDiscovery, type LanStats, type PeerPresence } from "../paths/lan-discovery.ts";
import { announcementRecords, discoveryQuestions, type LanRecord } from "../paths/lan-records.ts";
import type { LoopClock } from "./loop.ts";

/** What LAN discovery needs of the node (ChatNode gives it). */
export interface LanHost {
  readonly selfId: PeerId;
  /** The chat socket's port, announced in the SRV record. */
  readonly port: number;
  contactIds(): PeerId[];
  peers(): readonly ({ id: PeerId } & PeerPresence)[];
  /** A handshake initiation for `peer` to `address`; only an authenticated answer moves the peer there. */
  tryAddress(peer: PeerId, address: string): void;
  /** The contact is online at an address it announced on the LAN. */
  found(peer: PeerId, address: string): void;
}

export interface LanRuntimeStats extends LanStats {
  /** Socket errors (binding 5353 refused, a send with no route): discovery is then quiet, the chat unaffected. */
  socketErrors: number;
  candidates: number;
}

/**
 * Whether a node listening on `host` can be found on its LAN: an IPv4 address other hosts can reach (0.0.0.0 or
 * an interface's own). A node on 127.0.0.1 is reachable from this machine only, so announcing it would only send
 * neighbours' handshakes nowhere; IPv6 (a link-local multicast group per interface) is not done yet.
 */
export function lanReachable(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) && !host.startsWith("127.");
}

export class LanRuntime {
  private readonly mdns: makeMdns.MulticastDNS;
  private readonly discovery: LanDiscovery;
  private timer: unknown;
  private closed = false;
  private socketErrors = 0;

  /** Joins the multicast group on `host`'s interface (every interface for 0.0.0.0) and announces the node. */
  constructor(
    private readonly node: LanHost,
    private readonly clock: LoopClock,
    host: string,
  ) {
    this.discovery = new LanDiscovery(node.selfId, node.contactIds(), clock.now());
    // Bound to the wildcard whatever the interface: a socket bound to a unicast address receives no multicast.
    this.mdns = makeMdns({ bind: "0.0.0.0", ...(host !== "0.0.0.0" && { interface: host }) });
    this.mdns.on("error", () => this.socketErrors++);
    this.mdns.on("warning", () => this.socketErrors++);
    this.mdns.on("query", (packet) => {
      this.discovery.onQuery(this.clock.now(), packet.questions);
      this.run();
    });
    this.mdns.on("response", (packet, rinfo) => {
      const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])] as LanRecord[];
      this.discovery.onResponse(this.clock.now(), rinfo.address, records);
      this.run();
    });
    this.run();
  }

  /** The engine saw `peer` come online at `address` (found here, if the contact announced it). */
  onPeerOnline(peer: PeerId, address: string): void {
    const action = this.discovery.onPeerOnline(peer, address);
    if (action) this.act(action);
  }

  setContacts(ids: Iterable<PeerId>): void {
    this.discovery.setContacts(ids);
  }

  stats(): LanRuntimeStats {
    return {
      ...this.discovery.stats(),
      socketErrors: this.socketErrors,
      candidates: this.discovery.candidateCount(),
    };
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    return new Promise((resolve) => this.mdns.destroy(() => resolve()));
  }

  /** Handles what is due, then arms the one timer for what is next. */
  private run(): void {
    if (this.closed) return;
    // Read from the engine only if a candidate asks: most packets (a flood of them too) need no presence at all.
    let presence: Map<PeerId, PeerPresence> | undefined;
    const presenceOf = (peer: PeerId) => {
      presence ??= new Map(this.node.peers().map((p) => [p.id, p]));
      return presence.get(peer);
    };
    for (const action of this.discovery.handleTimeout(this.clock.now(), presenceOf)) this.act(action);
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    const at = this.discovery.pollTimeout();
    if (at !== undefined)
      this.timer = this.clock.setTimer(() => this.run(), Math.max(0, at - this.clock.now()));
  }

  private act(action: LanAction): void {
    switch (action.type) {
      case "query":
        this.mdns.query({ questions: discoveryQuestions() } as makeMdns.QueryPacket);
        return;
      case "announce":
        this.mdns.respond({ answers: announcementRecords(this.node.selfId, this.node.port) } as never);
        return;
      case "probe":
        this.node.tryAddress(action.peer, action.address);
        return;
      case "found":
        this.node.found(action.peer, action.address);
        return;
    }
  }
}
