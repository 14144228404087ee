import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Command } from "commander";
import { addUserCommands } from "../../src/cli/users.ts";
import { exportContactCode } from "../../src/identity/contact.ts";
import { openDirectory } from "../../src/identity/directory.ts";
import { registerUser } from "../../src/identity/register.ts";
import { TEST_SCRYPT_N, tempDataDir } from "./temp.ts";

const HARNESS = join(import.meta.dirname, "cli-harness.ts");

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function chatnode(args: readonly string[], input?: string, env: NodeJS.ProcessEnv = {}): Run {
  const result = spawnSync(process.execPath, ["--import", "tsx", HARNESS, ...args], {
    input: input ?? "",
    encoding: "utf8",
    env: { ...process.env, CHATNODE_HOME: "", ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Exit code 2 and exactly one line on stderr, with no stack trace. */
function assertOneLineError(run: Run, pattern: RegExp): void {
  assert.equal(run.status, 2, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);
  assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
  assert.match(run.stderr, pattern);
}

describe("cli: user commands", () => {
  it("register (flags), users, and a second register of the same name failing with one line, exit 2", () => {
    const dir = tempDataDir("cli-register");
    const ok = chatnode([
      "register",
      "--username",
      "dave",
      "--password",
      "pw",
      "--port",
      "12010",
      "--data-dir",
      dir,
    ]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /registered dave at 127\.0\.0\.1:12010/);
    assert.match(ok.stdout, /fingerprint ([0-9a-f]{4} ){15}[0-9a-f]{4}/);
    const list = chatnode(["users", "--data-dir", dir]);
    assert.equal(list.status, 0);
    assert.match(list.stdout, /dave\s+127\.0\.0\.1:12010\s+([0-9a-f]{4} ){3}[0-9a-f]{4}\s+local/);
    const again = chatnode([
      "register",
      "--username",
      "dave",
      "--password",
      "pw",
      "--port",
      "12010",
      "--data-dir",
      dir,
    ]);
    assertOneLineError(again, /^chatnode: dave already exists .*--force/);
    assertOneLineError(
      chatnode(["register", "--username", "eve", "--password", "x", "--port", "0", "--data-dir", dir]),
      /port/,
    );
  });

  it("register asks for missing values on stdin (not a terminal) and checks the confirmation", () => {
    const dir = tempDataDir("cli-prompt");
    const ok = chatnode(["register", "--data-dir", dir], "erin\n\n::1\nsecret pw\nsecret pw\n");
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /registered erin at \[::1\]:12000/);
    const mismatch = chatnode(["register", "--data-dir", dir], "frank\n12001\n\none\ntwo\n");
    assertOneLineError(mismatch, /passwords do not match/);
    const eof = chatnode(["register", "--data-dir", dir], "grace\n");
    assertOneLineError(eof, /no input left/);
    assert.equal(existsSync(join(dir, "keys", "frank.key")), false);
  });

  it("bulk-register creates the 10 demo users, is idempotent, and whoami unlocks one", () => {
    const dir = tempDataDir("cli-bulk");
    const first = chatnode(["bulk-register", "--base-port", "14000", "--data-dir", dir]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /created\s+zoe\s+127\.0\.0\.1:14000/);
    assert.match(first.stdout, /created\s+ivan\s+127\.0\.0\.1:14009/);
    assert.match(first.stdout, /10 created, 0 already there/);
    const second = chatnode(["bulk-register", "--base-port", "14000", "--data-dir", dir]);
    assert.match(second.stdout, /0 created, 10 already there/);
    const me = chatnode(["whoami", "--username", "alice", "--password", "pass1", "--data-dir", dir]);
    assert.equal(me.status, 0, me.stderr);
    assert.match(me.stdout, /^alice [0-9a-f]{16}\n$/);
  });

  it("an unknown user is told to run bulk-register or register; CHATNODE_HOME selects the directory", () => {
    const dir = tempDataDir("cli-unknown");
    const run = chatnode(["whoami", "--username", "alice", "--password", "pass1"], "", {
      CHATNODE_HOME: dir,
    });
    assertOneLineError(run, /unknown user alice in .*chatnode bulk-register.*chatnode register/);
    assert.ok(run.stderr.includes(dir));
  });

  it("contact export / import between two directories, with pinning", async () => {
    const home = tempDataDir("cli-contact-a");
    const other = tempDataDir("cli-contact-b");
    const impostorHome = tempDataDir("cli-contact-c");
    const register = { username: "alice", password: "pw", port: 12001, scryptN: TEST_SCRYPT_N };
    await registerUser({ ...register, dataDir: home });
    await registerUser({ ...register, dataDir: impostorHome });
    const code = chatnode(["contact", "export", "alice", "--data-dir", home]);
    assert.equal(code.status, 0, code.stderr);
    assert.match(code.stdout, /^chatnode:1\/alice@127\.0\.0\.1:12001\/[A-Za-z0-9_-]{171}\/[0-9a-f]{8}\n$/);
    const imported = chatnode(["contact", "import", code.stdout.trim(), "--data-dir", other]);
    assert.equal(imported.status, 0, imported.stderr);
    assert.match(imported.stdout, /added alice at 127\.0\.0\.1:12001/);
    assert.match(imported.stdout, /loopback address/);
    const users = chatnode(["users", "--data-dir", other]);
    assert.match(users.stdout, /alice\s+127\.0\.0\.1:12001\s+\S+ \S+ \S+ \S+\s+contact/);
    const pinned = openDirectory(home).getUser("alice")?.fingerprint ?? "";
    assert.ok(imported.stdout.includes(`fingerprint ${pinned}`));
    // The old JSON card: still exported with --card, still imported; a file holding a code imports too.
    const card = chatnode(["contact", "export", "alice", "--card", "--data-dir", home]);
    const cardPath = join(other, "..", "alice.json");
    writeFileSync(cardPath, card.stdout);
    assert.equal((JSON.parse(card.stdout) as { fingerprint: string }).fingerprint, pinned);
    assert.match(
      chatnode(["contact", "import", cardPath, "--data-dir", other]).stdout,
      /already known: alice/,
    );
    const codePath = join(other, "..", "alice.code");
    writeFileSync(codePath, code.stdout);
    assert.match(
      chatnode(["contact", "import", codePath, "--data-dir", other]).stdout,
      /already known: alice/,
    );
    // --address sets the hint; importing it only moves alice's address, the pin stays.
    const moved = chatnode(["contact", "export", "alice", "--address", "192.0.2.7:4000", "--data-dir", home]);
    assert.match(moved.stdout, /^chatnode:1\/alice@192\.0\.2\.7:4000\//);
    const updated = chatnode(["contact", "import", "-", "--data-dir", other], moved.stdout);
    assert.match(updated.stdout, /updated address of alice at 192\.0\.2\.7:4000/);
    assert.doesNotMatch(updated.stdout, /loopback/);
    const impostorCode = exportContactCode(openDirectory(impostorHome), "alice");
    const offered = openDirectory(impostorHome).getUser("alice")?.fingerprint ?? "";
    const refused = chatnode(["contact", "import", impostorCode.trim(), "--data-dir", other]);
    assertOneLineError(refused, /different keys/);
    assert.ok(refused.stderr.includes(pinned) && refused.stderr.includes(offered));
    const forced = chatnode(["contact", "import", "-", "--force", "--data-dir", other], impostorCode);
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout, /replaced keys of alice/);
    assertOneLineError(
      chatnode(["contact", "import", join(other, "missing.json"), "--data-dir", other]),
      /cannot read/,
    );
  });

  it("a bad code is one line and exit 2: cut short, mistyped, a bad --address", async () => {
    const home = tempDataDir("cli-contact-bad");
    await registerUser({
      dataDir: home,
      username: "bob",
      password: "pw",
      port: 12002,
      scryptN: TEST_SCRYPT_N,
    });
    const code = chatnode(["contact", "export", "bob", "--data-dir", home]).stdout.trim();
    const other = ["--data-dir", tempDataDir("cli-contact-bad-b")];
    assertOneLineError(chatnode(["contact", "import", code.slice(0, 120), ...other]), /cut short/);
    const typo = code.replace(/\/(.)/, (_, c: string) => `/${c === "b" ? "c" : "b"}`);
    assertOneLineError(chatnode(["contact", "import", typo, ...other]), /checksum does not match/);
    assertOneLineError(chatnode(["contact", "import", "-", ...other], "hello"), /neither a contact code/);
    assertOneLineError(
      chatnode(["contact", "export", "bob", "--address", "192.0.2.7", "--data-dir", home]),
      /HOST:PORT/,
    );
    assertOneLineError(
      chatnode(["contact", "export", "bob", "--card", "--address", "192.0.2.7:1", "--data-dir", home]),
      /--address is for contact codes/,
    );
  });

  it("usage errors exit 2", () => {
    assertOneLineError(chatnode(["users", "--bogus"]), /unknown option/);
  });

  it("every command has a description and help with examples and --data-dir", () => {
    const program = new Command("chatnode");
    addUserCommands(program);
    const contact = program.commands.find((c) => c.name() === "contact");
    const commands = [...program.commands, ...(contact?.commands ?? [])].filter(
      (c) => c.name() !== "contact",
    );
    assert.deepEqual(commands.map((c) => c.name()).sort(), [
      "bulk-register",
      "export",
      "import",
      "register",
      "users",
    ]);
    for (const command of commands) {
      let help = "";
      command.configureOutput({ writeOut: (text) => (help += text) });
      command.outputHelp();
      assert.ok(command.description().length > 10, command.name());
      assert.match(help, /--data-dir/, command.name());
      assert.match(help, /Examples:\n {2}\$ chatnode /, command.name());
    }
  });

  it("on a terminal, the password is not echoed", {
    skip: !existsSync("/usr/bin/script") && "needs script(1)",
  }, async () => {
    const dir = tempDataDir("cli-tty");
    const command = [process.execPath, "--import", "tsx", HARNESS, "register", "--data-dir", dir].join(" ");
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      env: { ...process.env, CHATNODE_HOME: "" },
    });
    // Listened for from the start: the child may exit while waitFor sleeps between two looks at the output.
    const closed = new Promise((resolve) => child.once("close", resolve));
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const waitFor = async (text: string) => {
      for (let i = 0; i < 200 && !output.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(output.includes(text), `never saw ${text} in ${output}`);
    };
    const answers: [string, string][] = [
      ["Username:", "heidi"],
      ["Port [", ""],
      ["Host [", ""],
      ["Password:", "hunter2-secret"],
      ["Confirm password:", "hunter2-secret"],
    ];
    for (const [prompt, answer] of answers) {
      await waitFor(prompt);
      child.stdin.write(`${answer}\r`);
    }
    await waitFor("fingerprint");
    child.stdin.end();
    await closed;
    assert.match(output, /registered heidi/);
    assert.ok(!output.includes("hunter2-secret"), output);
  });
});
