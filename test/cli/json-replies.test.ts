import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { kebabCode } from "../../src/cli/json-mode.ts";
import { parseInput, ReplyQueue } from "../../src/cli/json-replies.ts";

describe("--json replies", () => {
  it("are written in command order whatever order the commands complete in (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), fc.integer(), (deferred, seed) => {
        const written: number[] = [];
        const q = new ReplyQueue((_event, fields) => written.push(fields.line as number));
        const later: Array<() => void> = [];
        deferred.forEach((isDeferred, i) => {
          const slot = q.open(i + 1, undefined);
          const answer = () => q.answer(slot, "x");
          if (isDeferred) later.push(answer);
          else answer();
        });
        // Deferred completions in a shuffled order.
        let s = seed >>> 0;
        while (later.length > 0) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          (later.splice(s % later.length, 1)[0] as () => void)();
        }
        assert.deepEqual(
          written,
          deferred.map((_, i) => i + 1),
        );
      }),
    );
  });

  it("a reply waits for every earlier one; abandon answers what never completed, in order", () => {
    const out: string[] = [];
    const q = new ReplyQueue((event, fields) => out.push(`${fields.line}:${event}:${fields.tag ?? ""}`));
    const send = q.open(1, "a");
    const peers = q.open(2, undefined);
    q.answer(peers, "peers");
    assert.deepEqual(out, []);
    q.answer(send, "queued");
    assert.deepEqual(out, ["1:queued:a", "2:peers:"]);
    const lost = q.open(3, 7);
    const quit = q.open(4, undefined);
    q.abandon("closed first", quit);
    q.answer(quit, "closed");
    assert.deepEqual(out.slice(2), ["3:error:7", "4:closed:"]);
    q.answer(lost, "queued"); // too late: answered once only
    assert.equal(out.length, 4);
  });

  it("input is a command line or a JSON object with a string cmd and an optional tag", () => {
    assert.deepEqual(parseInput("hello"), { ok: true, text: "hello", tag: undefined });
    assert.deepEqual(parseInput('{"cmd":"/peers","tag":"x"}'), { ok: true, text: "/peers", tag: "x" });
    assert.deepEqual(parseInput('{"cmd":"hi","tag":3}'), { ok: true, text: "hi", tag: 3 });
    assert.equal(parseInput("{oops").ok, false);
    assert.equal(parseInput("[1]").ok, true, "only a leading { is JSON");
    assert.equal(parseInput('{"tag":"x"}').ok, false);
    assert.equal(parseInput('{"cmd":"/q","tag":{}}').ok, false);
    assert.equal(parseInput(`{"cmd":"/q","tag":"${"x".repeat(201)}"}`).ok, false);
  });

  it("error codes are kebab-case whichever layer raised them", () => {
    assert.equal(kebabCode("UNKNOWN_PEER"), "unknown-peer");
    assert.equal(kebabCode("too-large"), "too-large");
    assert.equal(kebabCode("usage"), "usage");
  });
});
