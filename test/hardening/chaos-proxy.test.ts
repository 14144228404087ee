/**
 * The chaos proxy (src/chaos): its decisions replay from a seed, and two real nodes talking through it at 30% loss
 * each way, with duplication, bit flips, truncation, reordering and blackhole windows, deliver every message
 * exactly once, in order, while every kind of fault is observed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  type ChaosConfig,
  decide,
  inBlackhole,
  NO_CHAOS,
  parseDurationMs,
} from "../../src/chaos/decisions.ts";
import { ChaosProxy } from "../../src/chaos/proxy.ts";
import { planChaos } from "../../src/cli/chaos-command.ts";
import { parseRatePpm } from "../../src/faults/ppm.ts";
import { SeededRng } from "../../src/faults/seeded-rng.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import type { SessionRefusal } from "../../src/session/events.ts";
import { freePorts, makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";
import { childEnv } from "./helpers/spec.ts";

describe("chaos decisions", () => {
  it("replay exactly from a seed, and follow the configured rates", () => {
    const config: ChaosConfig = {
      ...NO_CHAOS,
      lossPpm: 300_000,
      duplicatePpm: 100_000,
      corruptPpm: 50_000,
      truncatePpm: 20_000,
      jitterMs: 30,
    };
    const run = (seed: number) => {
      const rng = new SeededRng(seed);
      return Array.from({ length: 20_000 }, (_, i) =>
        decide(rng, config, Uint8Array.of(1, 2, 3, i & 0xff), i),
      );
    };
    const a = run(42);
    assert.deepEqual(a, run(42), "same seed, same fates");
    assert.notDeepEqual(a.slice(0, 50), run(43).slice(0, 50), "another seed, other fates");
    const share = (f: (x: (typeof a)[0]) => boolean) => a.filter(f).length / a.length;
    const near = (x: number, want: number) => Math.abs(x - want) < 0.02;
    assert.ok(
      near(
        share((f) => f.action === "drop"),
        0.3,
      ),
    );
    const sent = a.filter((f) => f.action === "send");
    const shareSent = (f: (x: (typeof sent)[0]) => boolean) => sent.filter(f).length / sent.length;
    assert.ok(
      near(
        shareSent((f) => f.duplicated),
        0.1,
      ),
    );
    assert.ok(
      near(
        shareSent((f) => f.corrupted),
        0.05,
      ),
    );
    assert.ok(
      near(
        shareSent((f) => f.truncated),
        0.02,
      ),
    );
    for (const f of sent) for (const c of f.copies) assert.ok(c.delayMs >= 0 && c.delayMs < 30);
  });

  it("blackhole windows: never in the first period, then for exactly `for` ms of every period", () => {
    const c = { ...NO_CHAOS, blackholeEveryMs: 1000, blackholeForMs: 200 };
    assert.equal(inBlackhole(c, 0), false);
    assert.equal(inBlackhole(c, 999), false);
    assert.equal(inBlackhole(c, 1000), true);
    assert.equal(inBlackhole(c, 1199), true);
    assert.equal(inBlackhole(c, 1200), false);
    assert.equal(inBlackhole(c, 5100), true);
    assert.equal(decide(new SeededRng(1), c, Uint8Array.of(1), 1100).action, "drop");
  });

  it("a corrupted datagram differs from the original; a truncated one is a strict prefix", () => {
    fc.assert(
      fc.property(fc.integer(), fc.uint8Array({ minLength: 1, maxLength: 200 }), (seed, bytes) => {
        const rng = new SeededRng(seed);
        const flipped = decide(rng, { ...NO_CHAOS, corruptPpm: 1_000_000, corruptBitsMax: 1 }, bytes, 0);
        assert.ok(flipped.action === "send");
        assert.notDeepEqual(flipped.copies[0]?.bytes, bytes);
        const cut = decide(rng, { ...NO_CHAOS, truncatePpm: 1_000_000 }, bytes, 0);
        assert.ok(cut.action === "send");
        const out = cut.copies[0]?.bytes as Uint8Array;
        assert.ok(out.length < bytes.length);
        assert.deepEqual(out, bytes.slice(0, out.length));
      }),
    );
  });

  it("parses rates, durations and the command line, refusing nonsense with a reason", () => {
    assert.equal(parseRatePpm("30%"), 300_000);
    assert.equal(parseRatePpm("0.3"), 300_000);
    assert.equal(parseRatePpm("1500ppm"), 1500);
    assert.throws(() => parseRatePpm("130%"), /rate from 0 to 1/);
    assert.throws(() => parseRatePpm("lots"), RangeError);
    assert.equal(parseDurationMs("10s"), 10_000);
    assert.equal(parseDurationMs("250"), 250);
    assert.equal(parseDurationMs("1.5s"), 1500);
    assert.equal(parseDurationMs("2m"), 120_000);
    assert.throws(() => parseDurationMs("soon"), /duration/);
    const base = { map: [], host: "127.0.0.1", statsEvery: "5s" };
    const plan = planChaos({
      ...base,
      listen: "13002",
      to: "127.0.0.1:12002",
      loss: "30%",
      blackholeEvery: "10s",
      blackholeFor: "2s",
      seed: "7",
    });
    assert.deepEqual(plan.routes, [
      { listenHost: "127.0.0.1", listenPort: 13002, targetHost: "127.0.0.1", targetPort: 12002 },
    ]);
    assert.equal(plan.config.lossPpm, 300_000);
    assert.equal(plan.seed, 7);
    const multi = planChaos({ ...base, map: ["13001=127.0.0.1:12001", "[::1]:13002=[::1]:12002"] });
    assert.equal(multi.routes.length, 2);
    assert.equal(multi.routes[1]?.listenHost, "::1");
    assert.throws(() => planChaos({ ...base, listen: "13002" }), /go together/);
    assert.throws(() => planChaos({ ...base, map: ["13001"] }), /LISTEN=HOST:PORT/);
    assert.throws(() => planChaos({ ...base, map: ["13001=localhost:1"] }), /not an IP address/);
    assert.throws(() => planChaos({ ...base, map: ["1=127.0.0.1:2", "1=127.0.0.1:3"] }), /twice/);
    assert.throws(
      () => planChaos({ ...base, listen: "1", to: "127.0.0.1:2", blackholeEvery: "1s", blackholeFor: "2s" }),
      /shorter/,
    );
    assert.throws(() => planChaos(base), /nothing to proxy/);
  });
});

describe("two nodes through the chaos proxy", { timeout: 60_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("deliver everything exactly once, in order, through 30% loss, duplicates, corruption, truncation, reordering and blackholes", async (t) => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const proxy = await ChaosProxy.start({
      routes: [alice, bob].map((u) => ({
        listenHost: "127.0.0.1",
        listenPort: 0,
        targetHost: "127.0.0.1",
        targetPort: u.contact.port,
      })),
      seed: 1234,
      config: {
        lossPpm: 300_000,
        duplicatePpm: 150_000,
        corruptPpm: 50_000,
        truncatePpm: 20_000,
        delayMs: 2,
        jitterMs: 25,
        blackholeEveryMs: 700,
        blackholeForMs: 150,
      },
    });
    cleanups.push(() => proxy.close());
    const [viaAlice, viaBob] = proxy.ports() as [number, number];
    // Each node knows the other only by its proxy port: every datagram crosses the proxy.
    const seenVia = (u: TestUser, port: number): TestUser => ({ ...u, contact: { ...u.contact, port } });
    const config = { heartbeatMs: 300 };
    const aliceNode = nodeFor(alice, [alice, seenVia(bob, viaBob)], { config });
    const bobNode = nodeFor(bob, [seenVia(alice, viaAlice), bob], { config });
    const got = new Map<ChatNode, string[]>([
      [aliceNode, []],
      [bobNode, []],
    ]);
    const rejected = new Map<string, number>();
    let delivered = 0;
    for (const n of [aliceNode, bobNode]) {
      n.on("message", (m) => got.get(n)?.push(`${m.kind}:${m.text}`));
      n.on("delivered", () => delivered++);
      n.on("rejected", (r) => rejected.set(r.reason, (rejected.get(r.reason) ?? 0) + 1));
      await n.start();
      cleanups.push(() => n.close());
    }
    // At least 40 each, spread over ~1.6 s (two blackhole windows), and on until a blackhole has cut traffic both
    // ways: messages that wait for the first handshake may leave in bursts that miss the windows.
    const c = proxy.counters;
    let N = 0;
    for (; N < 40 || ((c.forward.blackholed === 0 || c.reverse.blackholed === 0) && N < 400); N++) {
      aliceNode.broadcast(`a${N}`);
      bobNode.broadcast(`b${N}`);
      if (N % 4 === 0) {
        aliceNode.sendPrivate("bob", `pa${N}`);
        bobNode.sendPrivate("alice", `pb${N}`);
      }
      await new Promise((r) => setTimeout(r, 40));
    }
    const privates = Math.ceil(N / 4);
    await until(() => delivered === 2 * (N + privates), 45_000, "every message acknowledged");
    const expected = (p: string) => {
      const out: string[] = [];
      for (let i = 0; i < N; i++) {
        out.push(`broadcast:${p}${i}`);
        if (i % 4 === 0) out.push(`private:p${p}${i}`);
      }
      return out;
    };
    assert.deepEqual(got.get(bobNode), expected("a"), "bob got alice's messages once each, in her order");
    assert.deepEqual(got.get(aliceNode), expected("b"), "alice got bob's messages once each, in his order");
    const sessions = [aliceNode, bobNode].map((n) => n.stats().sessions.refused);
    const refused: Partial<Record<SessionRefusal, number>> = {};
    for (const r of sessions)
      for (const [k, v] of Object.entries(r))
        refused[k as SessionRefusal] = (refused[k as SessionRefusal] ?? 0) + v;
    t.diagnostic(`${N} rounds; proxy: ${JSON.stringify(c)}`);
    t.diagnostic(`refused by the session layer: ${JSON.stringify(refused)}`);
    t.diagnostic(`rejected by the engines: ${JSON.stringify(Object.fromEntries(rejected))}`);
    for (const d of [c.forward, c.reverse]) {
      for (const key of ["dropped", "duplicated", "corrupted", "delayed", "reordered", "blackholed"] as const)
        assert.ok(d[key] > 0, `${key} observed`);
    }
    assert.ok(c.forward.truncated + c.reverse.truncated > 0, "truncation observed");
    const damaged = c.forward.corrupted + c.forward.truncated + c.reverse.corrupted + c.reverse.truncated;
    const duplicated = c.forward.duplicated + c.reverse.duplicated;
    const reordered = c.forward.reordered + c.reverse.reordered;
    const total = (r: Partial<Record<string, number>>) =>
      Object.values(r).reduce((a: number, b) => a + (b ?? 0), 0);
    // Damage is the session layer's to refuse (the AEAD tag, lengths, types): a damaged datagram may also have been
    // duplicated, so at most two refusals each. A copy of a datagram already opened (duplication), an initiation
    // overtaken by a newer one or a response to an attempt already finished (reordering) is refused as a replay:
    // that is the replay check working; damage to a header can also land there.
    const {
      replayed = 0,
      "replayed-initiation": staleInitiations = 0,
      "unknown-index": unknownIndex = 0,
      ...damage
    } = refused;
    const damageRefusals = total(damage);
    assert.ok(
      damageRefusals > 0 && damageRefusals <= 2 * damaged,
      "damaged datagrams were refused by the session layer, and only those",
    );
    assert.ok(replayed + staleInitiations + unknownIndex <= duplicated + reordered + 2 * damaged);
    assert.ok(
      (refused.replayed ?? 0) > 0,
      "duplicated datagrams were refused as replays by the session layer",
    );
    // Nothing damaged got through to the engine: it refused none as malformed, forged or misaddressed. A HELLO
    // overtaken by a newer one (reordering, an engine retransmission) is refused as a replay.
    const { "replayed-hello": staleHellos = 0, ...others } = Object.fromEntries(rejected);
    assert.deepEqual(others, {}, "the engines saw nothing damaged");
    assert.ok(staleHellos <= duplicated + reordered);
    const dupes = aliceNode.stats().duplicates + bobNode.stats().duplicates;
    assert.ok(dupes > 0, "frames retransmitted after a lost ACK were dropped as duplicates by the engines");
  });

  it("the chaos command relays both ways, learns the client, and prints its counters at SIGINT", async () => {
    const [listen] = await freePorts(1);
    const echo = createSocket("udp4");
    await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
    echo.on("message", (m, rinfo) => echo.send(m, rinfo.port, rinfo.address));
    cleanups.push(() => new Promise((r) => echo.close(() => r(undefined))));
    const fixture = fileURLToPath(new URL("./fixtures/chaos-cli.ts", import.meta.url));
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        fixture,
        "chaos",
        "--listen",
        String(listen),
        "--to",
        `127.0.0.1:${echo.address().port}`,
        "--duplicate",
        "100%",
        "--seed",
        "5",
        "--stats-every",
        "0",
      ],
      { env: childEnv({}), stdio: ["ignore", "pipe", "inherit"] },
    );
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      out += d;
    });
    await until(() => out.includes("faults"), 10_000, "the proxy to start");
    assert.match(out, /duplicate 100%/);
    assert.match(out, /seed 5/);
    const client = createSocket("udp4");
    await new Promise<void>((r) => client.bind(0, "127.0.0.1", () => r()));
    let echoed = 0;
    client.on("message", () => echoed++);
    for (let i = 0; i < 5; i++) client.send(Uint8Array.of(i), listen as number, "127.0.0.1");
    // 5 datagrams, each duplicated on the way there and both copies' echoes duplicated on the way back.
    await until(() => echoed === 20, 5000, "the echoes");
    client.close();
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGINT");
    assert.equal(await exited, 0);
    assert.match(out, /stopped \(SIGINT\); final counters/);
    assert.match(out, /client→target: received 5, forwarded 10,.* duplicated 5/);
    assert.match(out, /target→client: received 10, forwarded 20,/);
    assert.match(out, /clients 1,/);
  });
});
