import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { stripVTControlCharacters, styleText } from "node:util";
import {
  faultsFromFlags,
  parseHostFlag,
  parsePortFlag,
  resolveChatOptions,
} from "../../src/cli/chat-options.ts";
import { RateLimiter } from "../../src/cli/rate-limiter.ts";
import { createRenderer } from "../../src/cli/render.ts";
import { NAME_PALETTE, nameColorIndex } from "../../src/cli/render-style.ts";
import {
  abbreviate,
  describeFaults,
  formatAgo,
  formatTime,
  quote,
  sanitize,
} from "../../src/cli/text-format.ts";
import { NO_FAULTS } from "../../src/faults/plan.ts";
import type { PeerView } from "../../src/node/types.ts";

/** Control Sequence Introducer: every colour code starts with it. */
const CSI = "\u001b[";
const at = (h: number, m: number) => new Date(2024, 0, 15, h, m, 30).getTime();

describe("renderer", () => {
  const plain = createRenderer({ color: false, self: "alice" });
  const color = createRenderer({ color: true, self: "alice" });

  it("never writes an escape code with colour off", () => {
    const outputs = [
      plain.incoming({ from: "bob", kind: "broadcast", text: "hi", sentAt: at(9, 5), receivedAt: at(9, 5) }),
      plain.incoming({ from: "bob", kind: "private", text: "hi", sentAt: at(9, 5), receivedAt: at(9, 5) }),
      plain.outgoing(
        { kind: "broadcast", to: ["bob", "carol"], text: "yo", sentAt: at(9, 5) },
        { kind: "broadcast", total: 2, delivered: 1, failed: 0, waiting: [] },
      ),
      plain.failure("dave", "recipient could not decrypt it"),
      plain.waiting("dave", "no answer after 30 tries", 3),
      plain.notice("bob is online"),
      plain.warning("careful"),
      plain.error("no"),
      plain.rejected("bad-signature", "bob", 3),
      plain.help(),
      plain.faults({ ...NO_FAULTS, lossInPpm: 200_000 }),
      plain.prompt(),
    ];
    for (const out of outputs) assert.ok(!out.includes(CSI), out);
  });

  it("formats messages irssi-style: time, <name> for broadcasts, [from → to] for private ones", () => {
    assert.equal(
      plain.incoming({
        from: "bob",
        kind: "broadcast",
        text: "hello",
        sentAt: at(9, 5),
        receivedAt: at(9, 5),
      }),
      "09:05 <bob> hello",
    );
    assert.equal(
      plain.incoming({
        from: "bob",
        kind: "private",
        text: "psst",
        sentAt: at(13, 7),
        receivedAt: at(13, 7),
      }),
      "13:07 [bob → you] psst",
    );
    assert.equal(
      plain.outgoing(
        { kind: "private", to: ["bob"], text: "psst", sentAt: at(13, 7) },
        { kind: "private", total: 1, delivered: 0, failed: 0, waiting: [] },
      ),
      "13:07 [you → bob] psst  …",
    );
    assert.equal(plain.prompt(), "[alice] ");
  });

  it("says when a message arrives long after it was written", () => {
    const out = plain.incoming({
      from: "bob",
      kind: "broadcast",
      text: "late",
      sentAt: at(8, 0),
      receivedAt: at(9, 0),
    });
    assert.equal(out, "09:00 <bob> late (sent 08:00)");
  });

  it("indents continuation lines of a multi-line message under its text", () => {
    const out = plain.incoming({
      from: "bob",
      kind: "broadcast",
      text: "one\ntwo",
      sentAt: at(9, 5),
      receivedAt: at(9, 5),
    });
    assert.equal(out, "09:05 <bob> one\n            two");
  });

  it("shows receipts as delivered/total, who the message waits for, and failures", () => {
    const view = { kind: "broadcast" as const, to: ["b", "c", "d"], text: "x", sentAt: at(10, 0) };
    assert.match(
      plain.outgoing(view, { kind: "broadcast", total: 9, delivered: 3, failed: 0, waiting: [] }),
      /✓ 3\/9$/,
    );
    assert.match(
      plain.outgoing(view, { kind: "broadcast", total: 9, delivered: 7, failed: 2, waiting: [] }),
      /✓ 7\/9 ✗ 2$/,
    );
    assert.match(
      plain.outgoing(view, { kind: "private", total: 1, delivered: 1, failed: 0, waiting: [] }),
      / {2}✓$/,
    );
    assert.match(
      plain.outgoing(view, { kind: "private", total: 1, delivered: 0, failed: 1, waiting: [] }),
      / {2}✗$/,
    );
    assert.equal(
      plain.failure("dave", "recipient could not decrypt it"),
      "✗ dave: recipient could not decrypt it",
    );
    const waiting = ["dave", "erin", "frank", "gina", "heidi"];
    assert.match(
      plain.outgoing(view, { kind: "broadcast", total: 9, delivered: 2, failed: 0, waiting }),
      /✓ 2\/9 ⋯ waiting for dave, erin, frank and 2 more$/,
    );
    assert.match(
      plain.outgoing(view, { kind: "private", total: 1, delivered: 0, failed: 0, waiting: ["bob"] }),
      / {2}⋯ waiting for bob$/,
    );
    assert.equal(
      plain.waiting("dave", "no answer after 30 tries", 17),
      "⋯ 17 messages wait for dave (no answer after 30 tries); sent when dave is back",
    );
    assert.equal(
      plain.waiting("dave", "dave quit", 1, "hi"),
      '⋯ "hi" waits for dave (dave quit); sent when dave is back',
    );
    assert.equal(plain.lateDelivery("dave", 17, "x", false), "✓ dave got 17 messages that had waited");
    assert.equal(plain.lateDelivery("dave", 1, "x", false), '✓ dave got "x" that had waited');
    assert.equal(
      plain.rejected("unknown-sender", "127.0.0.2:12100", 24),
      "⚠ unknown sender 127.0.0.2:12100: import their contact (chatnode contact import <their code>) (×24)",
    );
    assert.equal(
      plain.receiptLine(view, { kind: "broadcast", total: 3, delivered: 3, failed: 0, waiting: [] }),
      '✓ 3/3 to everyone: "x"',
    );
  });

  it("colours the same name the same way, and own messages distinctly", () => {
    assert.equal(nameColorIndex("bob"), nameColorIndex("bob"));
    assert.ok(nameColorIndex("bob") < NAME_PALETTE.length);
    const a = color.incoming({
      from: "bob",
      kind: "broadcast",
      text: "x",
      sentAt: at(9, 0),
      receivedAt: at(9, 0),
    });
    const b = color.incoming({
      from: "bob",
      kind: "broadcast",
      text: "y",
      sentAt: at(9, 0),
      receivedAt: at(9, 0),
    });
    assert.ok(a.includes(CSI));
    const bob = styleText(NAME_PALETTE[nameColorIndex("bob")] ?? "bold", "bob", { validateStream: false });
    assert.ok(a.includes(`<${bob}>`) && b.includes(`<${bob}>`), "bob in his palette colour, both times");
    assert.equal(stripVTControlCharacters(a), "09:00 <bob> x");
    assert.ok(color.warning("w").startsWith(`${CSI}33m`), "warnings are yellow");
    assert.ok(color.error("e").startsWith(`${CSI}31m`), "errors are red");
    const own = color.outgoing(
      { kind: "broadcast", to: ["bob"], text: "mine", sentAt: at(9, 0) },
      { kind: "broadcast", total: 1, delivered: 1, failed: 0, waiting: [] },
    );
    assert.ok(own.includes(`<${CSI}1malice`), "own name in bold");
    const priv = color.incoming({
      from: "bob",
      kind: "private",
      text: "x",
      sentAt: at(9, 0),
      receivedAt: at(9, 0),
    });
    assert.ok(priv.includes(`${CSI}35m[`), "private messages are framed in magenta");
  });

  it("neutralises escape sequences and bidi controls in text from the network", () => {
    const hostile = "hi\u001b[2J\u001b]0;pwned\u0007\u202eevil\r\u0085";
    const out = plain.incoming({
      from: "bob",
      kind: "broadcast",
      text: hostile,
      sentAt: at(9, 0),
      receivedAt: at(9, 0),
    });
    const unsafe = [...out].filter((ch) => {
      const cp = ch.codePointAt(0) as number;
      return (cp < 0x20 && ch !== "\n") || (cp >= 0x7f && cp <= 0x9f) || cp === 0x202e;
    });
    assert.deepEqual(unsafe, []);
    assert.equal(sanitize("a\u001b[31mb"), "a^[[31mb");
    assert.equal(sanitize("tab\there"), "tab    here");
    assert.equal(sanitize("line\r\n"), "line\n");
  });

  it("lists peers with status, last seen, round-trip time and short fingerprint", () => {
    const now = at(12, 0);
    const peers: PeerView[] = [
      {
        id: "00112233445566aa" as PeerView["id"],
        name: "bob",
        address: "127.0.0.1:12002",
        online: true,
        lastSeen: now - 3000,
        rttMs: 1.6,
        inFlight: 0,
        queued: 0,
        parked: 0,
        fingerprint: "0011 2233 4455 66aa 7788 99aa bbcc ddee",
      },
      {
        id: "ffeeddccbbaa9988" as PeerView["id"],
        name: "dave",
        address: "127.0.0.1:12004",
        online: false,
        lastSeen: undefined,
        rttMs: undefined,
        inFlight: 1,
        queued: 2,
        parked: 0,
        fingerprint: undefined,
      },
    ];
    const out = plain.peers(peers, now).split("\n");
    assert.match(out[0] as string, /^name\s+status\s+last seen\s+rtt\s+fingerprint\s+address$/);
    assert.match(
      out[1] as string,
      /^bob\s+online\s+3s ago\s+2 ms\s+0011 2233 4455 66aa\s+127\.0\.0\.1:12002$/,
    );
    assert.match(
      out[2] as string,
      /^dave\s+offline\s+never\s+-\s+ffeeddccbbaa9988\s+127\.0\.0\.1:12004\s+3 pending$/,
    );
  });
});

describe("formatting helpers", () => {
  it("formats HH:MM and ages", () => {
    assert.equal(formatTime(at(0, 0)), "00:00");
    assert.equal(formatTime(at(23, 59)), "23:59");
    assert.equal(formatAgo(undefined, 0), "never");
    assert.equal(formatAgo(1000, 1500), "just now");
    assert.equal(formatAgo(0, 45_000), "45s ago");
    assert.equal(formatAgo(0, 5 * 60_000), "5m ago");
    assert.equal(formatAgo(0, 3 * 3_600_000), "3h ago");
  });

  it("quotes the start of a message", () => {
    assert.equal(quote("short"), '"short"');
    assert.equal(quote("x".repeat(40)), `"${"x".repeat(40)}"`);
    assert.equal(quote("x".repeat(41)), `"${"x".repeat(39)}…"`);
    assert.equal(quote("first\nsecond"), '"first…"');
  });

  it("describes faults", () => {
    assert.equal(describeFaults(NO_FAULTS), "none");
    assert.equal(
      describeFaults({ ...NO_FAULTS, lossInPpm: 300_000, lossOutPpm: 300_000, delayMs: 20 }),
      "loss 30%, delay 20 ms",
    );
    assert.equal(
      describeFaults({ ...NO_FAULTS, lossInPpm: 100_000, blackhole: true }),
      "blackhole on, loss-in 10%",
    );
  });
});

describe("RateLimiter", () => {
  it("shows the first occurrence at once and the rest of the second as one counted line", async () => {
    let now = 0;
    const shown: string[] = [];
    const limiter = new RateLimiter(40, () => now);
    limiter.hit("bad-signature", (n) => shown.push(`sig ${n}`));
    limiter.hit("bad-signature", (n) => shown.push(`sig ${n}`));
    limiter.hit("bad-signature", (n) => shown.push(`sig ${n}`));
    limiter.hit("bad-mac", (n) => shown.push(`mac ${n}`));
    assert.deepEqual(shown, ["sig 1", "mac 1"]);
    now = 40;
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(shown, ["sig 1", "mac 1", "sig 2"]);
    now = 200;
    limiter.hit("bad-signature", (n) => shown.push(`sig ${n}`));
    assert.deepEqual(shown.at(-1), "sig 1");
    limiter.close();
  });
});

describe("/whoami", () => {
  it("prints the code alone on its line, uncoloured even in colour, then the fingerprint", () => {
    const code = "chatnode:1/alice@127.0.0.1:12001/abc/0123abcd";
    for (const color of [false, true]) {
      const text = createRenderer({ color, self: "alice" }).whoami("alice", code, "63f0 7569");
      const lines = text.split("\n");
      assert.equal(lines[1], code);
      assert.match(
        stripVTControlCharacters(lines[0] ?? ""),
        /alice's contact code .*chatnode contact import <code>/,
      );
      assert.equal(stripVTControlCharacters(lines[2] ?? ""), "fingerprint 63f0 7569");
    }
    const none = createRenderer({ color: false, self: "alice" }).whoami("alice", undefined, undefined);
    assert.match(none, /cannot be read/);
  });
});

describe("chat flags", () => {
  it("shortens a long message in the replay at start to its first lines, saying how much is left out", () => {
    assert.equal(abbreviate("short"), "short");
    assert.equal(abbreviate("a\nb\nc"), "a\nb\nc");
    assert.equal(abbreviate("a\nb\nc\nd"), "a\nb\nc… (2 more characters; /history shows it all)");
    const huge = "x".repeat(61_440);
    assert.equal(abbreviate(huge), `${"x".repeat(300)}… (61,140 more characters; /history shows it all)`);
    const entry = {
      direction: "in" as const,
      from: "bob",
      kind: "broadcast" as const,
      text: huge,
      sentAt: 0,
      receivedAt: 0,
    };
    const plain = createRenderer({ color: false, self: "alice" });
    assert.ok(plain.historyEntry(entry, true).length < 400);
    assert.ok(plain.historyEntry(entry).includes(huge), "/history shows it in full");
  });

  it("validates ports and hosts", () => {
    assert.equal(parsePortFlag("0"), 0);
    assert.equal(parsePortFlag("65535"), 65535);
    for (const bad of ["65536", "-1", "12.5", "abc", ""]) assert.throws(() => parsePortFlag(bad), bad);
    assert.equal(parseHostFlag("0.0.0.0"), "0.0.0.0");
    assert.equal(parseHostFlag("[::1]"), "::1");
    assert.throws(() => parseHostFlag("localhost"));
  });

  it("merges fault flags, --loss first", () => {
    assert.deepEqual(
      faultsFromFlags({
        loss: { lossInPpm: 500_000, lossOutPpm: 500_000 },
        lossOut: { lossOutPpm: 100_000 },
        blackhole: true,
      }),
      { lossInPpm: 500_000, lossOutPpm: 100_000, blackhole: true },
    );
    assert.deepEqual(faultsFromFlags({}), {});
  });

  it("takes the password from the flag, then CHATNODE_PASSWORD; without a terminal, a missing one is an error", async () => {
    const io = (env: NodeJS.ProcessEnv) => ({
      env,
      stdin: { isTTY: false } as NodeJS.ReadStream,
      stderr: process.stderr,
    });
    const fromFlag = await resolveChatOptions(
      { username: "alice", password: "p1" },
      io({ CHATNODE_PASSWORD: "env" }),
    );
    assert.equal(fromFlag.password, "p1");
    const fromEnv = await resolveChatOptions(
      { username: "alice", json: true },
      io({ CHATNODE_PASSWORD: "env" }),
    );
    assert.equal(fromEnv.password, "env");
    assert.equal(fromEnv.json, true);
    assert.equal(fromEnv.color, true);
    await assert.rejects(resolveChatOptions({ username: "alice" }, io({})), /no password for alice/);
    await assert.rejects(resolveChatOptions({ password: "x" }, io({})), /--username is required/);
  });
});
