/**
 * The DNS-SD records by which a node says on its LAN "the ChatNode with key id X listens on UDP port P here"
 * (docs/PROTOCOL.md §15), and the reading of other nodes' records. Plain data in the shape of dns-packet's
 * records, so that this file stays sans-IO: the runtime (src/node/lan-runtime.ts) puts them on multicast DNS.
 */
import type { PeerId } from "../engine/types.ts";

/** The DNS-SD service type of a ChatNode (RFC 6763 §7: `_name._udp` under `.local`). */
export const LAN_SERVICE = "_chatnode._udp.local";
/** How long a record may be cached, in seconds (RFC 6762 §10 recommends 120 s for SRV and PTR). */
export const LAN_RECORD_TTL_S = 120;
/** SRV records read from one packet at most: a packet stuffed with thousands costs no more than this. */
export const LAN_RECORDS_PER_PACKET_MAX = 8;

/** A resource record as dns-packet encodes and decodes it (only the fields read or written here). */
export interface LanRecord {
  name: string;
  type: string;
  ttl?: number;
  data?: unknown;
}

export interface LanQuestion {
  name: string;
  type: string;
}

/** One node announced in a packet: its key id and its chat port. */
export interface Announced {
  id: PeerId;
  port: number;
}

const INSTANCE = /^([0-9a-f]{16})\._chatnode\._udp\.local$/;

/** The instance name of a node: its key id (16 lower-case hex digits) under the service. */
export function instanceName(id: PeerId): string {
  return `${id}.${LAN_SERVICE}`;
}

/** What a node multicasts to announce itself, and answers a query with: PTR → instance, SRV → port, TXT. */
export function announcementRecords(id: PeerId, port: number): LanRecord[] {
  const instance = instanceName(id);
  return [
    { name: LAN_SERVICE, type: "PTR", ttl: LAN_RECORD_TTL_S, data: instance },
    {
      name: instance,
      type: "SRV",
      ttl: LAN_RECORD_TTL_S,
      data: { priority: 0, weight: 0, port, target: `${id}.local` },
    },
    // RFC 6763 §6: every instance has a TXT record; this one names the version of §15 and nothing else.
    { name: instance, type: "TXT", ttl: LAN_RECORD_TTL_S, data: ["v=1"] },
  ];
}

/** The question a starting node multicasts: which ChatNodes are on this link? */
export function discoveryQuestions(): LanQuestion[] {
  return [{ name: LAN_SERVICE, type: "PTR" }];
}

/** Whether a query asks for ChatNodes in general or for the node `self`. */
export function asksFor(questions: readonly LanQuestion[] | undefined, self: PeerId): boolean {
  return (questions ?? []).some((q) => {
    const name = String(q.name).toLowerCase();
    const type = q.type === "ANY" || q.type === "PTR" || q.type === "SRV";
    return type && (name === LAN_SERVICE || name === instanceName(self));
  });
}

/**
 * The nodes a response announces: its SRV records named like an instance, with a port of 1–65535 and a non-zero
 * TTL (a zero TTL is a goodbye, RFC 6762 §10.1). Anything else in the packet is ignored; never throws.
 */
export function readAnnouncements(records: readonly LanRecord[]): Announced[] {
  const found: Announced[] = [];
  for (const r of records) {
    if (found.length >= LAN_RECORDS_PER_PACKET_MAX) break;
    if (r.type !== "SRV" || r.ttl === 0 || typeof r.name !== "string") continue;
    const match = INSTANCE.exec(r.name.toLowerCase());
    const port = (r.data as { port?: unknown } | undefined)?.port;
    if (!match || typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    found.push({ id: match[1] as PeerId, port });
  }
  return found;
}
