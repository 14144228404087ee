/**
 * LAN discovery over real multicast (issue 20, must-have 7c): hosts in network namespaces of their own on one
 * bridge, no other network, and contacts whose address hints are dead (the demo users' 127.0.0.1 hints point,
 * inside another namespace, at nothing). The nodes must find each other by multicast DNS and chat; a neighbour
 * forging a contact's announcement must not move its address; `--no-lan` must announce nothing. Runs as root
 * with `ip netns`, skipped otherwise; the namespaces are removed in `after`, even on failure.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PeerId } from "../../src/engine/types.ts";
import { openDirectory } from "../../src/identity/directory.ts";
import { INITIATION_BYTES, SessionPacketType } from "../../src/session/wire.ts";
import { chatArgs, demoDataDir } from "../cli/demo-dir.ts";
import {
  type JsonEvent,
  type Lan,
  makeLan,
  NsProcess,
  netnsUnavailable,
  removeLan,
} from "./helpers/netns-lan.ts";

const skip = netnsUnavailable();
const tag = `${process.pid % 100_000}`;
/** Generous: start-up (tsx compiling the sources, on a busy machine) is not what is measured. */
const WAIT_MS = 30_000;
const FORGER = "test/paths/fixtures/lan-forger.ts";
const PASSWORDS: Record<string, string> = {
  alice: "pass1",
  bob: "pass2",
  carol: "pass3",
  dave: "pass4",
  erin: "pass5",
  frank: "pass6",
};

describe("LAN discovery between network namespaces", { skip, timeout: 120_000 }, () => {
  let lan: Lan | undefined;
  let dataDir = "";
  const procs: NsProcess[] = [];
  const idOf = (name: string) => openDirectory(dataDir).getUser(name)?.keyId as PeerId;
  const host = (name: string) => lan?.hosts.get(name) as { ns: string; address: string };
  const chat = (name: string, onHost: string, extra: string[] = []) => {
    const p = NsProcess.chat(
      host(onHost).ns,
      chatArgs(dataDir, name, PASSWORDS[name] as string, ["--host", "0.0.0.0", "--json", ...extra]),
    );
    procs.push(p);
    return p;
  };
  const forger = (onHost: string, args: string[]) => {
    const p = new NsProcess(host(onHost).ns, [FORGER, ...args]);
    procs.push(p);
    return p;
  };
  const isMessage = (text: string) => (e: JsonEvent) => e.event === "message" && e.text === text;

  // Made here, not in `before`: tempDataDir registers its removal with this suite's `after`.
  const demoUsers = skip ? Promise.resolve("") : demoDataDir("lan-netns");
  before(async () => {
    dataDir = await demoUsers;
    lan = makeLan(tag, ["one", "two", "three"]);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    removeLan(lan);
  });

  it("two hosts with dead address hints find each other by multicast and chat both ways", async (t) => {
    const alice = chat("alice", "one");
    const aliceReady = await alice.waitFor((e) => e.event === "ready", WAIT_MS, "alice ready");
    const bob = chat("bob", "two");
    const bobReady = await bob.waitFor((e) => e.event === "ready", WAIT_MS, "bob ready");
    const aliceFound = await alice.waitFor(
      (e) => e.event === "lan-found" && e.peer === "bob",
      WAIT_MS,
      "alice finds bob",
    );
    const bobFound = await bob.waitFor(
      (e) => e.event === "lan-found" && e.peer === "alice",
      WAIT_MS,
      "bob finds alice",
    );
    assert.equal(aliceFound.address, `${host("two").address}:${bobReady.port}`);
    assert.equal(bobFound.address, `${host("one").address}:${aliceReady.port}`);
    // Measured, not asserted (a loaded machine may take longer): bob's start (spawn, and ready: key unlocked,
    // socket bound) to each side's lan-found.
    const ms = (a: number, b: number) => Math.round(a - b);
    const online = (p: NsProcess, peer: string) =>
      p.events.find((e) => e.event === "peer-online" && e.peer === peer)?.at ?? Number.NaN;
    t.diagnostic(
      `peer-online from bob's ready: at alice ${ms(online(alice, "bob"), bobReady.at)} ms, at bob ${ms(online(bob, "alice"), bobReady.at)} ms`,
    );
    t.diagnostic(
      `lan-found from bob's ready: at alice ${ms(aliceFound.at, bobReady.at)} ms, at bob ${ms(bobFound.at, bobReady.at)} ms; from bob's spawn: ${ms(aliceFound.at, bob.startedAt)} ms, ${ms(bobFound.at, bob.startedAt)} ms`,
    );
    alice.send("hello from alice");
    bob.send("hello from bob");
    await bob.waitFor(isMessage("hello from alice"), WAIT_MS, "alice's broadcast at bob");
    await alice.waitFor(isMessage("hello from bob"), WAIT_MS, "bob's broadcast at alice");
    await Promise.all([alice.stop(), bob.stop()]);
  });

  it("a neighbour forging a contact's announcement gets a handshake initiation, never the contact's traffic", async (t) => {
    // Mallory announces, every 200 ms from before carol starts, that dave is at mallory's address; dave is not
    // running yet, so carol, who cannot reach him, tries there.
    const mallory = forger("three", ["40000", "--forge", idOf("dave")]);
    await mallory.waitFor((e) => e.event === "ready", WAIT_MS, "mallory ready");
    const carol = chat("carol", "one");
    await carol.waitFor((e) => e.event === "ready", WAIT_MS, "carol ready");
    await mallory.waitFor((e) => e.event === "datagram", WAIT_MS, "carol's initiation at mallory");
    const dave = chat("dave", "two");
    const daveReady = await dave.waitFor((e) => e.event === "ready", WAIT_MS, "dave ready");
    const real = `${host("two").address}:${daveReady.port}`;
    const found = await carol.waitFor(
      (e) => e.event === "lan-found" && e.peer === "dave",
      WAIT_MS,
      "carol finds dave",
    );
    assert.equal(found.address, real, "found where dave really is");
    carol.send("for dave only");
    await dave.waitFor(isMessage("for dave only"), WAIT_MS, "carol's broadcast at dave");
    carol.send("/peers");
    const peers = await carol.waitFor((e) => e.event === "peers", WAIT_MS, "carol's /peers");
    const daveView = (peers.peers as { name: string; address: string; online: boolean }[]).find(
      (p) => p.name === "dave",
    );
    assert.deepEqual(
      { address: daveView?.address, online: daveView?.online },
      { address: real, online: true },
    );
    // What the forgery bought: handshake initiations (125 bytes), which it cannot answer, and nothing else.
    const got = mallory.events.filter((e) => e.event === "datagram");
    assert.ok(
      got.every((e) => e.type === SessionPacketType.Initiation && e.bytes === INITIATION_BYTES),
      JSON.stringify(got),
    );
    assert.ok(!carol.events.some((e) => e.event === "lan-found" && e.address !== real));
    t.diagnostic(`mallory got ${got.length} initiation(s), nothing else`);
    await Promise.all([carol.stop(), dave.stop(), mallory.kill()]);
  });

  it("--no-lan announces nothing, while a node without it is heard", async () => {
    const listener = forger("three", ["40001"]);
    await listener.waitFor((e) => e.event === "ready", WAIT_MS, "listener ready");
    const erin = chat("erin", "one", ["--no-lan"]);
    const frank = chat("frank", "two");
    const erinReady = await erin.waitFor((e) => e.event === "ready", WAIT_MS, "erin ready");
    await frank.waitFor((e) => e.event === "ready", WAIT_MS, "frank ready");
    // frank announces at start and one second later; both must be heard.
    const heardFrank = () => listener.events.filter((e) => e.event === "announced" && e.id === idOf("frank"));
    const deadline = performance.now() + WAIT_MS;
    while (heardFrank().length < 2 && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(heardFrank().length >= 2, "the listener hears frank's two start-up announcements");
    // erin's would have gone out at her ready and one second later: wait past both.
    while (performance.now() < erinReady.at + 2000) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      listener.events.filter((e) => e.event === "announced" && e.id === idOf("erin")),
      [],
      "no announcement of erin",
    );
    erin.send("/stats");
    const stats = await erin.waitFor((e) => e.event === "stats", WAIT_MS, "erin's /stats");
    assert.equal(stats.lan, undefined, "no LAN discovery running in erin");
    assert.ok(!erin.events.some((e) => e.event === "lan-found"));
    await Promise.all([erin.stop(), frank.stop(), listener.kill()]);
  });
});
