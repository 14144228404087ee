/**
 * The ceilings the node's figures are compared with, measured in the same run on the same machine:
 * Ed25519 sign and verify through src/crypto (libsodium, what the engine uses) and, for reference, through node:crypto
 * (OpenSSL, the named limit), raw node:dgram round trips on loopback
 * (one and 64 in flight), and udx-native reliable stream throughput for 200-byte messages.
 */
import { createPrivateKey, createPublicKey, sign as opensslSign, verify as opensslVerify } from "node:crypto";
import { createSocket } from "node:dgram";
import { ed25519Signer, ed25519Verifier } from "../src/crypto/ed25519.ts";
import { generateSecretKeys, publicKeysOf } from "../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../src/crypto/port.ts";
import type { BatchProof } from "../src/engine/ports.ts";
import { MAX_BATCH_LEAVES, type MsgId } from "../src/engine/types.ts";
import { dataSignedBytes } from "../src/engine/wire.ts";
import { type Summary, summarize } from "./stats.ts";
import { dataDatagramBytes } from "./two-nodes.ts";

export interface Limits {
  /** Ed25519 through src/crypto/ed25519.ts (libsodium): the verifier ChatNode uses, so the targets' limit. */
  signPerSec: number;
  verifyPerSec: number;
  /** The same over node:crypto (OpenSSL), for reference: the slower of the two here. */
  opensslSignPerSec: number;
  opensslVerifyPerSec: number;
  /** Verifying a datagram already verified (a retransmitted copy): a SHA-256 and a lookup. */
  verifyRepeatPerSec: number;
  /** HPKE seal and open of a 200-byte private message (what a private message adds to a signed one). */
  sealPerSec: number;
  openPerSec: number;
  dgram: { window1: DgramResult; window64: DgramResult };
  udx: { msgsPerSec: number; messageBytes: number } | { error: string };
}

export interface DgramResult {
  roundTripsPerSec: number;
  rtt: Summary;
}

/** Calls `f` in a loop for about `ms` and returns calls per second (best of `rounds`, to shed scheduler noise). */
function rate(ms: number, rounds: number, f: () => void): number {
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const start = performance.now();
    let now = start;
    while (now - start < ms) {
      for (let i = 0; i < 16; i++) f();
      n += 16;
      now = performance.now();
    }
    best = Math.max(best, (n * 1000) / (now - start));
  }
  return best;
}

export function cryptoLimits(ms: number, textBytes: number) {
  const a = generateSecretKeys();
  const b = generateSecretKeys();
  const directory = staticKeyDirectory([publicKeysOf(a), publicKeysOf(b)]);
  const alice = createCryptoPort({ identity: a, directory });
  const bob = createCryptoPort({ identity: b, directory });
  const signer = ed25519Signer(a.ed25519Seed);
  const verifier = ed25519Verifier(signer.publicKey);
  if (!verifier) throw new Error("no verifier");
  // The limits are the bare primitive (src/crypto/ed25519.ts over libsodium), one signature per message, over
  // exactly what a 200-byte broadcast's DATA has its author sign (its message part, docs/PROTOCOL.md §6.1), with
  // distinct msgIds: what signing every message alone would cost, whatever ChatNode's batches save.
  const distinct = 4096;
  const signed = Array.from({ length: distinct }, (_, i) =>
    dataSignedBytes(alice.selfId, {
      flags: 0,
      fragIndex: 0,
      fragCount: 1,
      msgId: i.toString(16).padStart(32, "0") as MsgId,
      payload: new Uint8Array(textBytes).fill(7),
    }),
  );
  const signatures = signed.map((m) => signer.sign(m));
  if (!verifier.verify(signed[0] as Uint8Array, signatures[0] as Uint8Array))
    throw new Error("verify failed");
  let next = 0;
  const verifyNext = () => {
    const i = next++ % distinct;
    verifier.verify(signed[i] as Uint8Array, signatures[i] as Uint8Array);
  };
  // A message whose batch signature the port already checked (another message of its batch, or a retransmit):
  // the audit path's hashes and a lookup.
  const batch = signed.slice(0, MAX_BATCH_LEAVES);
  const proofs = alice.signBatch(batch);
  if (!bob.verify(alice.selfId, batch[0] as Uint8Array, proofs[0] as BatchProof))
    throw new Error("verify failed");
  let member = 0;
  const verifyMember = () => {
    const i = member++ % MAX_BATCH_LEAVES;
    bob.verify(alice.selfId, batch[i] as Uint8Array, proofs[i] as BatchProof);
  };
  const openssl = opensslKeys(a.ed25519Seed);
  const opensslVerifyNext = () => {
    const i = next++ % distinct;
    opensslVerify(null, signed[i] as Uint8Array, openssl.publicKey, signatures[i] as Uint8Array);
  };
  const text = new Uint8Array(textBytes).fill(65);
  const aad = new Uint8Array(40);
  const sealed = bob.seal(alice.selfId, text, aad);
  const one = signed[0] as Uint8Array;
  rate(100, 1, () => signer.sign(one)); // warm up
  return {
    signPerSec: rate(ms, 3, () => signer.sign(one)),
    verifyPerSec: rate(ms, 3, verifyNext),
    opensslSignPerSec: rate(ms / 2, 2, () => opensslSign(null, one, openssl.privateKey)),
    opensslVerifyPerSec: rate(ms / 2, 2, opensslVerifyNext),
    verifyRepeatPerSec: rate(ms / 2, 2, verifyMember),
    sealPerSec: rate(ms / 2, 2, () => bob.seal(alice.selfId, text, aad)),
    openPerSec: rate(ms / 2, 2, () => alice.open(sealed, aad)),
  };
}

/** The same Ed25519 key as node:crypto KeyObjects (PKCS#8 and SPKI around the raw 32 bytes, OID 1.3.101.112). */
function opensslKeys(seed: Uint8Array) {
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** Ping-pong of `bytes`-byte datagrams between two sockets in this process, `window` in flight. */
export async function dgramRoundTrips(ms: number, window: number, bytes: number): Promise<DgramResult> {
  const a = createSocket("udp4");
  const b = createSocket("udp4");
  await Promise.all([a, b].map((s) => new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()))));
  const bPort = b.address().port;
  b.on("message", (msg, rinfo) => b.send(msg, rinfo.port, rinfo.address));
  const payload = Buffer.alloc(bytes, 1);
  const rtts: number[] = [];
  let count = 0;
  const sentAt = new Float64Array(window);
  const done = new Promise<number>((resolve) => {
    let start = 0;
    let stopped = false;
    a.on("message", (msg) => {
      if (stopped) return;
      const slot = msg.readUInt32BE(0);
      const now = performance.now();
      rtts.push(now - (sentAt[slot] as number));
      count++;
      if (now - start >= ms) {
        stopped = true;
        resolve((count * 1000) / (now - start));
        return;
      }
      sentAt[slot] = now;
      a.send(msg, bPort, "127.0.0.1");
    });
    start = performance.now();
    for (let slot = 0; slot < window; slot++) {
      const m = Buffer.from(payload);
      m.writeUInt32BE(slot, 0);
      sentAt[slot] = performance.now();
      a.send(m, bPort, "127.0.0.1");
    }
  });
  // A lost datagram on loopback would stall window 1: bound the wait.
  const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(Number.NaN), ms + 5000).unref());
  const roundTripsPerSec = await Promise.race([done, timeout]);
  await Promise.all([a, b].map((s) => new Promise<void>((r) => s.close(() => r()))));
  return { roundTripsPerSec, rtt: summarize(rtts) };
}

/** A udx-native stream pair over loopback in this process: 200-byte writes, counted at the reader. */
export async function udxThroughput(ms: number, bytes: number): Promise<Limits["udx"]> {
  let UDX: new () => UdxInstance;
  try {
    // No type declarations ship with udx-native: a non-literal specifier keeps tsc from looking for them.
    const specifier: string = "udx-native";
    UDX = (await import(specifier)).default as new () => UdxInstance;
  } catch (e) {
    return { error: `udx-native not available: ${e instanceof Error ? e.message : String(e)}` };
  }
  const u = new UDX();
  const a = u.createSocket();
  const b = u.createSocket();
  a.bind(0, "127.0.0.1");
  b.bind(0, "127.0.0.1");
  const s1 = u.createStream(1);
  const s2 = u.createStream(2);
  s1.connect(a, 2, b.address().port, "127.0.0.1");
  s2.connect(b, 1, a.address().port, "127.0.0.1");
  const msg = Buffer.alloc(bytes, 7);
  let received = 0;
  let start = 0;
  let result = Number.NaN;
  let writing = true;
  const finished = new Promise<void>((resolve) => {
    s2.on("data", (d: Buffer) => {
      if (!writing) return;
      received += d.length;
      const now = performance.now();
      if (now - start >= ms) {
        writing = false;
        result = (received / bytes) * (1000 / (now - start));
        resolve();
      }
    });
  });
  const pump = () => {
    while (writing) if (!s1.write(msg)) return void s1.once("drain", pump);
  };
  start = performance.now();
  pump();
  await Promise.race([finished, new Promise((r) => setTimeout(r, ms + 5000).unref())]);
  writing = false;
  s1.destroy();
  s2.destroy();
  await Promise.allSettled([a.close(), b.close()]);
  return { msgsPerSec: result, messageBytes: bytes };
}

interface UdxSocket {
  bind(port: number, host: string): void;
  address(): { port: number };
  close(): Promise<void>;
}
interface UdxStream {
  connect(socket: UdxSocket, remoteId: number, port: number, host: string): void;
  write(b: Buffer): boolean;
  once(event: "drain", f: () => void): void;
  on(event: "data", f: (d: Buffer) => void): void;
  destroy(): void;
}
interface UdxInstance {
  createSocket(): UdxSocket;
  createStream(id: number): UdxStream;
}

export async function measureLimits(
  ms: number,
  textBytes: number,
  log: (s: string) => void,
): Promise<Limits> {
  const c = cryptoLimits(ms, textBytes);
  log(
    `  Ed25519 sign ${c.signPerSec.toFixed(0)}/s, verify ${c.verifyPerSec.toFixed(0)}/s (libsodium; node:crypto sign ${c.opensslSignPerSec.toFixed(0)}/s, verify ${c.opensslVerifyPerSec.toFixed(0)}/s; a message of a batch already checked ${c.verifyRepeatPerSec.toFixed(0)}/s); HPKE seal ${c.sealPerSec.toFixed(0)}/s, open ${c.openPerSec.toFixed(0)}/s`,
  );
  const window1 = await dgramRoundTrips(ms, 1, dataDatagramBytes(textBytes));
  const window64 = await dgramRoundTrips(ms, 64, dataDatagramBytes(textBytes));
  log(
    `  dgram round trips: window 1 ${window1.roundTripsPerSec.toFixed(0)}/s (rtt p50 ${window1.rtt.p50.toFixed(3)} ms), window 64 ${window64.roundTripsPerSec.toFixed(0)}/s`,
  );
  const udx = await udxThroughput(ms, textBytes);
  log(
    "msgsPerSec" in udx
      ? `  udx stream: ${udx.msgsPerSec.toFixed(0)} msgs/s of ${textBytes} bytes`
      : `  udx: ${udx.error}`,
  );
  return { ...c, dgram: { window1, window64 }, udx };
}
