/**
 * Two hosts: alice and bob in network namespaces of their own, joined by a veth pair with 10.x addresses (only
 * inside namespaces this test creates; nothing is sent anywhere else). The link is cut (`ip link set ... down`)
 * long enough for messages to be given up, then restored: everything sent while it was cut is delivered after,
 * exactly once. Runs as root with `ip netns`; skipped otherwise. The namespaces are removed in `after`, even on
 * failure (their veth ends go with them).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type PeerFixtureSpec, type PeerProcess, readDb, startPeer } from "./helpers/peer-process.ts";
import { newPeerSpec } from "./helpers/spec.ts";
import { eventually } from "./helpers/target.ts";

function netnsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return "needs root";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch {
    return "needs `ip netns`";
  }
  return false;
}

const skip = netnsUnavailable();
const tag = `${process.pid % 100_000}`;
const NS_A = `cn-a-${tag}`;
const NS_B = `cn-b-${tag}`;
const VETH_A = `cnva${tag}`;
const VETH_B = `cnvb${tag}`;
const SUBNET = `10.213.${(process.pid % 250) + 1}`;
const ADDRESS_A = `${SUBNET}.1`;
const ADDRESS_B = `${SUBNET}.2`;

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

describe("two network namespaces joined by a veth link", { skip, timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "chatnode-netns-"));
  const procs: PeerProcess[] = [];
  after(async () => {
    for (const p of procs) if (p.running()) await p.kill();
    for (const ns of [NS_A, NS_B]) {
      try {
        ip("netns", "del", ns);
      } catch {
        // never created, or already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("a link cut and restored: messages sent while it was down arrive after, exactly once", async (t) => {
    ip("netns", "add", NS_A);
    ip("netns", "add", NS_B);
    ip("link", "add", VETH_A, "type", "veth", "peer", "name", VETH_B);
    ip("link", "set", VETH_A, "netns", NS_A);
    ip("link", "set", VETH_B, "netns", NS_B);
    ip("-n", NS_A, "addr", "add", `${ADDRESS_A}/24`, "dev", VETH_A);
    ip("-n", NS_B, "addr", "add", `${ADDRESS_B}/24`, "dev", VETH_B);
    for (const [ns, dev] of [
      [NS_A, VETH_A],
      [NS_B, VETH_B],
    ] as const) {
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "link", "set", dev, "up");
    }
    const peers = [newPeerSpec("alice", 12001, ADDRESS_A), newPeerSpec("bob", 12002, ADDRESS_B)];
    // Short timers, so that a 3 s cut makes frames give up (10 tries of at most 125 ms) and go offline.
    const config = { heartbeatMs: 200, offlineAfterMs: 1000, triesMax: 10, rtoMsMax: 100 };
    const spec = (self: number): PeerFixtureSpec => ({
      self,
      peers,
      dbPath: join(dir, `${peers[self]?.name}.db`),
      sendCount: 0,
      intervalMs: 10,
      config,
    });
    const [alice, bob] = [startPeer(spec(0), { netns: NS_A }), startPeer(spec(1), { netns: NS_B })];
    procs.push(alice, bob);
    await Promise.all([alice.ready, bob.ready]);
    const got = (p: PeerProcess, prefix: string) =>
      p.events.filter((e) => e.event === "message" && e.text?.startsWith(prefix)).map((e) => e.text);
    await eventually(() => alice.events.some((e) => e.event === "online"), 10_000, "alice to hear bob");
    alice.send("before-a");
    bob.send("before-b");
    await eventually(
      () => got(bob, "before").length === 1 && got(alice, "before").length === 1,
      10_000,
      "before",
    );

    ip("-n", NS_A, "link", "set", VETH_A, "down");
    const N = 10;
    for (let i = 0; i < N; i++) {
      alice.send(`cut-a${i}`);
      bob.send(`cut-b${i}`);
    }
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(got(bob, "cut"), [], "nothing crosses a cut link");
    assert.deepEqual(got(alice, "cut"), []);
    const gaveUp = alice.events.filter((e) => e.event === "failed").length;
    const wentOffline = alice.events.some((e) => e.event === "offline");
    t.diagnostic(`during the cut: alice gave up ${gaveUp} deliveries; saw bob offline: ${wentOffline}`);
    ip("-n", NS_A, "link", "set", VETH_A, "up");

    const expected = (p: string) => Array.from({ length: N }, (_, i) => `cut-${p}${i}`);
    await eventually(
      () => got(bob, "cut").length >= N && got(alice, "cut").length >= N,
      20_000,
      "delivery after the link is back",
    );
    await new Promise((r) => setTimeout(r, 500)); // any late copy would show up now
    // Exactly once. Order is reported, not asserted: a message given up while a later one was still in flight
    // may be re-sent after it (docs/PROTOCOL.md, offline delivery).
    const inOrder =
      got(bob, "cut").join() === expected("a").join() && got(alice, "cut").join() === expected("b").join();
    t.diagnostic(`after the cut: delivered in the order written: ${inOrder}`);
    assert.deepEqual(got(bob, "cut").sort(), expected("a").sort(), "bob got alice's messages once each");
    assert.deepEqual(got(alice, "cut").sort(), expected("b").sort(), "alice got bob's messages once each");
    assert.equal(await alice.finish(), 0);
    assert.equal(await bob.finish(), 0);
    for (const [name, other] of [
      ["alice", "bob"],
      ["bob", "alice"],
    ] as const) {
      const view = readDb(join(dir, `${name}.db`));
      for (const text of expected(other[0] as string))
        assert.equal(view.received.get(text), 1, `${name} stored ${text} once`);
      assert.ok(
        [...view.outgoing.values()].every((open) => open === 0),
        `${name}'s outbox is all acknowledged`,
      );
    }
  });
});
