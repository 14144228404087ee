/**
 * LAN discovery's decisions on a virtual clock (src/paths/lan-discovery.ts): what an announcement makes the node
 * do, and what it never does. No sockets: records in, actions out.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PeerId } from "../../src/engine/types.ts";
import {
  DEFAULT_LAN_TIMING,
  type LanAction,
  LanDiscovery,
  type PeerPresence,
} from "../../src/paths/lan-discovery.ts";
import {
  announcementRecords,
  asksFor,
  discoveryQuestions,
  LAN_RECORDS_PER_PACKET_MAX,
  type LanRecord,
  readAnnouncements,
} from "../../src/paths/lan-records.ts";

const SELF = "aaaaaaaaaaaaaaaa" as PeerId;
const BOB = "b0b0b0b0b0b0b0b0" as PeerId;
const CAROL = "ca201ca201ca201c" as PeerId;
const STRANGER = "5555555555555555" as PeerId;
const { graceMs, probeGapMs } = DEFAULT_LAN_TIMING;

const offline = (): PeerPresence | undefined => ({ online: false, address: "127.0.0.1:9" });

/** A node started at 0 whose start-up announcements are already out, so that only what a test causes shows. */
function started(contacts: PeerId[] = [BOB, CAROL]): LanDiscovery {
  const d = new LanDiscovery(SELF, contacts, 0);
  d.handleTimeout(5000, offline);
  return d;
}

function probes(actions: LanAction[]): string[] {
  return actions.flatMap((a) => (a.type === "probe" ? [`${a.peer}@${a.address}`] : []));
}

describe("LAN records (docs/PROTOCOL.md §15)", () => {
  it("an announcement reads back as the key id and port it names", () => {
    assert.deepEqual(readAnnouncements(announcementRecords(BOB, 12002)), [{ id: BOB, port: 12002 }]);
  });

  it("names the instance by key id under _chatnode._udp.local", () => {
    const [ptr, srv, txt] = announcementRecords(BOB, 12002);
    assert.deepEqual(ptr, {
      name: "_chatnode._udp.local",
      type: "PTR",
      ttl: 120,
      data: `${BOB}._chatnode._udp.local`,
    });
    assert.deepEqual(srv?.data, { priority: 0, weight: 0, port: 12002, target: `${BOB}.local` });
    assert.deepEqual(txt?.data, ["v=1"]);
  });

  it("ignores goodbyes, other services, bad ports and non-hex names, and reads a bounded number per packet", () => {
    const srv = (name: string, port: unknown, ttl = 120): LanRecord => ({
      name,
      type: "SRV",
      ttl,
      data: { port },
    });
    const bad = [
      srv(`${BOB}._chatnode._udp.local`, 12002, 0),
      srv(`${BOB}._other._udp.local`, 12002),
      srv(`${BOB}._chatnode._udp.local`, 0),
      srv(`${BOB}._chatnode._udp.local`, 70000),
      srv(`${BOB}._chatnode._udp.local`, "12002"),
      srv("zzzzzzzzzzzzzzzz._chatnode._udp.local", 12002),
      { name: `${BOB}._chatnode._udp.local`, type: "SRV", ttl: 120 },
      { name: `${BOB}._chatnode._udp.local`, type: "A", ttl: 120, data: "10.0.0.9" },
    ];
    assert.deepEqual(readAnnouncements(bad), []);
    const many = Array.from({ length: 100 }, (_, i) => srv(`${BOB}._chatnode._udp.local`, 1000 + i));
    assert.equal(readAnnouncements(many).length, LAN_RECORDS_PER_PACKET_MAX);
  });

  it("answers questions for the service or for this node only", () => {
    assert.ok(asksFor(discoveryQuestions(), SELF));
    assert.ok(asksFor([{ name: `${SELF}._chatnode._udp.local`, type: "SRV" }], SELF));
    assert.ok(!asksFor([{ name: `${BOB}._chatnode._udp.local`, type: "SRV" }], SELF));
    assert.ok(!asksFor([{ name: "_http._tcp.local", type: "PTR" }], SELF));
    assert.ok(!asksFor(undefined, SELF));
  });
});

describe("LAN discovery on a virtual clock", () => {
  it("queries and announces at start and one second later, then only when asked", () => {
    const d = new LanDiscovery(SELF, [BOB], 1000);
    assert.equal(d.pollTimeout(), 1000);
    assert.deepEqual(d.handleTimeout(1000, offline), [{ type: "query" }, { type: "announce" }]);
    assert.equal(d.pollTimeout(), 2000);
    assert.deepEqual(d.handleTimeout(2000, offline), [{ type: "query" }, { type: "announce" }]);
    assert.equal(d.pollTimeout(), undefined);
  });

  it("answers a flood of queries at most once a second", () => {
    const d = started();
    let answers = 0;
    for (let now = 10_000; now < 20_000; now += 10) {
      d.onQuery(now, discoveryQuestions());
      answers += d.handleTimeout(now, offline).filter((a) => a.type === "announce").length;
    }
    assert.ok(answers >= 9 && answers <= 10, `${answers} answers in 10 s`);
  });

  it("tries a contact announced on the LAN after the grace, at the announcement's source and SRV port", () => {
    const d = started();
    d.onResponse(10_000, "10.0.0.2", announcementRecords(BOB, 12002));
    assert.equal(d.pollTimeout(), 10_000 + graceMs);
    assert.deepEqual(probes(d.handleTimeout(10_000 + graceMs - 1, offline)), []);
    assert.deepEqual(probes(d.handleTimeout(10_000 + graceMs, offline)), [`${BOB}@10.0.0.2:12002`]);
    assert.equal(d.pollTimeout(), undefined, "tried once, then nothing is due");
  });

  it("does not second-guess an address that works: a contact online by the grace is not probed", () => {
    const d = started();
    d.onResponse(10_000, "10.0.0.2", announcementRecords(BOB, 12002));
    assert.deepEqual(
      d.handleTimeout(10_000 + graceMs, () => ({ online: true, address: "192.0.2.7:12002" })),
      [],
    );
    // Online at the very address it announced: found here, and still not probed.
    d.onResponse(10_100, "10.0.0.3", announcementRecords(CAROL, 12003));
    const there = () => ({ online: true, address: "10.0.0.3:12003" });
    assert.deepEqual(d.handleTimeout(10_100 + graceMs, there), [
      { type: "found", peer: CAROL, address: "10.0.0.3:12003" },
    ]);
    assert.equal(d.stats().probes, 0);
  });

  it("reports at once a contact heard on the LAN after it came online at the address announced", () => {
    const d = started();
    d.onResponse(10_000, "10.0.0.2", announcementRecords(BOB, 12002));
    const there = () => ({ online: true, address: "10.0.0.2:12002" });
    assert.deepEqual(d.handleTimeout(10_000, there), [
      { type: "found", peer: BOB, address: "10.0.0.2:12002" },
    ]);
  });

  it("reports a contact found once it comes online at the address it announced, once", () => {
    const d = started();
    d.onResponse(10_000, "10.0.0.2", announcementRecords(BOB, 12002));
    d.handleTimeout(10_000 + graceMs, offline);
    assert.equal(d.onPeerOnline(BOB, "10.9.9.9:1"), undefined, "online elsewhere: not found here");
    assert.deepEqual(d.onPeerOnline(BOB, "10.0.0.2:12002"), {
      type: "found",
      peer: BOB,
      address: "10.0.0.2:12002",
    });
    assert.equal(d.onPeerOnline(BOB, "10.0.0.2:12002"), undefined);
    assert.equal(d.stats().found, 1);
  });

  it("ignores its own announcements and counts, but never keeps, those of unknown keys", () => {
    const d = started();
    d.onResponse(10_000, "10.0.0.1", announcementRecords(SELF, 12001));
    for (let i = 0; i < 1000; i++)
      d.onResponse(10_000 + i, "10.0.0.66", announcementRecords(STRANGER, 1000 + i));
    assert.equal(d.candidateCount(), 0);
    assert.equal(d.pollTimeout(), undefined);
    assert.deepEqual(d.stats().ownEchoes, 1);
    assert.deepEqual(d.stats().unknownKeys, 1000);
  });

  it("takes announcements from IPv4 sources only", () => {
    const d = started();
    d.onResponse(10_000, "fe80::1", announcementRecords(BOB, 12002));
    d.onResponse(10_000, "10.0.0.256", announcementRecords(BOB, 12002));
    assert.equal(d.candidateCount(), 0);
  });

  it("a flood of forged addresses for a contact: bounded candidates, at most one probe per gap", () => {
    const d = started([BOB]);
    let probed = 0;
    let maxCandidates = 0;
    const start = 10_000;
    const end = start + 60_000;
    for (let now = start; now < end; now += 5) {
      d.onResponse(now, `10.66.${(now / 5) % 250}.${now % 250}`, announcementRecords(BOB, 40_000));
      probed += probes(d.handleTimeout(now, offline)).length;
      maxCandidates = Math.max(maxCandidates, d.candidateCount());
    }
    assert.ok(maxCandidates <= DEFAULT_LAN_TIMING.candidatesPerPeerMax, `${maxCandidates} candidates`);
    assert.ok(probed <= (end - start) / probeGapMs + 1, `${probed} probes in 60 s`);
    assert.ok(probed >= 50, "the flood does not stop probing either");
  });

  it("a real address held is tried whatever flood of forged ones follows it", () => {
    const d = started([BOB]);
    d.onResponse(10_000, "10.0.0.2", announcementRecords(BOB, 12002));
    const tried: string[] = [];
    for (let now = 10_001; now < 20_000; now += 5) {
      d.onResponse(now, `10.66.0.${now % 250}`, announcementRecords(BOB, now));
      tried.push(...probes(d.handleTimeout(now, offline)));
    }
    assert.equal(tried[0], `${BOB}@10.0.0.2:12002`);
    assert.ok(d.stats().candidatesDropped > 0);
  });

  it("the real address among forged ones is tried within one probe gap of the grace", () => {
    const d = started([BOB]);
    d.onResponse(10_000, "10.0.0.66", announcementRecords(BOB, 40_000)); // the forger, first
    d.onResponse(10_001, "10.0.0.2", announcementRecords(BOB, 12002));
    const tried: string[] = [];
    for (let now = 10_000; now <= 10_001 + graceMs + probeGapMs; now++)
      tried.push(...probes(d.handleTimeout(now, offline)));
    assert.deepEqual(tried, [`${BOB}@10.0.0.66:40000`, `${BOB}@10.0.0.2:12002`]);
  });

  it("a candidate announced again is tried again only after retryCandidateMs", () => {
    const d = started([BOB]);
    const tried: number[] = [];
    for (let now = 10_000; now < 40_000; now += 100) {
      d.onResponse(now, "10.0.0.2", announcementRecords(BOB, 12002));
      if (probes(d.handleTimeout(now, offline)).length > 0) tried.push(now);
    }
    assert.deepEqual(tried, [10_500, 21_000, 31_500]);
  });

  it("forgets the candidates of a contact removed from the directory", () => {
    const d = started();
    d.onResponse(10_000, "10.0.0.2", announcementRecords(BOB, 12002));
    d.setContacts([CAROL]);
    assert.equal(d.candidateCount(), 0);
    assert.deepEqual(d.handleTimeout(20_000, offline), []);
    d.onResponse(20_000, "10.0.0.2", announcementRecords(BOB, 12002));
    assert.equal(d.stats().unknownKeys, 1);
  });
});
