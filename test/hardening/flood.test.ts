/**
 * Floods at 10× the honest rate against a node in its own process (so that its CPU time and memory are its own):
 * garbage and valid-looking forgeries (handshakes that cost a Diffie-Hellman to refuse, transport datagrams, old
 * clear-text packets) from unknown sources, from many spoofed sources, and from a known peer's address, with
 * replays of that peer's real sealed datagrams. Admission control (src/node/admission.ts) must bound what strangers
 * get past it, the session layer must refuse every forgery and replay with a reason, memory must stay capped, and
 * the honest peer's messages must all be delivered, once, throughout. Assertions are on counts and caps; CPU shares
 * are reported, not asserted.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Socket } from "node:dgram";
import { after, before, describe, it } from "node:test";
import { generateSecretKeys } from "../../src/crypto/keys.ts";
import type { MsgId } from "../../src/engine/types.ts";
import { dataSignedBytes, encodeData, encodeHello } from "../../src/engine/wire.ts";
import { DEFAULT_ADMISSION } from "../../src/node/admission.ts";
import { ChatNode } from "../../src/node/chat-node.ts";
import type { SessionRefusal } from "../../src/session/events.ts";
import { SessionPacketType } from "../../src/session/wire.ts";
import { createMemoryStore } from "../../src/storage/memory.ts";
import { signedAlone, unsignedProof } from "../helpers/batch.ts";
import { freePorts } from "../helpers/loopback-nodes.ts";
import { addressOf, closeSocket, udpSocket } from "./helpers/capture.ts";
import {
  forgedInitiation,
  forgedTransport,
  ownInitiation,
  SocketSession,
  staticPublicOf,
} from "./helpers/forge.ts";
import {
  contactOf,
  cryptoFor,
  newPeerSpec,
  type PeerSpec,
  secretsOf,
  sessionKeysFor,
} from "./helpers/spec.ts";
import { eventually, startTarget, sumValues, type Target, type TargetStats } from "./helpers/target.ts";

/** The honest peer sends one message every 10 ms: the normal rate is ~100 datagrams a second. */
const HONEST_EVERY_MS = 10;
const FLOOD_PER_SOURCE_PER_SEC = 1000; // 10× normal
const PHASE_MS = 2000;

let alice: PeerSpec;
let bob: PeerSpec;
let carol: PeerSpec;
let carolSocket: Socket;
let target: Target;
let aliceNode: ChatNode;
const sockets: Socket[] = [];
let honestSent = 0;

function honestDelivered(): number {
  return new Set(target.events.filter((e) => e.type === "message" && e.from === "alice").map((e) => e.text))
    .size;
}

function forgedData(claim: PeerSpec, valid = false): Uint8Array {
  const fields = {
    epoch: 1000,
    seq: valid ? 0 : Math.floor(Math.random() * 200),
    floor: 0,
    flags: 0,
    fragIndex: 0,
    fragCount: 1,
    msgId: randomBytes(16).toString("hex") as MsgId,
    payload: new TextEncoder().encode(`forged ${"x".repeat(Math.floor(Math.random() * 800))}`),
  };
  if (!valid) return encodeData(fields, unsignedProof(randomBytes(64)));
  const crypto = cryptoFor(claim, [claim, bob]);
  return encodeData(fields, signedAlone(crypto, dataSignedBytes(claim.id, fields)));
}

function forgedHello(): Uint8Array {
  return encodeHello({ epoch: 1000, floor: 0, timestamp: Date.now(), flags: 1, echo: 0 });
}

/** A forgery and the refusal the session layer owes it (undefined: garbage, refused for whatever it looks like). */
interface Forgery {
  bytes: Uint8Array;
  reason?: SessionRefusal;
}

/** A pool of forgeries made once: the attacker's CPU goes into sending, and each is refused as much as a new one. */
function pool(make: () => Forgery): () => Forgery {
  const items = Array.from({ length: 512 }, make);
  return () => items[Math.floor(Math.random() * items.length)] as Forgery;
}

/**
 * What an attacker without `claim`'s keys can send bob: handshakes claiming `claim`'s key (a Diffie-Hellman each
 * to refuse), real handshakes under keys bob never pinned, transport datagrams under sessions he does not have,
 * clear-text engine packets of the old protocol, and, with `garbage`, random bytes.
 */
function forgery(claim: PeerSpec, garbage: boolean): Forgery {
  const bobStatic = staticPublicOf(secretsOf(bob).x25519PrivateKey);
  const r = Math.random() * (garbage ? 1 : 0.8);
  if (r < 0.3)
    return {
      bytes: forgedInitiation(
        staticPublicOf(secretsOf(claim).x25519PrivateKey),
        generateSecretKeys().x25519PrivateKey,
        bobStatic,
      ),
      reason: "decrypt-failed",
    };
  if (r < 0.4)
    return { bytes: ownInitiation(generateSecretKeys().x25519PrivateKey, bobStatic), reason: "unknown-key" };
  if (r < 0.6)
    return {
      bytes: forgedTransport(
        randomBytes(4).readUInt32BE(0),
        Math.floor(Math.random() * 1000),
        40 + Math.floor(Math.random() * 800),
      ),
      reason: "unknown-index",
    };
  // Engine datagrams sent unsealed: their type byte (1 … 3) is one of protocol v2's session types.
  if (r < 0.7) return { bytes: forgedData(claim), reason: "protocol-v2" };
  if (r < 0.8) return { bytes: forgedHello(), reason: "protocol-v2" };
  return { bytes: randomBytes(Math.floor(Math.random() * 1200)) };
}

let strangerDatagram: () => Forgery = () => ({ bytes: new Uint8Array(0) });

/** The session layer's refusals, by reason and in all. */
const refusals = (s: TargetStats) => s.node.sessions.refused as Record<string, number>;

/** Sends `make()` from every socket at `perSecond`, for `ms`, while the honest peer keeps its normal rate. */
async function flood(from: Socket[], make: (s: Socket) => Uint8Array, perSecond: number, ms: number) {
  const started = Date.now();
  let sent = 0;
  let perSource = 0;
  let honest = 0;
  for (let elapsed = 0; elapsed < ms; elapsed = Date.now() - started) {
    // Catch up with both schedules, whatever the timers' drift: each rate is kept on average.
    for (; honest < Math.floor(elapsed / HONEST_EVERY_MS); honest++)
      aliceNode.broadcast(`honest-${honestSent++}`);
    const due = Math.floor((perSecond * elapsed) / 1000) - perSource;
    for (let i = 0; i < due; i++)
      for (const s of from) {
        s.send(make(s), bob.port, "127.0.0.1");
        sent++;
      }
    perSource += Math.max(0, due);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { sent, elapsedMs: Date.now() - started };
}

/** Runs `phase` with honest traffic going on; returns the target's stats before and after, and the CPU share. */
/**
 * Waits until the target has handled every stranger's datagram sent so far: its counters for untrusted sources stop
 * moving (the honest peers' traffic, from trusted addresses, goes on).
 */
async function untilQuiet(): Promise<void> {
  const total = (s: TargetStats) =>
    s.admission.admitted + s.admission.droppedSource + s.admission.droppedGlobal;
  let last = total(await target.stats());
  for (let polls = 0; polls < 100; polls++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = total(await target.stats());
    if (now === last) return;
    last = now;
  }
}

async function measured(phase: () => Promise<{ sent: number; elapsedMs: number }>) {
  const before = await target.stats();
  const honestBefore = honestDelivered();
  const honestStart = honestSent;
  const result = await phase();
  await eventually(() => honestDelivered() === honestSent, 15_000, "every honest message during the flood");
  const afterStats = await target.stats();
  const cpuMs = (afterStats.cpu.user + afterStats.cpu.system - before.cpu.user - before.cpu.system) / 1000;
  const wallMs = result.elapsedMs;
  const d = (pick: (s: TargetStats) => number) => pick(afterStats) - pick(before);
  const honestInPhase = honestDelivered() - honestBefore;
  const honestRate = ((honestSent - honestStart) * 1000) / wallMs;
  return {
    ...result,
    before,
    after: afterStats,
    cpuShare: cpuMs / wallMs,
    cpuMs,
    d,
    honestInPhase,
    honestRate,
  };
}

describe("floods at 10× the normal rate", { timeout: 90_000 }, () => {
  before(async () => {
    const ports = (await freePorts(2)) as [number, number];
    alice = newPeerSpec("alice", ports[0]);
    bob = newPeerSpec("bob", ports[1]);
    // Carol's port stays bound from here on: reserved and then bound seconds later (after 300 other sockets came and
    // went), it was once taken meanwhile (EADDRINUSE).
    carolSocket = await udpSocket();
    sockets.push(carolSocket);
    carol = newPeerSpec("carol", carolSocket.address().port);
    target = await startTarget({ self: 1, peers: [alice, bob, carol], config: { heartbeatMs: 1000 } });
    aliceNode = new ChatNode({
      self: contactOf(alice),
      contacts: [contactOf(alice), contactOf(bob)],
      crypto: cryptoFor(alice, [alice, bob]),
      sessionKeys: sessionKeysFor(alice, [alice, bob]),
      store: createMemoryStore(),
      ephemeral: true,
      closeGraceMs: 200,
    });
    await aliceNode.start();
    strangerDatagram = pool(() => forgery(alice, true));
  });

  after(async () => {
    await aliceNode?.close();
    for (const s of sockets) await closeSocket(s);
    if (target) {
      await Promise.race([target.close(), new Promise((r) => setTimeout(r, 3000))]);
      target.kill();
    }
  });

  it("unknown sources: rate-limited per source before decoding; honest messages all delivered", async (t) => {
    const strangers = await Promise.all([0, 1, 2, 3].map(() => udpSocket()));
    sockets.push(...strangers);
    const m = await measured(() =>
      flood(strangers, () => strangerDatagram().bytes, FLOOD_PER_SOURCE_PER_SEC, PHASE_MS),
    );
    const admitted = m.d((s) => s.admission.admitted);
    const dropped = m.d((s) => s.admission.droppedSource) + m.d((s) => s.admission.droppedGlobal);
    const fromStrangers = strangers
      .map((s) => m.after.arrivals[addressOf(s)] ?? 0)
      .reduce((a, b) => a + b, 0);
    t.diagnostic(
      `${strangers.length} sources sent ${m.sent} in ${m.elapsedMs} ms (${Math.round((m.sent * 1000) / m.elapsedMs / strangers.length)}/s each; ` +
        `honest ${Math.round(m.honestRate)} messages/s); ${fromStrangers} reached the socket, ${admitted} admitted, ${dropped} dropped; ` +
        `target CPU ${(m.cpuShare * 100).toFixed(1)}% of one core; honest ${honestSent} delivered`,
    );
    const seconds = (m.elapsedMs + 1000) / 1000; // generous: the target's clock may run a little longer
    const perSourceBound = DEFAULT_ADMISSION.sourceBurst + DEFAULT_ADMISSION.sourceRatePerSec * seconds;
    assert.ok(
      admitted <= strangers.length * perSourceBound,
      `${admitted} admitted > ${strangers.length} × ${perSourceBound}`,
    );
    assert.ok(
      dropped > 0 && dropped >= fromStrangers - strangers.length * perSourceBound,
      "the excess was dropped",
    );
    assert.equal(admitted + dropped, fromStrangers, "every stranger's datagram was admitted or dropped");
    // What got through was refused by the session layer, each with a reason; the engine saw none of it. A user
    // hears only of an old protocol ("peer speaks protocol v2") and of keys not pinned ("unknown-sender").
    const refused = m.d((s) => sumValues(refusals(s)));
    // At least every admitted one; the honest pair's own handshakes may add a refusal or two of their own (a
    // response to an initiation already superseded, say: unknown-index), never a stranger's datagram let through.
    assert.ok(
      refused >= admitted && refused - admitted <= 4,
      `every admitted datagram refused by the session layer: ${refused} refused, ${admitted} admitted`,
    );
    const reported = strangers.map((s) => m.after.rejected[addressOf(s)] ?? {});
    const told = (reason: string) => m.d((s) => refusals(s)[reason] ?? 0);
    assert.deepEqual(
      [...new Set(reported.flatMap((r) => Object.keys(r)))].sort(),
      [
        ...(told("protocol-v2") > 0 ? ["peer speaks protocol v2"] : []),
        ...(told("unknown-key") > 0 ? ["unknown-sender"] : []),
      ].sort(),
    );
    assert.equal(
      reported.reduce((a, r) => a + sumValues(r), 0),
      told("protocol-v2") + told("unknown-key"),
    );
    assert.equal(
      m.d((s) => s.node.messagesDelivered),
      m.honestInPhase,
      "only the honest messages were delivered",
    );
  });

  it("many spoofed sources: the source table stays capped and the global budget holds", async (t) => {
    const limits = { maxSources: 64, globalBurst: 1000, globalRatePerSec: 500 };
    await target.request("admission", { config: limits });
    const many = await Promise.all(Array.from({ length: 300 }, () => udpSocket()));
    sockets.push(...many);
    const m = await measured(() => flood(many, () => strangerDatagram().bytes, 100, 1500));
    const admitted = m.d((s) => s.admission.admitted);
    t.diagnostic(
      `${many.length} sources sent ${m.sent}: ${admitted} admitted, ${m.d((s) => s.admission.droppedGlobal)} dropped for the global budget, ` +
        `${m.d((s) => s.admission.evicted)} sources forgotten; table ${m.after.admission.sources}; CPU ${(m.cpuShare * 100).toFixed(1)}%`,
    );
    assert.ok(m.after.admission.sources <= limits.maxSources, "the table of sources is capped");
    assert.ok(m.d((s) => s.admission.evicted) > 0);
    assert.ok(m.d((s) => s.admission.droppedGlobal) > 0, "the global budget dropped datagrams");
    const seconds = (m.elapsedMs + 1000) / 1000;
    assert.ok(admitted <= limits.globalBurst + limits.globalRatePerSec * seconds, `${admitted} admitted`);
    await target.request("admission", { config: DEFAULT_ADMISSION });
  });

  it("a known peer's address flooding forgeries and replays: never rate-limited, all refused, honest traffic flows", async (t) => {
    // On a loaded machine the previous phase's datagrams may still sit in the socket buffer: let them drain first,
    // or their drops would be counted in this phase.
    await untilQuiet();
    // One real message from carol, sealed under a real session with bob (the test holds carol's keys); then the
    // session stops answering, and its sealed datagram is replayed from carol's address by one who has no keys.
    const carolSession = new SocketSession(carolSocket, secretsOf(carol).x25519PrivateKey, {
      id: bob.id,
      staticKey: staticPublicOf(secretsOf(bob).x25519PrivateKey),
      address: `127.0.0.1:${bob.port}`,
    });
    carolSession.send(bob.id, forgedData(carol, true));
    await eventually(
      () => target.events.some((e) => e.type === "message" && e.from === "carol"),
      5000,
      "carol's genuine message",
    );
    carolSession.detach();
    const valid = carolSession.sent.find(
      (b) => b[0] === SessionPacketType.Transport && b.length > 100,
    ) as Uint8Array;
    assert.ok(valid, "carol's sealed message");
    // Under a counter not seen yet and altered in its ciphertext, so that it names a session bob has and passes
    // the replay window: refused by the AEAD.
    const altered = () => {
      const b = Uint8Array.from(valid);
      const view = new DataView(b.buffer);
      view.setUint32(5, view.getUint32(5) + 1 + Math.floor(Math.random() * 1000));
      const at = 9 + Math.floor(Math.random() * (b.length - 9));
      b[at] = (b[at] as number) ^ (1 << Math.floor(Math.random() * 8));
      return { bytes: b, reason: "bad-aead" as const };
    };
    const forged = pool(() => (Math.random() < 0.3 ? altered() : forgery(carol, false)));
    const expected: Record<string, number> = {};
    const make = () => {
      const f: Forgery = Math.random() < 0.2 ? { bytes: valid, reason: "replayed" } : forged();
      const reason = f.reason as string;
      expected[reason] = (expected[reason] ?? 0) + 1;
      return f.bytes;
    };
    await untilQuiet();
    const m = await measured(() => flood([carolSocket], make, FLOOD_PER_SOURCE_PER_SEC, PHASE_MS));
    await eventually(
      async () => sumValues(refusals(await target.stats())) - sumValues(refusals(m.before)) >= m.sent,
      5000,
      "carol's datagrams to be processed",
    );
    const s = await target.stats();
    const grew = Object.fromEntries(
      Object.entries(refusals(s))
        .map(([reason, n]) => [reason, n - (refusals(m.before)[reason] ?? 0)] as const)
        .filter(([, n]) => n > 0),
    );
    t.diagnostic(
      `carol's address sent ${m.sent}: refused ${JSON.stringify(grew)}; CPU ${(m.cpuShare * 100).toFixed(1)}%`,
    );
    assert.equal(
      m.d((x) => x.admission.droppedSource + x.admission.droppedGlobal),
      0,
      "nothing dropped",
    );
    assert.deepEqual(grew, expected, "each forgery refused for what it is, each replay as replayed");
    assert.equal(
      sumValues(s.rejected[addressOf(carolSocket)]) - sumValues(m.before.rejected[addressOf(carolSocket)]),
      (expected["protocol-v2"] ?? 0) + (expected["unknown-key"] ?? 0),
      "the engine saw none of them (the user hears of the old protocol and of keys not pinned)",
    );
    const fromCarolShown = target.events.filter((e) => e.type === "message" && e.from === "carol");
    assert.equal(fromCarolShown.length, 1, "carol's one genuine message shown once, its replays never");
  });

  it("memory stays capped and nothing crashed", async (t) => {
    const s = await target.gcStats();
    t.diagnostic(
      `peak RSS ${(Math.max(s.peakRss, s.maxRssKb * 1024) / 1048576).toFixed(1)} MB, heap after GC ${(s.memory.heapUsed / 1048576).toFixed(1)} MB, ` +
        `admission table ${s.admission.sources} sources`,
    );
    assert.ok(s.memory.heapUsed < 64 * 1024 * 1024, "heap after GC under 64 MB");
    assert.ok(Math.max(s.peakRss, s.maxRssKb * 1024) < 400 * 1024 * 1024, "peak RSS under 400 MB");
    assert.ok(s.admission.sources <= DEFAULT_ADMISSION.maxSources);
    assert.equal(s.unhandled, 0);
    assert.equal(target.exitCode(), null, "still running");
    assert.equal(honestDelivered(), honestSent, "every honest message delivered");
    const shown = target.events.filter((e) => e.type === "message" && e.from === "alice").length;
    assert.equal(shown, honestSent, "each exactly once");
  });
});
