import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type ContactCodeFields,
  decodeContactCode,
  encodeContactCode,
  looksLikeContactCode,
  MAX_HINTS,
} from "../../src/identity/contact-code.ts";
import { crc32 } from "../../src/identity/crc32.ts";

const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,31}$/);
const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6().filter((h) => !h.includes(".")); // a dotted tail is valid, but normalising it is not our job
const hostname = fc.domain().filter((d) => !/^[0-9.]+$/.test(d));
const hint = fc.record({ host: fc.oneof(ipv4, ipv6, hostname), port: fc.integer({ min: 1, max: 65535 }) });
const fields: fc.Arbitrary<ContactCodeFields> = fc.record({
  name,
  ed25519: bytes(32),
  x25519: bytes(32),
  binding: bytes(64),
  hints: fc.array(hint, { maxLength: MAX_HINTS }),
});

const sample: ContactCodeFields = {
  name: "alice",
  ed25519: new Uint8Array(32).fill(0xa1),
  x25519: new Uint8Array(32).fill(0x2b),
  binding: new Uint8Array(64).map((_, i) => i),
  hints: [
    { host: "192.0.2.7", port: 12001 },
    { host: "2001:db8::7", port: 4000 },
  ],
};

/** Every printable ASCII character, and a few that are not ASCII at all. */
const ALPHABET = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), "é", "\u00a0", "😀"];

function refused(text: string): string {
  const decoded = decodeContactCode(text);
  assert.equal(decoded.ok, false, `accepted: ${text}`);
  return decoded.ok ? "" : decoded.reason;
}

/** The code with the checksum recomputed, to reach the checks that come after it. */
function withGoodChecksum(body: string): string {
  return `${body}/${crc32(Buffer.from(body)).toString(16).padStart(8, "0")}`;
}

describe("contact codes", () => {
  it("CRC-32 is the IEEE one (check value of '123456789')", () => {
    assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
  });

  it("round trip: decode(encode(x)) is x, and the code is one line of URI characters", () => {
    fc.assert(
      fc.property(fields, (f) => {
        const code = encodeContactCode(f);
        assert.match(code, /^chatnode:1\/[A-Za-z0-9\-._~:@,%]+\/[A-Za-z0-9_-]{171}\/[0-9a-f]{8}$/);
        assert.ok(looksLikeContactCode(code));
        const decoded = decodeContactCode(`  ${code}\n`);
        assert.ok(decoded.ok, decoded.ok ? "" : decoded.reason);
        assert.deepEqual(decoded.fields, { ...f, hints: f.hints.map((h) => ({ ...h })) });
      }),
      { numRuns: 300 },
    );
  });

  it("the sample code reads as documented in docs/PROTOCOL.md", () => {
    const code = encodeContactCode(sample);
    assert.ok(code.startsWith("chatnode:1/alice@192.0.2.7:12001,%5B2001:db8::7%5D:4000/oaGhoaGh"), code);
    assert.ok(code.endsWith("Pj8/94d905f3"), code);
    assert.equal(code.length, 9 + 2 + 44 + 1 + 171 + 1 + 8);
  });

  it("every single-character change is refused with a reason (only the scheme's case may change)", () => {
    for (const code of [encodeContactCode(sample), encodeContactCode({ ...sample, hints: [] })]) {
      for (let i = 0; i < code.length; i++) {
        for (const char of ALPHABET) {
          if (char === code[i]) continue;
          const changed = code.slice(0, i) + char + code.slice(i + 1);
          const decoded = decodeContactCode(changed);
          if (decoded.ok) {
            // RFC 3986: schemes are case-insensitive; such a code stands for the same contact.
            assert.ok(i < "chatnode".length && char === code[i]?.toUpperCase(), `accepted: ${changed}`);
            assert.deepEqual(decoded, decodeContactCode(code));
          } else {
            assert.ok(decoded.reason.length > 10 && !decoded.reason.includes("\n"), decoded.reason);
          }
        }
      }
    }
  });

  it("random single-character changes of random codes are refused", () => {
    fc.assert(
      fc.property(fields, fc.nat(), fc.constantFrom(...ALPHABET), (f, at, char) => {
        const code = encodeContactCode(f);
        const i = at % code.length;
        if (code[i] === char || (i < 8 && char === code[i]?.toUpperCase())) return;
        refused(code.slice(0, i) + char + code.slice(i + 1));
      }),
      { numRuns: 2000 },
    );
  });

  it("every truncation is refused, most as cut short", () => {
    const code = encodeContactCode(sample);
    for (let length = 0; length < code.length; length++) {
      const reason = refused(code.slice(0, length));
      if (length > "chatnode:1/".length) assert.match(reason, /cut short|checksum/, code.slice(0, length));
    }
  });

  it("never throws, whatever the input", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: "binary" }),
          fc.string().map((s) => `chatnode:${s}`),
        ),
        (s) => {
          const decoded = decodeContactCode(s);
          if (decoded.ok) assert.equal(encodeContactCode(decoded.fields), s.trim());
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("says why: empty, not a code, a newer version, a stray character, too long", () => {
    assert.match(refused(""), /empty/);
    assert.match(refused("{}"), /does not start with chatnode:/);
    const code = encodeContactCode(sample);
    assert.match(
      refused(code.replace("chatnode:1/", "chatnode:2/")),
      /version 2 contact code; this chatnode reads version 1/,
    );
    assert.match(refused(code.replace("alice", "al ice")), /no " " \(at character 14\)/);
    assert.match(refused(`${code}/abc`), /"\/" too many/);
    assert.match(refused(code + "x".repeat(1000)), /too long/);
  });

  it("a code whose checksum matches is still checked: name, hints, keys, canonical spelling", () => {
    const keys = encodeContactCode(sample).split("/")[2] as string;
    const cases: [string, RegExp][] = [
      [`chatnode:1/Alice/${keys}`, /not a valid user name/],
      [`chatnode:1/al%2/${keys}`, /percent-encoded/],
      [`chatnode:1/alice@192.0.2.7/${keys}`, /HOST:PORT/],
      [`chatnode:1/alice@192.0.2.7:0/${keys}`, /port/],
      [`chatnode:1/alice@%5B192.0.2.7%5D:1/${keys}`, /only an IPv6 address goes in brackets/],
      [`chatnode:1/alice@${"10.0.0.1:1,".repeat(5).slice(0, -1)}/${keys}`, /at most 4 address hints/],
      [`chatnode:1/alice/${keys.slice(1)}`, /171 base64url/],
      [`chatnode:1/alice@192.0.2.7:01200/${keys}`, /canonical/],
      [`chatnode:1/alice@EXAMPLE.org:1/${keys}`, /canonical/],
      [`chatnode:1/%61lice/${keys}`, /canonical/],
    ];
    for (const [body, reason] of cases) assert.match(refused(withGoodChecksum(body)), reason, body);
    assert.ok(decodeContactCode(withGoodChecksum(`chatnode:1/alice/${keys}`)).ok, "no hint is a valid code");
  });
});
