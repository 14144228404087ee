/**
 * The entry point's guess at the chat's login (src/cli/login-ahead.ts): what it finds, what it leaves alone, and
 * that whenever it finds something, commander — which parses the command line for real — agrees.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { Command } from "commander";
import fc from "fast-check";
import { addChatOptions } from "../../src/cli/chat-options.ts";
import { CHAT_VALUE_FLAGS, chatLoginFromArgv } from "../../src/cli/login-ahead.ts";

const ENV = { CHATNODE_HOME: "/home/x/.chatnode" };

function chatCommand(): Command {
  return addChatOptions(new Command("chat").exitOverride().allowExcessArguments(true)).configureOutput({
    writeErr: () => {},
    writeOut: () => {},
  });
}

describe("cli: the login started ahead", () => {
  it("knows every chat flag that takes a value, and no other", () => {
    const taking = chatCommand()
      .options.filter((o) => o.required || o.optional)
      .map((o) => o.long?.replace(/^--/, ""));
    assert.deepEqual([...taking].sort(), [...CHAT_VALUE_FLAGS].sort());
  });

  it("finds the user, password and data directory in every form commander accepts", () => {
    const want = (dir: string, user: string, password: string) => ({
      keyPath: join(resolve(dir), "keys", `${user}.key`),
      username: user,
      password,
    });
    const cases: Array<[string[], NodeJS.ProcessEnv, ReturnType<typeof want> | undefined]> = [
      [["-u", "alice", "--password", "pass1"], ENV, want("/home/x/.chatnode", "alice", "pass1")],
      [["chat", "--username=Bob", "-p", "pw", "--data-dir", "d"], ENV, want("d", "bob", "pw")],
      [
        ["--host", "0.0.0.0", "-ucarol", "--json", "--data-dir=e"],
        { CHATNODE_PASSWORD: "p3" },
        want("e", "carol", "p3"),
      ],
      [
        ["--loss", "30%", "--no-color", "-u", "dave", "-p", "x", "--blackhole"],
        ENV,
        want("/home/x/.chatnode", "dave", "x"),
      ],
      // Not a chat, or not said plainly: nothing is guessed.
      [["users", "-u", "alice", "-p", "x"], ENV, undefined],
      [["register", "--username", "alice"], ENV, undefined],
      [["-u", "alice"], ENV, undefined],
      [["--password", "x"], ENV, undefined],
      [["-u", "../etc", "-p", "x"], ENV, undefined],
      [["-u", "", "-p", "x"], ENV, undefined],
    ];
    for (const [args, env, expected] of cases)
      assert.deepEqual(chatLoginFromArgv(args, env), expected, args.join(" "));
  });

  it("property: whenever it guesses, commander parses the same user, password and data directory", () => {
    const name = fc.stringMatching(/^[A-Za-z][a-z0-9_-]{0,8}$/);
    const word = fc.stringMatching(/^[a-z0-9.%=-]{1,8}$/);
    const flag = fc.oneof(
      name.map((v) => ["-u", v]),
      name.map((v) => [`--username=${v}`]),
      name.map((v) => [`-u${v}`]),
      word.map((v) => ["--password", v]),
      word.map((v) => ["-p", v]),
      word.map((v) => ["--data-dir", v]),
      word.map((v) => ["--host", v]),
      word.map((v) => ["--loss", v]),
      fc.constantFrom(
        ["--json"],
        ["--ephemeral"],
        ["--no-color"],
        ["--blackhole"],
        ["chat"],
        ["users"],
        ["--"],
      ),
      word.map((v) => [v]),
    );
    fc.assert(
      fc.property(
        fc.array(flag, { maxLength: 8 }),
        fc.option(word, { nil: undefined }),
        (parts, envPassword) => {
          const args = parts.flat();
          const env: NodeJS.ProcessEnv =
            envPassword === undefined ? ENV : { ...ENV, CHATNODE_PASSWORD: envPassword };
          const guess = chatLoginFromArgv(args, env);
          if (!guess) return;
          const chat = chatCommand();
          try {
            chat.parse(args, { from: "user" });
          } catch {
            return; // commander refuses the line: the guess is never used
          }
          const flags = chat.opts<{ username?: string; password?: string; dataDir?: string }>();
          if (chat.args.length > 0 && chat.args[0] !== "chat") assert.fail(`guessed for ${args.join(" ")}`);
          assert.equal(guess.username, flags.username?.toLowerCase());
          assert.equal(guess.password, flags.password ?? env.CHATNODE_PASSWORD);
          const dir = flags.dataDir ?? ENV.CHATNODE_HOME;
          assert.equal(guess.keyPath, join(resolve(dir), "keys", `${guess.username}.key`));
        },
      ),
      { seed: 20261124, numRuns: 2000 },
    );
  });
});
