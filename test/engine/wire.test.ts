import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { signBatch } from "../../src/crypto/batch-signature.ts";
import { ed25519Signer, keyId } from "../../src/crypto/ed25519.ts";
import { deriveMacKeys, macTag } from "../../src/crypto/mac.ts";
import { X25519PrivateKey, X25519PublicKey } from "../../src/crypto/x25519.ts";
import type { BatchProof } from "../../src/engine/ports.ts";
import {
  MAC_BYTES,
  MAX_BATCH_LEAVES,
  MAX_DATAGRAM_BYTES,
  type MsgId,
  type PeerId,
  SIGNATURE_BYTES,
  toHex,
} from "../../src/engine/types.ts";
import {
  type AckFields,
  type AckPacket,
  auditPathLength,
  DATA_FIXED_BYTES,
  type DataFields,
  type DataPacket,
  type DecodeError,
  dataSignedBytes,
  decode,
  encodeAck,
  encodeData as encodeDataWith,
  encodeHello,
  HEADER_BYTES,
  type HelloFields,
  type HelloPacket,
  MAX_ACK_RANGES,
  MAX_ACK_REJECTS,
  MAX_FRAGMENT_PAYLOAD,
  PATH_HASH_BYTES,
  PacketType,
} from "../../src/engine/wire.ts";
import { RFC7748_DH, RFC8032_ED25519 } from "../crypto/vectors.ts";

const DECODE_ERRORS: readonly DecodeError[] = [
  "too-short",
  "too-long",
  "bad-magic",
  "unknown-version",
  "unknown-type",
  "bad-length",
  "bad-fragment",
  "too-many-ranges",
];

const A = "0123456789abcdef" as PeerId;
const B = "fedcba9876543210" as PeerId;
const M = "00112233445566778899aabbccddeeff" as MsgId;

/**
 * A deterministic stand-in for the batch signature and the MAC: the codec only places them. The batch's shape
 * follows the message's length, so the property runs cover every size from 1 to 16 and every position.
 */
function fakeProof(signed: Uint8Array): BatchProof {
  const size = (signed.length % MAX_BATCH_LEAVES) + 1;
  const index = (signed.length * 7) % size;
  const hashes = auditPathLength(index, size) ?? 0;
  const path = Array.from({ length: hashes }, (_, i) => new Uint8Array(PATH_HASH_BYTES).fill(i + 1));
  return { index, size, path, signature: new Uint8Array(SIGNATURE_BYTES).fill(signed.length & 0xff) };
}
const proofBytes = (proof: BatchProof) => 2 + proof.path.length * PATH_HASH_BYTES + SIGNATURE_BYTES;
const fakeMac = (bytes: Uint8Array) => new Uint8Array(MAC_BYTES).fill((bytes.length * 7) & 0xff);

/** Plain objects (fast-check's default null prototype would fail deepStrictEqual against decoded packets). */
const plain = { noNullPrototype: true } as const;
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map(toHex);
const peerId = hex(8).map((h) => h as PeerId);
const msgId = hex(16).map((h) => h as MsgId);
const millis = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

const dataFields: fc.Arbitrary<DataFields> = fc
  .record(
    {
      sender: peerId,
      recipient: peerId,
      epoch: u32,
      seq: u32,
      floor: u32,
      flags: fc.constantFrom(0, 1),
      fragCount: fc.integer({ min: 1, max: 255 }),
      fragIndexSeed: fc.nat(),
      msgId,
      sentAt: millis,
      payload: fc.uint8Array({ maxLength: MAX_FRAGMENT_PAYLOAD }),
    },
    plain,
  )
  .map(({ fragIndexSeed, ...f }) => ({ ...f, fragIndex: fragIndexSeed % f.fragCount }));

const ackFields: fc.Arbitrary<AckFields> = fc.record(
  {
    sender: peerId,
    recipient: peerId,
    epoch: u32,
    next: u32,
    ranges: fc.array(fc.record({ start: u32, length: fc.integer({ min: 1, max: 0xffff }) }, plain), {
      maxLength: MAX_ACK_RANGES,
    }),
    rejects: fc.array(fc.record({ seq: u32, code: fc.constantFrom(1 as const, 2 as const) }, plain), {
      maxLength: MAX_ACK_REJECTS,
    }),
  },
  plain,
);

const helloFields: fc.Arbitrary<HelloFields> = fc.record(
  {
    sender: peerId,
    recipient: peerId,
    epoch: u32,
    floor: u32,
    timestamp: millis,
    flags: fc.constantFrom(0, 1),
    echo: millis,
  },
  plain,
);

function encodeData(f: DataFields): Uint8Array {
  return encodeDataWith(f, fakeProof(dataSignedBytes(f)), fakeMac);
}

function sampleData(payload = new Uint8Array([104, 105])): Uint8Array {
  return encodeData({
    sender: A,
    recipient: B,
    epoch: 1,
    seq: 7,
    floor: 5,
    flags: 0,
    fragIndex: 0,
    fragCount: 1,
    msgId: M,
    sentAt: 1_700_000_000_000,
    payload,
  });
}

function sampleAck(ranges = 2, rejects = 1): Uint8Array {
  return encodeAck(
    {
      sender: B,
      recipient: A,
      epoch: 1,
      next: 10,
      ranges: Array.from({ length: ranges }, (_, i) => ({ start: 12 + 3 * i, length: 1 })),
      rejects: Array.from({ length: rejects }, (_, i) => ({ seq: 3 + i, code: 1 as const })),
    },
    fakeMac,
  );
}

function sampleHello(): Uint8Array {
  return encodeHello(
    { sender: A, recipient: B, epoch: 1, floor: 9, timestamp: 1234, flags: 1, echo: 99 },
    fakeMac,
  );
}

function reasonOf(bytes: Uint8Array): DecodeError | "ok" {
  const r = decode(bytes);
  return r.ok ? "ok" : r.reason;
}

function patched(bytes: Uint8Array, offset: number, ...values: number[]): Uint8Array {
  const out = new Uint8Array(bytes);
  values.forEach((v, i) => {
    out[offset + i] = v;
  });
  return out;
}

function u32At(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(offset);
}

describe("wire: round trips", () => {
  it("DATA decodes to its fields; authed = every byte before the MAC, signed = the header without the recipient and flags … payload (property)", () => {
    fc.assert(
      fc.property(dataFields, (f) => {
        const bytes = encodeData(f);
        const expected = fakeProof(dataSignedBytes(f));
        assert.equal(bytes.length, DATA_FIXED_BYTES + f.payload.length + MAC_BYTES + proofBytes(expected));
        assert.ok(bytes.length <= MAX_DATAGRAM_BYTES);
        const r = decode(bytes);
        assert.ok(r.ok);
        const p = r.packet as DataPacket;
        assert.equal(p.type, PacketType.Data);
        const { authed, mac, signed, proof, type: _t, ...fields } = p;
        assert.deepEqual({ ...fields, payload: new Uint8Array(fields.payload) }, f);
        const macAt = bytes.length - proofBytes(expected) - MAC_BYTES;
        assert.deepEqual(authed, bytes.subarray(0, macAt));
        assert.deepEqual(mac, fakeMac(authed));
        assert.deepEqual(signed, new Uint8Array([...bytes.subarray(0, 12), ...bytes.subarray(32, macAt)]));
        assert.deepEqual(signed, dataSignedBytes(f));
        assert.deepEqual(proof, expected);
      }),
      { numRuns: 300 },
    );
  });

  it("ACK decodes to the fields it was encoded from; authed = every byte before the MAC (property)", () => {
    fc.assert(
      fc.property(ackFields, (f) => {
        const bytes = encodeAck(f, fakeMac);
        assert.equal(
          bytes.length,
          HEADER_BYTES + 4 + 4 + 1 + 6 * f.ranges.length + 1 + 5 * f.rejects.length + 16,
        );
        const r = decode(bytes);
        assert.ok(r.ok);
        const { authed, mac, type, ...fields } = r.packet as AckPacket;
        assert.equal(type, PacketType.Ack);
        assert.deepEqual(fields, f);
        assert.deepEqual(authed, bytes.subarray(0, bytes.length - MAC_BYTES));
        assert.deepEqual(mac, fakeMac(authed));
      }),
      { numRuns: 300 },
    );
  });

  it("HELLO decodes to the fields it was encoded from, always 61 bytes (property)", () => {
    fc.assert(
      fc.property(helloFields, (f) => {
        const bytes = encodeHello(f, fakeMac);
        assert.equal(bytes.length, 61);
        const r = decode(bytes);
        assert.ok(r.ok);
        const { authed, mac, type, ...fields } = r.packet as HelloPacket;
        assert.equal(type, PacketType.Hello);
        assert.deepEqual(fields, f);
        assert.deepEqual(authed, bytes.subarray(0, 45));
        assert.deepEqual(mac, fakeMac(authed));
      }),
      { numRuns: 300 },
    );
  });

  it("decodes a datagram that is a view into a larger buffer (as a socket hands it over)", () => {
    const bytes = sampleData();
    const big = new Uint8Array(bytes.length + 13);
    big.set(bytes, 7);
    const r = decode(big.subarray(7, 7 + bytes.length));
    assert.ok(r.ok);
    assert.equal((r.packet as DataPacket).seq, 7);
  });

  it("encodeAck keeps only the first 32 ranges and 16 rejects", () => {
    const bytes = encodeAck(
      {
        sender: B,
        recipient: A,
        epoch: 1,
        next: 0,
        ranges: Array.from({ length: 40 }, (_, i) => ({ start: 2 * i + 1, length: 1 })),
        rejects: Array.from({ length: 20 }, (_, i) => ({ seq: i, code: 2 as const })),
      },
      fakeMac,
    );
    const r = decode(bytes);
    assert.ok(r.ok);
    const p = r.packet as AckPacket;
    assert.equal(p.ranges.length, MAX_ACK_RANGES);
    assert.equal(p.ranges[31]?.start, 63);
    assert.equal(p.rejects.length, MAX_ACK_REJECTS);
    assert.equal(p.rejects[15]?.seq, 15);
  });
});

describe("wire: layout (as docs/PROTOCOL.md tabulates it)", () => {
  it("common header: 'C' 'N', version 3, type, sender id, recipient id — 20 bytes", () => {
    const bytes = sampleData();
    assert.equal(HEADER_BYTES, 20);
    assert.deepEqual([...bytes.subarray(0, 4)], [0x43, 0x4e, 0x03, 0x01]);
    assert.equal(toHex(bytes.subarray(4, 12)), A);
    assert.equal(toHex(bytes.subarray(12, 20)), B);
    assert.equal(sampleAck()[3], 2);
    assert.equal(sampleHello()[3], 3);
  });

  it("DATA fields sit at their documented offsets, big-endian", () => {
    const path = [1, 2, 3].map((n) => new Uint8Array(PATH_HASH_BYTES).fill(n));
    const signature = new Uint8Array(SIGNATURE_BYTES).fill(9);
    const proof = { index: 2, size: 5, path, signature };
    const fields: DataFields = {
      sender: A,
      recipient: B,
      epoch: 0x01020304,
      seq: 0x05060708,
      floor: 0x090a0b0c,
      flags: 1,
      fragIndex: 2,
      fragCount: 3,
      msgId: M,
      sentAt: 0x0001020304050607,
      payload: new Uint8Array([0xaa, 0xbb, 0xcc]),
    };
    const bytes = encodeDataWith(fields, proof, fakeMac);
    assert.equal(DATA_FIXED_BYTES, 61);
    assert.equal(u32At(bytes, 20), 0x01020304);
    assert.equal(u32At(bytes, 24), 0x05060708);
    assert.equal(u32At(bytes, 28), 0x090a0b0c);
    assert.deepEqual([...bytes.subarray(32, 35)], [1, 2, 3]);
    assert.equal(toHex(bytes.subarray(35, 51)), M);
    assert.equal(toHex(bytes.subarray(51, 59)), "0001020304050607");
    assert.deepEqual([...bytes.subarray(59, 61)], [0, 3]);
    assert.deepEqual([...bytes.subarray(61, 64)], [0xaa, 0xbb, 0xcc]);
    assert.deepEqual(bytes.subarray(64, 80), fakeMac(bytes.subarray(0, 64)));
    // Leaf 2 of a batch of 5: the tree splits 4 + 1, then 2 + 2, then 1 + 1, so its path has 3 hashes.
    assert.deepEqual([bytes[80], bytes[81]], [2, 5]);
    assert.equal(auditPathLength(2, 5), 3);
    assert.deepEqual(bytes.subarray(82, 178), new Uint8Array(path.slice(0, 3).flatMap((h) => [...h])));
    assert.deepEqual(bytes.subarray(178), signature);
    assert.equal(bytes.length, 61 + 3 + 16 + 2 + 3 * 32 + 64);
  });

  it("ACK fields sit at their documented offsets, big-endian", () => {
    const bytes = encodeAck(
      {
        sender: B,
        recipient: A,
        epoch: 0x0a0b0c0d,
        next: 0x11223344,
        ranges: [{ start: 0x55667788, length: 0x99aa }],
        rejects: [{ seq: 0x01020304, code: 2 }],
      },
      fakeMac,
    );
    assert.equal(u32At(bytes, 20), 0x0a0b0c0d);
    assert.equal(u32At(bytes, 24), 0x11223344);
    assert.equal(bytes[28], 1);
    assert.equal(u32At(bytes, 29), 0x55667788);
    assert.deepEqual([...bytes.subarray(33, 35)], [0x99, 0xaa]);
    assert.equal(bytes[35], 1);
    assert.equal(u32At(bytes, 36), 0x01020304);
    assert.equal(bytes[40], 2);
    assert.equal(bytes.length, 41 + 16);
  });

  it("HELLO fields sit at their documented offsets, big-endian", () => {
    const bytes = encodeHello(
      {
        sender: A,
        recipient: B,
        epoch: 0x01020304,
        floor: 0x05060708,
        timestamp: 2 ** 40 + 5,
        flags: 1,
        echo: 77,
      },
      fakeMac,
    );
    assert.equal(u32At(bytes, 20), 0x01020304);
    assert.equal(u32At(bytes, 24), 0x05060708);
    assert.equal(toHex(bytes.subarray(28, 36)), "0000010000000005");
    assert.equal(bytes[36], 1);
    assert.equal(toHex(bytes.subarray(37, 45)), "000000000000004d");
  });
});

describe("wire: malformed datagrams map to their reason", () => {
  it("too-short: under the 20-byte header, a DATA under 143 bytes, an ACK under 46", () => {
    assert.equal(reasonOf(new Uint8Array(0)), "too-short");
    assert.equal(reasonOf(sampleData().subarray(0, 19)), "too-short");
    assert.equal(reasonOf(sampleData(new Uint8Array(0)).subarray(0, 142)), "too-short");
    assert.equal(reasonOf(sampleAck(0, 0).subarray(0, 45)), "too-short");
    assert.equal(reasonOf(sampleAck(0, 0)), "ok");
    assert.equal(sampleAck(0, 0).length, 46);
  });

  it("too-long: anything over 1200 bytes, even with a valid header", () => {
    const big = new Uint8Array(MAX_DATAGRAM_BYTES + 1);
    big.set(sampleData());
    assert.equal(reasonOf(big), "too-long");
    assert.equal(reasonOf(sampleData(new Uint8Array(MAX_FRAGMENT_PAYLOAD))), "ok");
  });

  it("bad-magic, unknown-version, unknown-type", () => {
    assert.equal(reasonOf(patched(sampleData(), 0, 0x44)), "bad-magic");
    assert.equal(reasonOf(patched(sampleData(), 1, 0x4f)), "bad-magic");
    assert.equal(reasonOf(patched(sampleData(), 2, 0)), "unknown-version");
    assert.equal(reasonOf(patched(sampleData(), 2, 1)), "unknown-version");
    assert.equal(reasonOf(patched(sampleData(), 2, 2)), "unknown-version");
    assert.equal(reasonOf(patched(sampleData(), 2, 4)), "unknown-version");
    assert.equal(reasonOf(patched(sampleData(), 3, 0)), "unknown-type");
    assert.equal(reasonOf(patched(sampleData(), 3, 4)), "unknown-type");
  });

  it("DATA bad-length: length field disagrees with the datagram, unknown flag bits, sentAt beyond 2^53 − 1", () => {
    const d = sampleData(); // payload length 2 at offset 59
    assert.equal(reasonOf(patched(d, 59, 0, 3)), "bad-length");
    assert.equal(reasonOf(patched(d, 59, 0, 1)), "bad-length");
    assert.equal(reasonOf(d.subarray(0, d.length - 1)), "bad-length");
    assert.equal(reasonOf(patched(d, 32, 2)), "ok"); // Resent
    assert.equal(reasonOf(patched(d, 32, 4)), "bad-length");
    assert.equal(reasonOf(patched(d, 32, 0x80)), "bad-length");
    assert.equal(reasonOf(patched(d, 51, 0x00, 0x20)), "bad-length"); // sentAt = 2^53 + ...
    assert.equal(reasonOf(patched(d, 51, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), "ok");
  });

  it("DATA bad-length: a batch position no batch has (size 0 or over 16, index ≥ size), a path one hash short or long", () => {
    const at = (index: number, size: number) => {
      const hashes = auditPathLength(index, size) ?? 0;
      const path = Array.from({ length: hashes }, () => new Uint8Array(PATH_HASH_BYTES));
      const f = decode(sampleData()).ok ? (decode(sampleData()) as { packet: DataPacket }).packet : undefined;
      assert.ok(f);
      return encodeDataWith(f, { index, size, path, signature: new Uint8Array(SIGNATURE_BYTES) }, fakeMac);
    };
    assert.equal(reasonOf(at(0, 1)), "ok");
    assert.equal(reasonOf(at(15, 16)), "ok");
    assert.equal(reasonOf(at(0, 0)), "bad-length");
    assert.equal(reasonOf(at(0, 17)), "bad-length");
    assert.equal(reasonOf(at(3, 3)), "bad-length");
    const good = at(2, 5); // 3 path hashes
    const short = new Uint8Array(good.length - PATH_HASH_BYTES);
    short.set(good.subarray(0, short.length));
    assert.equal(reasonOf(short), "bad-length");
    const long = new Uint8Array(good.length + PATH_HASH_BYTES);
    long.set(good);
    assert.equal(reasonOf(long), "bad-length");
  });

  it("DATA bad-length: a payload over MAX_FRAGMENT_PAYLOAD, even in a batch of one that leaves it room", () => {
    const f = (decode(sampleData()) as { packet: DataPacket }).packet;
    const alone = { index: 0, size: 1, path: [], signature: new Uint8Array(SIGNATURE_BYTES) };
    const fits = encodeDataWith({ ...f, payload: new Uint8Array(MAX_FRAGMENT_PAYLOAD) }, alone, fakeMac);
    const over = encodeDataWith({ ...f, payload: new Uint8Array(MAX_FRAGMENT_PAYLOAD + 1) }, alone, fakeMac);
    assert.ok(over.length < MAX_DATAGRAM_BYTES);
    assert.equal(reasonOf(fits), "ok");
    assert.equal(reasonOf(over), "bad-length");
  });

  it("DATA bad-fragment: fragCount 0, or fragIndex ≥ fragCount", () => {
    assert.equal(reasonOf(patched(sampleData(), 33, 0, 0)), "bad-fragment");
    assert.equal(reasonOf(patched(sampleData(), 33, 1, 1)), "bad-fragment");
    assert.equal(reasonOf(patched(sampleData(), 33, 255, 255)), "bad-fragment");
    assert.equal(reasonOf(patched(sampleData(), 33, 254, 255)), "ok");
  });

  it("ACK too-many-ranges: more than 32 ranges or more than 16 rejects", () => {
    const a = sampleAck(0, 0);
    assert.equal(reasonOf(patched(a, 28, 33)), "too-many-ranges");
    assert.equal(reasonOf(patched(a, 28, 255)), "too-many-ranges");
    const withRejectCount = (n: number) => patched(sampleAck(0, 0), 29, n);
    assert.equal(reasonOf(withRejectCount(17)), "too-many-ranges");
    assert.equal(reasonOf(withRejectCount(16)), "bad-length"); // count fine, bytes missing
  });

  it("ACK bad-length: ranges or rejects missing or extra bytes, a zero-length range, an unknown reject code", () => {
    const a = sampleAck(2, 1); // ranges at 29.., reject count at 41, reject at 42..46, MAC 47..62
    assert.equal(reasonOf(a), "ok");
    assert.equal(reasonOf(patched(a, 28, 3)), "bad-length"); // claims 3 ranges: reject count lands mid-MAC
    assert.equal(reasonOf(patched(a, 28, 10)), "bad-length");
    assert.equal(reasonOf(patched(a, 33, 0, 0)), "bad-length"); // first range length 0
    assert.equal(reasonOf(patched(a, 41, 2)), "bad-length");
    assert.equal(reasonOf(patched(a, 41, 0)), "bad-length");
    assert.equal(reasonOf(patched(a, 46, 3)), "bad-length"); // reject code 3
    assert.equal(reasonOf(patched(a, 46, 0)), "bad-length");
    const longer = new Uint8Array(a.length + 1);
    longer.set(a);
    assert.equal(reasonOf(longer), "bad-length");
  });

  it("HELLO bad-length: any size but 61, unknown flag bits, timestamp or echo beyond 2^53 − 1", () => {
    const h = sampleHello();
    assert.equal(reasonOf(h.subarray(0, 60)), "bad-length");
    const longer = new Uint8Array(62);
    longer.set(h);
    assert.equal(reasonOf(longer), "bad-length");
    assert.equal(reasonOf(patched(h, 36, 4)), "bad-length");
    assert.equal(reasonOf(patched(h, 36, 2)), "ok"); // Leaving
    assert.equal(reasonOf(patched(h, 36, 3)), "ok");
    assert.equal(reasonOf(patched(h, 28, 0x00, 0x20)), "bad-length");
    assert.equal(reasonOf(patched(h, 37, 0xff)), "bad-length");
    assert.equal(reasonOf(patched(h, 36, 0)), "ok");
  });
});

describe("wire: decode never throws", () => {
  const isReason = (r: ReturnType<typeof decode>) => r.ok || DECODE_ERRORS.includes(r.reason);

  it("on arbitrary bytes, and returns a packet or one of the reasons (property, 20k runs)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1300 }), (bytes) => isReason(decode(bytes))),
      { numRuns: 20_000 },
    );
  });

  it("on arbitrary bytes behind a valid header of every type, so every parser is reached (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3), fc.uint8Array({ maxLength: 1200 }), (type, tail) => {
        const bytes = new Uint8Array(HEADER_BYTES + tail.length);
        bytes.set([0x43, 0x4e, 2, type]);
        bytes.set(tail, HEADER_BYTES);
        return isReason(decode(bytes));
      }),
      { numRuns: 10_000 },
    );
  });

  it("on valid datagrams with bytes flipped, truncated or appended (property)", () => {
    const valid = fc.oneof(
      dataFields.map(encodeData),
      ackFields.map((f) => encodeAck(f, fakeMac)),
      helloFields.map((f) => encodeHello(f, fakeMac)),
    );
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant("flip" as const),
        at: fc.nat(),
        value: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(), value: fc.constant(0) }),
      fc.record({ kind: fc.constant("append" as const), at: fc.nat(40), value: fc.nat(255) }),
    );
    fc.assert(
      fc.property(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }), (original, mutations) => {
        let bytes = new Uint8Array(original);
        for (const m of mutations) {
          if (m.kind === "flip" && bytes.length > 0) {
            const i = m.at % bytes.length;
            bytes[i] = (bytes[i] ?? 0) ^ m.value;
          } else if (m.kind === "truncate") bytes = bytes.slice(0, m.at % (bytes.length + 1));
          else if (m.kind === "append") {
            const longer = new Uint8Array(bytes.length + m.at + 1).fill(m.value);
            longer.set(bytes);
            bytes = longer;
          }
        }
        return isReason(decode(bytes));
      }),
      { numRuns: 5_000 },
    );
  });
});

describe("wire: the worked example of docs/PROTOCOL.md §12", () => {
  it("is exactly what the encoder, real Ed25519 and the real MAC key derivation produce", () => {
    const raw = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
    const sender = ed25519Signer(raw(RFC8032_ED25519[0]?.secretKey ?? ""));
    const recipient = ed25519Signer(raw(RFC8032_ED25519[1]?.secretKey ?? ""));
    const bobX25519 = X25519PublicKey.fromRaw(raw(RFC7748_DH.bobPublic));
    assert.ok(bobX25519);
    const keys = deriveMacKeys(
      { ed25519: sender.publicKey, x25519: X25519PrivateKey.fromRaw(raw(RFC7748_DH.alicePrivate)) },
      { ed25519: recipient.publicKey, x25519: bobX25519 },
    );
    assert.ok(keys);
    const f: DataFields = {
      sender: keyId(sender.publicKey),
      recipient: keyId(recipient.publicKey),
      epoch: 1_700_000_000,
      seq: 7,
      floor: 5,
      flags: 0,
      fragIndex: 0,
      fragCount: 1,
      msgId: M,
      sentAt: 1_700_000_000_123,
      payload: new TextEncoder().encode("hi"),
    };
    const [proof] = signBatch([dataSignedBytes(f)], sender.sign);
    assert.ok(proof);
    const bytes = encodeDataWith(f, proof, (authed) => macTag(keys.send, authed));
    const doc = readFileSync(new URL("../../docs/PROTOCOL.md", import.meta.url), "utf8");
    const section = doc.slice(doc.indexOf("## 12. Worked example"));
    const dump = section.slice(
      section.indexOf("```") + 3,
      section.indexOf("```", section.indexOf("```") + 3),
    );
    const documented = dump
      .trim()
      .split("\n")
      .flatMap((line) => line.slice(6).trim().split(/\s+/));
    assert.equal(toHex(bytes), documented.join(""));
    assert.equal(bytes.length, 145);
  });
});
