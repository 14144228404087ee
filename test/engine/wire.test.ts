import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { batchStatement, signBatch } from "../../src/crypto/batch-signature.ts";
import { ed25519Signer, ed25519Verifier, keyId } from "../../src/crypto/ed25519.ts";
import { leafHash } from "../../src/crypto/merkle.ts";
import { createCryptoPort, staticKeyDirectory } from "../../src/crypto/port.ts";
import { msgIdTime } from "../../src/engine/msg-id.ts";
import type { BatchProof } from "../../src/engine/ports.ts";
import {
  fromHex,
  MAX_BATCH_LEAVES,
  MAX_DATAGRAM_BYTES,
  type MsgId,
  type PeerId,
  SIGNATURE_BYTES,
  toHex,
} from "../../src/engine/types.ts";
import {
  ACK_MIN_BYTES,
  type AckFields,
  type AckPacket,
  auditPathLength,
  BATCH_FIXED_BYTES,
  BATCH_FRAME_FIXED_BYTES,
  type BatchPacket,
  batchBytes,
  DATA_FIXED_BYTES,
  DATA_PROOF_MAX_BYTES,
  type DataFields,
  DataFlags,
  type DataPacket,
  type DecodeError,
  dataSignedBytes,
  decode,
  encodeAck,
  encodeBatch,
  encodeData as encodeDataWith,
  encodeHello,
  HEADER_BYTES,
  HELLO_BYTES,
  type HelloFields,
  HelloFlags,
  type HelloPacket,
  MAX_ACK_RANGES,
  MAX_ACK_REJECTS,
  MAX_ENGINE_DATAGRAM_BYTES,
  MAX_FRAGMENT_PAYLOAD,
  MAX_PATH_HASHES,
  PATH_HASH_BYTES,
  PacketType,
  packetTypeOf,
  RejectCode,
  receivedSignedBytes,
  WIRE_VERSION,
} from "../../src/engine/wire.ts";
import { KEY_BYTES } from "../../src/session/handshake.ts";
import { SessionCipher } from "../../src/session/transport.ts";
import { encodeTransport, TRANSPORT_OVERHEAD, transportHeader } from "../../src/session/wire.ts";
import { RFC8032_ED25519 } from "../crypto/vectors.ts";

const DECODE_ERRORS = [
  "too-short",
  "too-long",
  "unknown-type",
  "bad-length",
  "bad-fragment",
  "too-many-ranges",
] as const satisfies readonly DecodeError[];
/** Fails to compile if DecodeError gains a reason this list (and so the never-throws properties) does not know. */
const everyReasonListed: [Exclude<DecodeError, (typeof DECODE_ERRORS)[number]>] extends [never]
  ? true
  : false = true;

const A = "0123456789abcdef" as PeerId;
const B = "fedcba9876543210" as PeerId;
const M = "00112233445566778899aabbccddeeff" as MsgId;

/** Where the fields of a DATA datagram start (docs/PROTOCOL.md is rewritten to match src/engine/wire.ts). */
const DATA = {
  type: 0,
  epoch: 1,
  seq: 5,
  floor: 9,
  flags: 13,
  fragIndex: 14,
  fragCount: 15,
  msgId: 16,
  length: 32,
  payload: 34,
} as const;
/** Where the fields of an ACK start; the ranges (6 bytes each) follow rangeCount, then rejectCount and rejects. */
const ACK = { type: 0, epoch: 1, next: 5, rangeCount: 9, ranges: 10 } as const;
const HELLO = { type: 0, epoch: 1, floor: 5, timestamp: 9, flags: 17, echo: 18 } as const;

/**
 * A deterministic stand-in for the batch signature: the codec only places it. The batch's shape follows the
 * message's length, so the property runs cover every size from 1 to 16 and every position.
 */
function fakeProof(signed: Uint8Array): BatchProof {
  const size = (signed.length % MAX_BATCH_LEAVES) + 1;
  const index = (signed.length * 7) % size;
  const hashes = auditPathLength(index, size) ?? 0;
  const path = Array.from({ length: hashes }, (_, i) => new Uint8Array(PATH_HASH_BYTES).fill(i + 1));
  return { index, size, path, signature: new Uint8Array(SIGNATURE_BYTES).fill(signed.length & 0xff) };
}
const proofBytes = (proof: BatchProof) => 2 + proof.path.length * PATH_HASH_BYTES + SIGNATURE_BYTES;
/** A proof for leaf `index` of a batch of `size`, with the right number of (zero) hashes. */
function proofAt(index: number, size: number): BatchProof {
  const hashes = auditPathLength(index, size) ?? 0;
  const path = Array.from({ length: hashes }, () => new Uint8Array(PATH_HASH_BYTES));
  return { index, size, path, signature: new Uint8Array(SIGNATURE_BYTES) };
}

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
      epoch: u32,
      seq: u32,
      floor: u32,
      flags: fc.constantFrom(0, DataFlags.Private, DataFlags.Resent, DataFlags.Private | DataFlags.Resent),
      fragCount: fc.integer({ min: 1, max: 255 }),
      fragIndexSeed: fc.nat(),
      msgId,
      payload: fc.uint8Array({ maxLength: MAX_FRAGMENT_PAYLOAD }),
    },
    plain,
  )
  .map(({ fragIndexSeed, ...f }) => ({ ...f, fragIndex: fragIndexSeed % f.fragCount }));

const ackFields: fc.Arbitrary<AckFields> = fc.record(
  {
    epoch: u32,
    next: u32,
    ranges: fc.array(fc.record({ start: u32, length: fc.integer({ min: 1, max: 0xffff }) }, plain), {
      maxLength: MAX_ACK_RANGES,
    }),
    rejects: fc.array(
      fc.record({ seq: u32, code: fc.constantFrom(RejectCode.DecryptFailed, RejectCode.Malformed) }, plain),
      { maxLength: MAX_ACK_REJECTS },
    ),
  },
  plain,
);

const helloFields: fc.Arbitrary<HelloFields> = fc.record(
  {
    epoch: u32,
    floor: u32,
    timestamp: millis,
    flags: fc.constantFrom(
      0,
      HelloFlags.ReplyWanted,
      HelloFlags.Leaving,
      HelloFlags.ReplyWanted | HelloFlags.Leaving,
    ),
    echo: millis,
  },
  plain,
);

function encodeData(f: DataFields, author: PeerId = A): Uint8Array {
  return encodeDataWith(f, fakeProof(dataSignedBytes(author, f)));
}

const SAMPLE_DATA: DataFields = {
  epoch: 1,
  seq: 7,
  floor: 5,
  flags: 0,
  fragIndex: 0,
  fragCount: 1,
  msgId: M,
  payload: new Uint8Array([104, 105]),
};

/** A DATA with `payload` as leaf `index` of a batch of `size` (the sample's fields otherwise). */
function sampleData(payload = SAMPLE_DATA.payload, index = 0, size = 1): Uint8Array {
  return encodeDataWith({ ...SAMPLE_DATA, payload }, proofAt(index, size));
}

function sampleAck(ranges = 2, rejects = 1): Uint8Array {
  return encodeAck({
    epoch: 1,
    next: 10,
    ranges: Array.from({ length: ranges }, (_, i) => ({ start: 12 + 3 * i, length: 1 })),
    rejects: Array.from({ length: rejects }, (_, i) => ({ seq: 3 + i, code: RejectCode.DecryptFailed })),
  });
}

function sampleHello(): Uint8Array {
  return encodeHello({ epoch: 1, floor: 9, timestamp: 1234, flags: HelloFlags.ReplyWanted, echo: 99 });
}

function reasonOf(bytes: Uint8Array): DecodeError | "ok" {
  const r = decode(bytes);
  return r.ok ? "ok" : r.reason;
}

function decodeDataPacket(bytes: Uint8Array): DataPacket {
  const r = decode(bytes);
  assert.ok(r.ok, r.ok ? "" : r.reason);
  assert.equal(r.packet.type, PacketType.Data);
  return r.packet as DataPacket;
}

function patched(bytes: Uint8Array, offset: number, ...values: number[]): Uint8Array {
  const out = new Uint8Array(bytes);
  values.forEach((v, i) => {
    out[offset + i] = v;
  });
  return out;
}

/** `bytes` with `extra` bytes of `fill` appended (extra > 0) or its last −extra bytes cut (extra < 0). */
function resized(bytes: Uint8Array, extra: number, fill = 0): Uint8Array {
  if (extra <= 0) return bytes.slice(0, bytes.length + extra);
  const out = new Uint8Array(bytes.length + extra).fill(fill);
  out.set(bytes);
  return out;
}

function u32At(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(offset);
}

/** Where a DATA's message part (flags … payload) ends: after its payload of `length` bytes. */
const messagePartEnd = (payloadLength: number) => DATA.payload + payloadLength;

describe("wire: sizes and limits", () => {
  it("the constants: a 1-byte header, DATA 100 + L + 32P bytes, ACK 11 + 6R + 5J, HELLO 26", () => {
    assert.equal(WIRE_VERSION, 4);
    assert.deepEqual(PacketType, { Data: 1, Ack: 2, Hello: 3, Batch: 4 });
    assert.equal(BATCH_FIXED_BYTES, 1 + 4 + 4 + 4 + 1 + 64);
    assert.equal(BATCH_FRAME_FIXED_BYTES, 21);
    assert.equal(HEADER_BYTES, 1);
    assert.equal(DATA_FIXED_BYTES, 34);
    assert.equal(MAX_PATH_HASHES, 4);
    assert.equal(auditPathLength(0, MAX_BATCH_LEAVES), MAX_PATH_HASHES);
    assert.equal(DATA_PROOF_MAX_BYTES, 2 + 4 * 32 + 64);
    assert.equal(ACK_MIN_BYTES, 11);
    assert.equal(HELLO_BYTES, 26);
    assert.equal(MAX_ENGINE_DATAGRAM_BYTES, 1175);
    assert.equal(MAX_FRAGMENT_PAYLOAD, 947);
  });

  it("the engine's datagram limit plus the session's transport overhead is exactly MAX_DATAGRAM_BYTES", () => {
    assert.equal(TRANSPORT_OVERHEAD, 25);
    assert.equal(MAX_ENGINE_DATAGRAM_BYTES + TRANSPORT_OVERHEAD, MAX_DATAGRAM_BYTES);
  });

  it("a DATA with MAX_FRAGMENT_PAYLOAD and a full 4-hash path is exactly MAX_ENGINE_DATAGRAM_BYTES, and sealed exactly MAX_DATAGRAM_BYTES", () => {
    assert.equal(auditPathLength(0, 9), 4);
    const full = sampleData(new Uint8Array(MAX_FRAGMENT_PAYLOAD).fill(7), 0, 9);
    assert.equal(full.length, MAX_ENGINE_DATAGRAM_BYTES);
    assert.equal(full.length, 100 + MAX_FRAGMENT_PAYLOAD + 32 * MAX_PATH_HASHES);
    assert.equal(reasonOf(full), "ok");
    const cipher = new SessionCipher(new Uint8Array(KEY_BYTES).fill(1));
    const header = transportHeader(0x01020304, 9);
    const sealed = encodeTransport(header, cipher.seal(9, full, header));
    assert.equal(sealed.length, MAX_DATAGRAM_BYTES);
  });

  it("at every batch position, a DATA with MAX_FRAGMENT_PAYLOAD fits and decodes; the deepest positions fill the limit", () => {
    let largest = 0;
    for (let size = 1; size <= MAX_BATCH_LEAVES; size++) {
      for (let index = 0; index < size; index++) {
        const bytes = sampleData(new Uint8Array(MAX_FRAGMENT_PAYLOAD), index, size);
        const hashes = auditPathLength(index, size) ?? -1;
        assert.equal(bytes.length, 100 + MAX_FRAGMENT_PAYLOAD + 32 * hashes, `leaf ${index} of ${size}`);
        assert.ok(bytes.length <= MAX_ENGINE_DATAGRAM_BYTES, `leaf ${index} of ${size}`);
        assert.equal(reasonOf(bytes), "ok", `leaf ${index} of ${size}`);
        largest = Math.max(largest, bytes.length);
      }
    }
    assert.equal(largest, MAX_ENGINE_DATAGRAM_BYTES);
  });

  it("the largest ACK (32 ranges, 16 rejects) is 283 bytes and decodes", () => {
    const bytes = sampleAck(MAX_ACK_RANGES, MAX_ACK_REJECTS);
    assert.equal(bytes.length, 11 + 6 * 32 + 5 * 16);
    assert.equal(reasonOf(bytes), "ok");
  });
});

describe("wire: round trips", () => {
  it("DATA decodes to its fields and proof; messagePart = the datagram's flags … payload (property)", () => {
    fc.assert(
      fc.property(dataFields, peerId, (f, author) => {
        const bytes = encodeData(f, author);
        const expected = fakeProof(dataSignedBytes(author, f));
        assert.equal(bytes.length, 100 + f.payload.length + 32 * expected.path.length);
        assert.equal(bytes.length, DATA_FIXED_BYTES + f.payload.length + proofBytes(expected));
        assert.ok(bytes.length <= MAX_ENGINE_DATAGRAM_BYTES);
        const p = decodeDataPacket(bytes);
        const { messagePart, proof, type: _t, ...fields } = p;
        assert.deepEqual({ ...fields, payload: new Uint8Array(fields.payload) }, f);
        assert.deepEqual(messagePart, bytes.subarray(DATA.flags, messagePartEnd(f.payload.length)));
        assert.deepEqual(proof, expected);
        assert.deepEqual(receivedSignedBytes(author, messagePart), dataSignedBytes(author, f));
        assert.equal(packetTypeOf(bytes), PacketType.Data);
      }),
      { numRuns: 300 },
    );
  });

  it("ACK decodes to the fields it was encoded from, 11 + 6R + 5J bytes (property)", () => {
    fc.assert(
      fc.property(ackFields, (f) => {
        const bytes = encodeAck(f);
        assert.equal(bytes.length, ACK_MIN_BYTES + 6 * f.ranges.length + 5 * f.rejects.length);
        const r = decode(bytes);
        assert.ok(r.ok);
        const { type, ...fields } = r.packet as AckPacket;
        assert.equal(type, PacketType.Ack);
        assert.deepEqual(fields, f);
        assert.equal(packetTypeOf(bytes), PacketType.Ack);
      }),
      { numRuns: 300 },
    );
  });

  it("HELLO decodes to the fields it was encoded from, always 26 bytes (property)", () => {
    fc.assert(
      fc.property(helloFields, (f) => {
        const bytes = encodeHello(f);
        assert.equal(bytes.length, HELLO_BYTES);
        const r = decode(bytes);
        assert.ok(r.ok);
        const { type, ...fields } = r.packet as HelloPacket;
        assert.equal(type, PacketType.Hello);
        assert.deepEqual(fields, f);
        assert.equal(packetTypeOf(bytes), PacketType.Hello);
      }),
      { numRuns: 300 },
    );
  });

  it("decodes a datagram that is a view into a larger buffer (as a socket hands it over), message part included", () => {
    const bytes = sampleData();
    const big = new Uint8Array(bytes.length + 13).fill(0xee);
    big.set(bytes, 7);
    const p = decodeDataPacket(big.subarray(7, 7 + bytes.length));
    assert.equal(p.seq, 7);
    assert.deepEqual(new Uint8Array(p.payload), SAMPLE_DATA.payload);
    assert.deepEqual(receivedSignedBytes(A, p.messagePart), dataSignedBytes(A, SAMPLE_DATA));
  });

  it("a message's time of writing travels in its msgId (no sentAt any more)", () => {
    const withTime = "018bcfe5687b8899aabbccddeeff0011" as MsgId;
    const p = decodeDataPacket(encodeData({ ...SAMPLE_DATA, msgId: withTime }));
    assert.equal(msgIdTime(p.msgId), 1_700_000_000_123);
  });

  it("encodeAck keeps only the first 32 ranges and 16 rejects", () => {
    const bytes = encodeAck({
      epoch: 1,
      next: 0,
      ranges: Array.from({ length: 40 }, (_, i) => ({ start: 2 * i + 1, length: 1 })),
      rejects: Array.from({ length: 20 }, (_, i) => ({ seq: i, code: RejectCode.Malformed })),
    });
    assert.equal(bytes.length, 11 + 6 * MAX_ACK_RANGES + 5 * MAX_ACK_REJECTS);
    const r = decode(bytes);
    assert.ok(r.ok);
    const p = r.packet as AckPacket;
    assert.equal(p.ranges.length, MAX_ACK_RANGES);
    assert.equal(p.ranges[31]?.start, 63);
    assert.equal(p.rejects.length, MAX_ACK_REJECTS);
    assert.equal(p.rejects[15]?.seq, 15);
  });

  it("packetTypeOf: the first byte, undefined for an empty datagram", () => {
    assert.equal(packetTypeOf(new Uint8Array(0)), undefined);
    assert.equal(packetTypeOf(sampleData()), 1);
    assert.equal(packetTypeOf(sampleAck()), 2);
    assert.equal(packetTypeOf(sampleHello()), 3);
  });
});

describe("wire: layout (as src/engine/wire.ts writes it)", () => {
  it("every datagram starts with its type byte and nothing else: no magic, version or key ids", () => {
    assert.equal(sampleData()[0], PacketType.Data);
    assert.equal(sampleAck()[0], PacketType.Ack);
    assert.equal(sampleHello()[0], PacketType.Hello);
    // Neither the author's nor anyone's key id appears in a datagram whose fields do not contain it.
    const bytes = toHex(encodeData(SAMPLE_DATA, A));
    assert.equal(bytes.includes(A), false);
  });

  it("DATA fields sit at their offsets, big-endian: type, epoch, seq, floor, flags, fragIndex, fragCount, msgId, length, payload, index, size, path, signature", () => {
    const path = [1, 2, 3].map((n) => new Uint8Array(PATH_HASH_BYTES).fill(n));
    const signature = new Uint8Array(SIGNATURE_BYTES).fill(9);
    const proof = { index: 2, size: 5, path, signature };
    const fields: DataFields = {
      epoch: 0x01020304,
      seq: 0x05060708,
      floor: 0x090a0b0c,
      flags: 3,
      fragIndex: 2,
      fragCount: 3,
      msgId: M,
      payload: new Uint8Array([0xaa, 0xbb, 0xcc]),
    };
    const bytes = encodeDataWith(fields, proof);
    assert.equal(bytes[DATA.type], 1);
    assert.equal(u32At(bytes, DATA.epoch), 0x01020304);
    assert.equal(u32At(bytes, DATA.seq), 0x05060708);
    assert.equal(u32At(bytes, DATA.floor), 0x090a0b0c);
    assert.deepEqual([bytes[DATA.flags], bytes[DATA.fragIndex], bytes[DATA.fragCount]], [3, 2, 3]);
    assert.equal(toHex(bytes.subarray(DATA.msgId, DATA.msgId + 16)), M);
    assert.deepEqual([...bytes.subarray(DATA.length, DATA.length + 2)], [0, 3]);
    assert.equal(DATA.payload, DATA_FIXED_BYTES);
    assert.deepEqual([...bytes.subarray(34, 37)], [0xaa, 0xbb, 0xcc]);
    // Leaf 2 of a batch of 5: the tree splits 4 + 1, then 2 + 2, then 1 + 1, so its path has 3 hashes.
    assert.deepEqual([bytes[37], bytes[38]], [2, 5]);
    assert.equal(auditPathLength(2, 5), 3);
    assert.deepEqual(bytes.subarray(39, 135), new Uint8Array(path.flatMap((h) => [...h])));
    assert.deepEqual(bytes.subarray(135), signature);
    assert.equal(bytes.length, 34 + 3 + 2 + 3 * 32 + 64);
    assert.equal(bytes.length, 100 + 3 + 32 * 3);
  });

  it("DATA length is big-endian over both bytes (a 0x0102-byte payload)", () => {
    const bytes = sampleData(new Uint8Array(0x0102));
    assert.deepEqual([...bytes.subarray(DATA.length, DATA.length + 2)], [0x01, 0x02]);
    assert.equal(reasonOf(bytes), "ok");
  });

  it("ACK fields sit at their offsets, big-endian: type, epoch, next, rangeCount, ranges, rejectCount, rejects", () => {
    const bytes = encodeAck({
      epoch: 0x0a0b0c0d,
      next: 0x11223344,
      ranges: [
        { start: 0x55667788, length: 0x99aa },
        { start: 0x01020304, length: 0x0506 },
      ],
      rejects: [{ seq: 0x0708090a, code: RejectCode.Malformed }],
    });
    assert.equal(bytes[ACK.type], 2);
    assert.equal(u32At(bytes, ACK.epoch), 0x0a0b0c0d);
    assert.equal(u32At(bytes, ACK.next), 0x11223344);
    assert.equal(bytes[ACK.rangeCount], 2);
    assert.equal(u32At(bytes, 10), 0x55667788);
    assert.deepEqual([...bytes.subarray(14, 16)], [0x99, 0xaa]);
    assert.equal(u32At(bytes, 16), 0x01020304);
    assert.deepEqual([...bytes.subarray(20, 22)], [0x05, 0x06]);
    assert.equal(bytes[22], 1);
    assert.equal(u32At(bytes, 23), 0x0708090a);
    assert.equal(bytes[27], 2);
    assert.equal(bytes.length, 28);
  });

  it("HELLO fields sit at their offsets, big-endian: type, epoch, floor, timestamp u64, flags, echo u64", () => {
    const bytes = encodeHello({
      epoch: 0x01020304,
      floor: 0x05060708,
      timestamp: 2 ** 40 + 5,
      flags: 3,
      echo: 2 ** 52 + 77,
    });
    assert.equal(bytes[HELLO.type], 3);
    assert.equal(u32At(bytes, HELLO.epoch), 0x01020304);
    assert.equal(u32At(bytes, HELLO.floor), 0x05060708);
    assert.equal(toHex(bytes.subarray(HELLO.timestamp, HELLO.timestamp + 8)), "0000010000000005");
    assert.equal(bytes[HELLO.flags], 3);
    assert.equal(toHex(bytes.subarray(HELLO.echo, HELLO.echo + 8)), "001000000000004d");
    assert.equal(bytes.length, HELLO.echo + 8);
  });
});

describe("wire: what the batch signature covers", () => {
  it("dataSignedBytes = version 4, the author's key id, then the datagram's flags … payload byte for byte (property)", () => {
    fc.assert(
      fc.property(dataFields, peerId, (f, author) => {
        const signed = dataSignedBytes(author, f);
        const bytes = encodeData(f, author);
        const part = bytes.subarray(DATA.flags, messagePartEnd(f.payload.length));
        assert.deepEqual(signed, new Uint8Array([WIRE_VERSION, ...fromHex(author), ...part]));
        assert.equal(signed.length, 1 + 8 + 3 + 16 + 2 + f.payload.length);
      }),
      { numRuns: 200 },
    );
  });

  it("leaves out epoch, seq and floor: any change to them leaves the signed bytes as they were (property)", () => {
    fc.assert(
      fc.property(dataFields, u32, u32, u32, (f, epoch, seq, floor) => {
        const restreamed: DataFields = { ...f, epoch, seq, floor };
        assert.deepEqual(dataSignedBytes(A, restreamed), dataSignedBytes(A, f));
        const bytes = encodeData(f);
        const other = new Uint8Array(bytes);
        const view = new DataView(other.buffer);
        view.setUint32(DATA.epoch, epoch);
        view.setUint32(DATA.seq, seq);
        view.setUint32(DATA.floor, floor);
        const p = decodeDataPacket(other);
        assert.deepEqual([p.epoch, p.seq, p.floor], [epoch, seq, floor]);
        assert.deepEqual(receivedSignedBytes(A, p.messagePart), dataSignedBytes(A, f));
      }),
      { numRuns: 200 },
    );
  });

  it("covers every message-part byte: flipping any of them changes the signed bytes or fails decoding", () => {
    const payload = new Uint8Array([1, 2, 3, 4, 5]);
    const f = { ...SAMPLE_DATA, fragCount: 3, fragIndex: 1, payload };
    const bytes = encodeData(f);
    const original = dataSignedBytes(A, f);
    const end = messagePartEnd(payload.length);
    let decodedFlips = 0;
    for (let i = DATA.flags; i < end; i++) {
      for (const bit of [0x01, 0x80]) {
        const r = decode(patched(bytes, i, (bytes[i] as number) ^ bit));
        if (!r.ok) continue;
        decodedFlips++;
        const p = r.packet as DataPacket;
        assert.notDeepEqual(receivedSignedBytes(A, p.messagePart), original, `byte ${i}, bit ${bit}`);
      }
    }
    // Flags, fragment and length bytes may be refused, but msgId's and the payload's flips all decode.
    assert.ok(decodedFlips >= 2 * (16 + payload.length));
  });

  it("covers the author: the same message part signed by another author is other bytes", () => {
    assert.notDeepEqual(dataSignedBytes(A, SAMPLE_DATA), dataSignedBytes(B, SAMPLE_DATA));
    const p = decodeDataPacket(sampleData());
    assert.deepEqual(toHex(receivedSignedBytes(B, p.messagePart).subarray(1, 9)), B);
  });

  it("with a real port: the author's batch signature verifies for each DATA of a batch, after any epoch/seq/floor change, and fails for a changed message part or another author", () => {
    const secretsOf = (fill: number) => ({
      ed25519Seed: new Uint8Array(32).fill(fill),
      x25519PrivateKey: new Uint8Array(32).fill(fill + 0x40),
    });
    const alice = createCryptoPort({ identity: secretsOf(1), directory: staticKeyDirectory([]) });
    const messages = Array.from({ length: 5 }, (_, i) => ({
      ...SAMPLE_DATA,
      seq: 100 + i,
      payload: new Uint8Array(i * 10).fill(i),
    }));
    const proofs = alice.signBatch(messages.map((f) => dataSignedBytes(alice.selfId, f)));
    messages.forEach((f, i) => {
      const proof = proofs[i] as BatchProof;
      const bytes = encodeDataWith(f, proof);
      const p = decodeDataPacket(bytes);
      const signed = receivedSignedBytes(alice.selfId, p.messagePart);
      assert.equal(alice.verify(alice.selfId, signed, p.proof), true, `message ${i}`);
      const restreamed = decodeDataPacket(patched(bytes, DATA.epoch, 9, 9, 9, 9, 8, 8, 8, 8, 7, 7, 7, 7));
      assert.equal(
        alice.verify(
          alice.selfId,
          receivedSignedBytes(alice.selfId, restreamed.messagePart),
          restreamed.proof,
        ),
        true,
      );
      const tampered = decodeDataPacket(patched(bytes, DATA.msgId, (bytes[DATA.msgId] as number) ^ 1));
      assert.equal(
        alice.verify(alice.selfId, receivedSignedBytes(alice.selfId, tampered.messagePart), tampered.proof),
        false,
      );
      assert.equal(alice.verify(alice.selfId, receivedSignedBytes(B, p.messagePart), p.proof), false);
    });
  });
});

describe("wire: malformed datagrams map to their reason", () => {
  it("too-short: an empty datagram, a DATA under 100 bytes, an ACK under 11", () => {
    assert.equal(reasonOf(new Uint8Array(0)), "too-short");
    assert.equal(reasonOf(new Uint8Array([PacketType.Data])), "too-short");
    assert.equal(reasonOf(new Uint8Array([PacketType.Ack])), "too-short");
    const smallest = sampleData(new Uint8Array(0));
    assert.equal(smallest.length, 100);
    assert.equal(reasonOf(smallest), "ok");
    assert.equal(reasonOf(smallest.subarray(0, 99)), "too-short");
    assert.equal(reasonOf(sampleAck(0, 0)), "ok");
    assert.equal(sampleAck(0, 0).length, 11);
    assert.equal(reasonOf(sampleAck(0, 0).subarray(0, 10)), "too-short");
    // A HELLO has one size: any other, however short, is bad-length.
    assert.equal(reasonOf(new Uint8Array([PacketType.Hello])), "bad-length");
  });

  it("too-long: anything over 1175 bytes, whatever its first byte; 1175 itself is decoded", () => {
    const full = sampleData(new Uint8Array(MAX_FRAGMENT_PAYLOAD), 0, MAX_BATCH_LEAVES);
    assert.equal(full.length, MAX_ENGINE_DATAGRAM_BYTES);
    assert.equal(reasonOf(full), "ok");
    assert.equal(reasonOf(resized(full, 1)), "too-long");
    for (const type of [0, 1, 2, 3, 4, 6, 0x43, 255]) {
      assert.equal(
        reasonOf(new Uint8Array(MAX_ENGINE_DATAGRAM_BYTES + 1).fill(type)),
        "too-long",
        `type ${type}`,
      );
    }
    assert.equal(reasonOf(new Uint8Array(MAX_DATAGRAM_BYTES)), "too-long");
  });

  it("unknown-type: any first byte but 1 … 4, including the session's 5 and 6 and protocol v1's 'C' (property)", () => {
    for (const type of [0, 5, 6, 0x43, 255]) {
      assert.equal(reasonOf(patched(sampleData(), 0, type)), "unknown-type", `type ${type}`);
      assert.equal(reasonOf(new Uint8Array([type])), "unknown-type", `type ${type} alone`);
    }
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }).filter((t) => t < 1 || t > 4),
        fc.uint8Array({ maxLength: MAX_ENGINE_DATAGRAM_BYTES - 1 }),
        (type, tail) => reasonOf(new Uint8Array([type, ...tail])) === "unknown-type",
      ),
      { numRuns: 2_000 },
    );
  });

  it("DATA bad-length: the length field disagrees with the datagram, or it is one byte short or long", () => {
    const d = sampleData(); // payload length 2
    assert.equal(reasonOf(d), "ok");
    assert.equal(reasonOf(patched(d, DATA.length, 0, 3)), "bad-length");
    assert.equal(reasonOf(patched(d, DATA.length, 0, 1)), "bad-length");
    assert.equal(reasonOf(patched(d, DATA.length, 0xff, 0xff)), "bad-length");
    assert.equal(reasonOf(resized(d, -1)), "bad-length");
    assert.equal(reasonOf(resized(d, 1)), "bad-length");
  });

  it("DATA bad-length: unknown flag bits (Private and Resent are the only ones)", () => {
    const d = sampleData();
    assert.equal(reasonOf(patched(d, DATA.flags, DataFlags.Private)), "ok");
    assert.equal(reasonOf(patched(d, DATA.flags, DataFlags.Resent)), "ok");
    assert.equal(reasonOf(patched(d, DATA.flags, 3)), "ok");
    for (const flags of [4, 7, 8, 0x80, 0xff]) {
      assert.equal(reasonOf(patched(d, DATA.flags, flags)), "bad-length", `flags ${flags}`);
    }
  });

  it("DATA bad-length: a batch position no batch has (size 0 or over 16, index ≥ size), a path one hash short or long", () => {
    const at = (index: number, size: number) => sampleData(SAMPLE_DATA.payload, index, size);
    assert.equal(reasonOf(at(0, 1)), "ok");
    assert.equal(reasonOf(at(15, 16)), "ok");
    assert.equal(reasonOf(at(0, 0)), "bad-length");
    assert.equal(reasonOf(at(0, 17)), "bad-length");
    assert.equal(reasonOf(at(3, 3)), "bad-length");
    assert.equal(reasonOf(at(255, 255)), "bad-length");
    const good = at(2, 5); // 3 path hashes
    assert.equal(reasonOf(good), "ok");
    assert.equal(reasonOf(resized(good, -PATH_HASH_BYTES)), "bad-length");
    assert.equal(reasonOf(resized(good, PATH_HASH_BYTES)), "bad-length");
    // The size byte claims a batch whose path for this leaf is longer or shorter than the one carried.
    const sizeAt = DATA.payload + SAMPLE_DATA.payload.length + 1;
    assert.equal(good[sizeAt], 5);
    assert.equal(reasonOf(patched(good, sizeAt, 16)), "bad-length"); // leaf 2 of 16: 4 hashes
    assert.equal(reasonOf(patched(good, sizeAt, 3)), "bad-length"); // leaf 2 of 3: 1 hash
    assert.equal(reasonOf(patched(good, sizeAt, 6)), "ok"); // leaf 2 of 6: 3 hashes as well
  });

  it("DATA bad-length: a payload over MAX_FRAGMENT_PAYLOAD, even in a batch of one that leaves it room", () => {
    const fits = sampleData(new Uint8Array(MAX_FRAGMENT_PAYLOAD));
    const over = sampleData(new Uint8Array(MAX_FRAGMENT_PAYLOAD + 1));
    assert.ok(over.length < MAX_ENGINE_DATAGRAM_BYTES);
    assert.equal(reasonOf(fits), "ok");
    assert.equal(reasonOf(over), "bad-length");
  });

  it("DATA bad-fragment: fragCount 0, or fragIndex ≥ fragCount", () => {
    const d = sampleData();
    assert.equal(reasonOf(patched(d, DATA.fragIndex, 0, 0)), "bad-fragment");
    assert.equal(reasonOf(patched(d, DATA.fragIndex, 1, 1)), "bad-fragment");
    assert.equal(reasonOf(patched(d, DATA.fragIndex, 3, 2)), "bad-fragment");
    assert.equal(reasonOf(patched(d, DATA.fragIndex, 255, 255)), "bad-fragment");
    assert.equal(reasonOf(patched(d, DATA.fragIndex, 254, 255)), "ok");
    assert.equal(reasonOf(patched(d, DATA.fragIndex, 0, 255)), "ok");
  });

  it("ACK too-many-ranges: more than 32 ranges or more than 16 rejects; 32 and 16 are read", () => {
    const a = sampleAck(0, 0);
    assert.equal(reasonOf(patched(a, ACK.rangeCount, 33)), "too-many-ranges");
    assert.equal(reasonOf(patched(a, ACK.rangeCount, 255)), "too-many-ranges");
    assert.equal(reasonOf(patched(a, ACK.rangeCount, 32)), "bad-length"); // count fine, bytes missing
    const withRejectCount = (n: number) => patched(a, ACK.ranges, n);
    assert.equal(reasonOf(withRejectCount(17)), "too-many-ranges");
    assert.equal(reasonOf(withRejectCount(255)), "too-many-ranges");
    assert.equal(reasonOf(withRejectCount(16)), "bad-length"); // count fine, bytes missing
    const full = sampleAck(MAX_ACK_RANGES, MAX_ACK_REJECTS);
    assert.equal(reasonOf(full), "ok");
    assert.equal(reasonOf(patched(full, ACK.rangeCount, 33)), "too-many-ranges");
    assert.equal(reasonOf(patched(full, ACK.ranges + 6 * MAX_ACK_RANGES, 17)), "too-many-ranges");
  });

  it("ACK bad-length: ranges or rejects missing or extra bytes, a zero-length range, an unknown reject code", () => {
    const a = sampleAck(2, 1); // ranges at 10..21, reject count at 22, reject at 23..27
    const rejectCountAt = ACK.ranges + 2 * 6;
    assert.equal(reasonOf(a), "ok");
    assert.equal(a.length, 28);
    assert.equal(reasonOf(patched(a, ACK.rangeCount, 3)), "bad-length"); // claims 3 ranges: one byte short
    assert.equal(reasonOf(patched(a, ACK.rangeCount, 10)), "bad-length");
    assert.equal(reasonOf(patched(a, ACK.rangeCount, 1)), "bad-length"); // the second range read as rejects
    assert.equal(reasonOf(patched(a, ACK.ranges + 4, 0, 0)), "bad-length"); // first range length 0
    assert.equal(reasonOf(patched(a, ACK.ranges + 10, 0, 0)), "bad-length"); // second range length 0
    assert.equal(reasonOf(patched(a, rejectCountAt, 2)), "bad-length");
    assert.equal(reasonOf(patched(a, rejectCountAt, 0)), "bad-length");
    assert.equal(reasonOf(patched(a, 27, RejectCode.Malformed)), "ok");
    assert.equal(reasonOf(patched(a, 27, 3)), "bad-length"); // reject code 3
    assert.equal(reasonOf(patched(a, 27, 0)), "bad-length");
    assert.equal(reasonOf(resized(a, 1)), "bad-length");
    assert.equal(reasonOf(resized(a, -1)), "bad-length");
  });

  it("HELLO bad-length: any size but 26, unknown flag bits, timestamp or echo beyond 2^53 − 1", () => {
    const h = sampleHello();
    assert.equal(reasonOf(h), "ok");
    assert.equal(reasonOf(resized(h, -1)), "bad-length");
    assert.equal(reasonOf(resized(h, 1)), "bad-length");
    assert.equal(reasonOf(patched(h, HELLO.flags, 4)), "bad-length");
    assert.equal(reasonOf(patched(h, HELLO.flags, 0x80)), "bad-length");
    assert.equal(reasonOf(patched(h, HELLO.flags, HelloFlags.Leaving)), "ok");
    assert.equal(reasonOf(patched(h, HELLO.flags, 3)), "ok");
    assert.equal(reasonOf(patched(h, HELLO.flags, 0)), "ok");
    const max = [0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]; // 2^53 − 1
    const over = [0x00, 0x20, 0, 0, 0, 0, 0, 0]; // 2^53
    assert.equal(reasonOf(patched(h, HELLO.timestamp, ...max)), "ok");
    assert.equal(reasonOf(patched(h, HELLO.timestamp, ...over)), "bad-length");
    assert.equal(reasonOf(patched(h, HELLO.echo, ...max)), "ok");
    assert.equal(reasonOf(patched(h, HELLO.echo, ...over)), "bad-length");
    assert.equal(reasonOf(patched(h, HELLO.echo, 0xff)), "bad-length");
  });
});

describe("wire: decode never throws", () => {
  const isReason = (r: ReturnType<typeof decode>) => r.ok || DECODE_ERRORS.includes(r.reason);

  it("lists every reason", () => {
    assert.equal(everyReasonListed, true);
  });

  it("on arbitrary bytes, and returns a packet or one of the reasons (property, 20k runs)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1300 }), (bytes) => isReason(decode(bytes))),
      { numRuns: 20_000 },
    );
  });

  it("on arbitrary bytes behind each type byte, so every parser is reached (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3), fc.uint8Array({ maxLength: 1200 }), (type, tail) => {
        const bytes = new Uint8Array(1 + tail.length);
        bytes[0] = type;
        bytes.set(tail, 1);
        return isReason(decode(bytes));
      }),
      { numRuns: 10_000 },
    );
  });

  it("on valid datagrams with bytes flipped, truncated or appended (property)", () => {
    const valid = fc.oneof(
      dataFields.map((f) => encodeData(f)),
      ackFields.map(encodeAck),
      helloFields.map(encodeHello),
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
        let bytes: Uint8Array = new Uint8Array(original);
        for (const m of mutations) {
          if (m.kind === "flip" && bytes.length > 0) {
            const i = m.at % bytes.length;
            bytes[i] = (bytes[i] ?? 0) ^ m.value;
          } else if (m.kind === "truncate") bytes = bytes.slice(0, m.at % (bytes.length + 1));
          else if (m.kind === "append") bytes = resized(bytes, m.at + 1, m.value);
        }
        return isReason(decode(bytes));
      }),
      { numRuns: 5_000 },
    );
  });
});

describe("wire: a worked example with a real Ed25519 key", () => {
  it("is exactly these bytes: the encoder and an RFC 8032 key's batch signature over dataSignedBytes", () => {
    const raw = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
    const vector = RFC8032_ED25519[0];
    assert.ok(vector);
    const author = ed25519Signer(raw(vector.secretKey));
    assert.equal(toHex(author.publicKey), vector.publicKey);
    const f: DataFields = {
      epoch: 1_700_000_000,
      seq: 7,
      floor: 5,
      flags: 0,
      fragIndex: 0,
      fragCount: 1,
      msgId: "018bcfe5687b8899aabbccddeeff0011" as MsgId,
      payload: new TextEncoder().encode("hi"),
    };
    const authorId = keyId(author.publicKey);
    const [proof] = signBatch([dataSignedBytes(authorId, f)], author.sign);
    assert.ok(proof);
    const bytes = encodeDataWith(f, proof);
    assert.equal(bytes.length, 102);
    assert.equal(toHex(bytes), WORKED_EXAMPLE);
    const p = decodeDataPacket(bytes);
    assert.equal(msgIdTime(p.msgId), 1_700_000_000_123);
    const signed = receivedSignedBytes(authorId, p.messagePart);
    assert.equal(toHex(signed), `04${authorId}000001018bcfe5687b8899aabbccddeeff001100026869`);
    // A leaf is SHA-256 over 0x00 and the signed bytes (RFC 9162), so no interior node (0x01 …) can pass for one.
    const leaf = createHash("sha256").update(Uint8Array.of(0)).update(signed).digest();
    assert.equal(toHex(leafHash(signed)), toHex(leaf));
    const verifier = ed25519Verifier(author.publicKey);
    assert.ok(verifier);
    assert.equal(verifier.verify(batchStatement(1, leafHash(signed)), p.proof.signature), true);
  });
});

/** The worked example's 102 bytes: header and stream fields, message part, proof (index 0 of 1, no path), signature. */
const WORKED_EXAMPLE = [
  "01", // type DATA
  "6553f100", // epoch 1,700,000,000
  "00000007", // seq
  "00000005", // floor
  "00", // flags
  "00", // fragIndex
  "01", // fragCount
  "018bcfe5687b8899aabbccddeeff0011", // msgId (its first 48 bits: 1,700,000,000,123 ms)
  "0002", // length
  "6869", // payload "hi"
  "00", // index
  "01", // size
  // The Ed25519 signature over batchStatement(1, leafHash(dataSignedBytes)): a batch of one, its root the leaf.
  "0bf0c5d1af1bddbc2bb4696c81502727c15f5dd811f3212cd46b9db40c992e12",
  "ec09c5f9cb73553d7c5162e577524ab202ccff01b941f2acdad03cab3eb2ca08",
].join("");

describe("wire: BATCH, a whole batch in one datagram", () => {
  const frame = (i: number, payload: Uint8Array) => ({
    flags: i % 2 === 0 ? 0 : DataFlags.Private | DataFlags.Resent,
    fragIndex: 0,
    fragCount: 1,
    msgId: `${String(i).padStart(2, "0")}${"ab".repeat(15)}` as MsgId,
    payload,
  });
  const stream = { epoch: 7, floor: 3, seq: 2 ** 32 - 2 };
  const signature = new Uint8Array(SIGNATURE_BYTES).map((_, i) => i);

  it("round-trips its frames, in order, each with its message part as a DATA would carry it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 2, maxLength: 4 }),
        fc.constantFrom(0, 1, 2 ** 32 - 1),
        (payloads, seq) => {
          const frames = payloads.map((p, i) => frame(i, p));
          const bytes = encodeBatch({ ...stream, seq }, frames, signature);
          assert.equal(bytes.length, batchBytes(payloads.map((p) => p.length)));
          const r = decode(bytes);
          assert.ok(r.ok && r.packet.type === PacketType.Batch);
          const p = r.packet as BatchPacket;
          assert.deepEqual([p.epoch, p.floor, p.seq], [stream.epoch, stream.floor, seq]);
          assert.deepEqual(Buffer.from(p.signature), Buffer.from(signature));
          p.frames.forEach((f, i) => {
            const sent = frames[i] as (typeof frames)[number];
            assert.deepEqual(
              [f.flags, f.fragIndex, f.fragCount, f.msgId, Buffer.from(f.payload)],
              [sent.flags, sent.fragIndex, sent.fragCount, sent.msgId, Buffer.from(sent.payload)],
            );
            // The same message part as this frame's DATA: one signed leaf, whichever datagram carries it.
            const data = decodeDataPacket(
              encodeDataWith({ ...stream, ...sent, seq: 0 }, fakeProof(new Uint8Array(1))),
            );
            assert.deepEqual(Buffer.from(f.messagePart), Buffer.from(data.messagePart));
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("lays out type, epoch, floor, first seq, count, the frames' message parts, then the signature", () => {
    const bytes = encodeBatch(stream, [frame(0, Uint8Array.of(1, 2)), frame(1, Uint8Array.of(3))], signature);
    assert.equal(bytes[0], 4);
    assert.deepEqual([u32At(bytes, 1), u32At(bytes, 5), u32At(bytes, 9)], [7, 3, 2 ** 32 - 2]);
    assert.equal(bytes[13], 2);
    assert.deepEqual([...bytes.subarray(14, 17)], [0, 0, 1]); // flags, fragIndex, fragCount
    assert.equal(Buffer.from(bytes.subarray(17, 33)).toString("hex"), frame(0, new Uint8Array()).msgId);
    assert.deepEqual([...bytes.subarray(33, 37)], [0, 2, 1, 2]); // length 2, the payload
    assert.equal(bytes[37], DataFlags.Private | DataFlags.Resent);
    assert.deepEqual([...bytes.subarray(bytes.length - 64)], [...signature]);
    assert.equal(bytes.length, BATCH_FIXED_BYTES + 2 * BATCH_FRAME_FIXED_BYTES + 3);
  });

  it("refuses a count under 2 or over 16, a frame cut short, bad flags or fragments, and stray bytes", () => {
    const good = encodeBatch(stream, [frame(0, Uint8Array.of(1)), frame(1, Uint8Array.of(2))], signature);
    assert.equal(reasonOf(good), "ok");
    assert.equal(reasonOf(patched(good, 13, 1)), "bad-length");
    assert.equal(reasonOf(patched(good, 13, 17)), "bad-length");
    assert.equal(reasonOf(patched(good, 13, 3)), "bad-length", "a third frame that is not there");
    assert.equal(reasonOf(resized(good, 1)), "bad-length");
    assert.equal(reasonOf(resized(good, -1)), "bad-length");
    assert.equal(reasonOf(patched(good, 14, 4)), "bad-length", "an unknown flag bit");
    assert.equal(reasonOf(patched(good, 15, 1)), "bad-fragment", "fragIndex ≥ fragCount");
    assert.equal(reasonOf(patched(good, 16, 0)), "bad-fragment", "fragCount 0");
    assert.equal(reasonOf(patched(good, 33, 0x04, 0x00)), "bad-length", "a length past the datagram");
    assert.equal(reasonOf(good.subarray(0, BATCH_FIXED_BYTES)), "too-short");
  });
});
