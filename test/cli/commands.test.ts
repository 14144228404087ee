import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COMMAND_WORDS, complete, DEFAULT_HISTORY, parseCommand } from "../../src/cli/commands.ts";
import { NO_FAULTS } from "../../src/faults/plan.ts";

describe("parseCommand", () => {
  it("treats a line without a slash as a broadcast, verbatim", () => {
    assert.deepEqual(parseCommand("hello world"), { type: "broadcast", text: "hello world" });
    assert.deepEqual(parseCommand("  indented "), { type: "broadcast", text: "  indented " });
    assert.deepEqual(parseCommand("hello\n"), { type: "broadcast", text: "hello" });
    assert.deepEqual(parseCommand("//etc/passwd is a path"), {
      type: "broadcast",
      text: "/etc/passwd is a path",
    });
  });

  it("ignores blank lines", () => {
    assert.deepEqual(parseCommand(""), { type: "empty" });
    assert.deepEqual(parseCommand("   \t"), { type: "empty" });
  });

  it("parses /b and its alias", () => {
    assert.deepEqual(parseCommand("/b hi there"), { type: "broadcast", text: "hi there" });
    assert.deepEqual(parseCommand("/broadcast   spaced  out"), { type: "broadcast", text: "spaced  out" });
    assert.deepEqual(parseCommand("/B shout"), { type: "broadcast", text: "shout" });
    assert.equal(parseCommand("/b").type, "invalid");
    assert.equal(parseCommand("/b    ").type, "invalid");
  });

  it("parses /p by name or port", () => {
    assert.deepEqual(parseCommand("/p bob hi bob"), { type: "private", peer: "bob", text: "hi bob" });
    assert.deepEqual(parseCommand("/msg 12002 hi"), { type: "private", peer: "12002", text: "hi" });
    assert.deepEqual(parseCommand("/p bob"), { type: "invalid", message: "usage: /p <name|port> <message>" });
    assert.equal(parseCommand("/p").type, "invalid");
  });

  it("parses the query and control commands", () => {
    assert.deepEqual(parseCommand("/q"), { type: "quit" });
    assert.deepEqual(parseCommand("/quit"), { type: "quit" });
    assert.deepEqual(parseCommand("/exit"), { type: "quit" });
    assert.deepEqual(parseCommand("/peers"), { type: "peers" });
    assert.deepEqual(parseCommand("/stats"), { type: "stats" });
    assert.deepEqual(parseCommand("/help"), { type: "help" });
    assert.deepEqual(parseCommand("/?"), { type: "help" });
    assert.deepEqual(parseCommand("/retry"), { type: "retry" });
    assert.deepEqual(parseCommand("/retry dave"), { type: "retry", peer: "dave" });
    assert.equal(parseCommand("/retry dave now").type, "invalid");
    assert.deepEqual(parseCommand("/verify bob"), { type: "verify", peer: "bob" });
    assert.deepEqual(parseCommand("/verify"), { type: "verify" });
    assert.deepEqual(parseCommand("/whoami"), { type: "whoami" });
    assert.deepEqual(parseCommand("/WhoAmI  "), { type: "whoami" });
    assert.deepEqual(parseCommand("/whoami bob"), { type: "invalid", message: "usage: /whoami" });
  });

  it("parses /history with a bounded count", () => {
    assert.deepEqual(parseCommand("/history"), { type: "history", limit: DEFAULT_HISTORY });
    assert.deepEqual(parseCommand("/history 5"), { type: "history", limit: 5 });
    for (const bad of ["/history 0", "/history -3", "/history many", "/history 2.5", "/history 100000"]) {
      assert.equal(parseCommand(bad).type, "invalid", bad);
    }
  });

  it("parses /fault through the fault plan's validation", () => {
    assert.deepEqual(parseCommand("/fault"), { type: "fault" });
    assert.deepEqual(parseCommand("/fault loss 0.3"), {
      type: "fault",
      change: { lossOutPpm: 300_000, lossInPpm: 300_000 },
    });
    assert.deepEqual(parseCommand("/fault loss-in 25%"), { type: "fault", change: { lossInPpm: 250_000 } });
    assert.deepEqual(parseCommand("/fault delay 40"), { type: "fault", change: { delayMs: 40 } });
    assert.deepEqual(parseCommand("/fault blackhole"), { type: "fault", change: { blackhole: true } });
    assert.deepEqual(parseCommand("/fault blackhole off"), { type: "fault", change: { blackhole: false } });
    assert.deepEqual(parseCommand("/fault off"), { type: "fault", change: { ...NO_FAULTS } });
    const bad = parseCommand("/fault loss 1.5");
    assert.equal(bad.type, "invalid");
    assert.match((bad as { message: string }).message, /loss must be a rate from 0 to 1/);
    assert.match(
      (parseCommand("/fault gremlins 1") as { message: string }).message,
      /unknown fault "gremlins"/,
    );
    assert.equal(parseCommand("/fault loss").type, "invalid");
  });

  it("names an unknown command", () => {
    assert.deepEqual(parseCommand("/frob x"), {
      type: "invalid",
      message: "unknown command /frob (see /help)",
    });
    assert.deepEqual(parseCommand("/"), { type: "invalid", message: "unknown command / (see /help)" });
  });
});

describe("complete", () => {
  const peers = ["alice", "bob", "bella"];
  const faults = ["loss", "loss-in", "blackhole", "off"];

  it("completes command words after a slash", () => {
    assert.deepEqual(complete("/pe", peers, faults), [["/peers"], "/pe"]);
    assert.deepEqual(complete("/", peers, faults)[0].length, COMMAND_WORDS.length);
    assert.deepEqual(complete("/zz", peers, faults), [[], "/zz"]);
  });

  it("completes peer names for /p, /verify and /retry, fault kinds for /fault", () => {
    assert.deepEqual(complete("/p b", peers, faults), [["bob ", "bella "], "b"]);
    assert.deepEqual(complete("/verify Al", peers, faults), [["alice "], "Al"]);
    assert.deepEqual(complete("/fault lo", peers, faults), [["loss ", "loss-in "], "lo"]);
    assert.deepEqual(complete("/stats x", peers, faults), [[], "x"]);
    assert.deepEqual(complete("/p bob hel", peers, faults), [[], "/p bob hel"]);
  });

  it("does not complete plain text", () => {
    assert.deepEqual(complete("hel", peers, faults), [[], "hel"]);
  });
});
