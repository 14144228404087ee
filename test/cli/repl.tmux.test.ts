/**
 * The interactive client in real pseudo-terminals: three users in three tmux windows (a private tmux server,
 * killed afterwards). Keys are typed with send-keys; what each screen shows is read with capture-pane.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CLI_COMMAND, REPO, registerUsers, STARTUP_MS, type TestDirectory, USERS } from "./cli-process.ts";

const TMUX = "tmux";
const tmuxMissing = spawnSync(TMUX, ["-V"], { stdio: "ignore" }).status !== 0;
/** A private tmux server: its socket lives in a directory of our own (made in `before`, removed in `after`). */
let socketDir: string | undefined;
const SESSION = "chat";
const WINDOWS = { alice: 0, bob: 1, carol: 2 } as const;
type Name = keyof typeof WINDOWS;

function tmux(...args: string[]): string {
  if (!socketDir) throw new Error("no tmux server yet");
  const socket = join(socketDir, "tmux.sock");
  return execFileSync(TMUX, ["-S", socket, "-f", "/dev/null", ...args], { encoding: "utf8", timeout: 5000 });
}

function target(name: Name): string {
  return `${SESSION}:${WINDOWS[name]}`;
}

/** The visible screen, wrapped lines joined, trailing blank lines removed. */
function screen(name: Name): string {
  return tmux("capture-pane", "-p", "-J", "-t", target(name)).replace(/\s+$/, "");
}

function type(name: Name, text: string): void {
  tmux("send-keys", "-t", target(name), "-l", text);
}

function key(name: Name, ...keys: string[]): void {
  tmux("send-keys", "-t", target(name), ...keys);
}

async function waitScreen(name: Name, predicate: (s: string) => boolean, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = screen(name);
    if (predicate(s)) return s;
    if (performance.now() > deadline)
      throw new Error(`timed out waiting for ${what} on ${name}'s screen:\n${s}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * How a client ended: the pane's shell writes "<exit status> <wall-clock ms>" to a file the moment the client
 * exits. (tmux itself can take seconds to notice a dead pane on a busy machine; the shell's wait does not.)
 */
function exitOf(name: Name): { status: number; at: number } | undefined {
  const file = join(dir?.dataDir ?? "", `${name}.exit`);
  if (!existsSync(file)) return undefined;
  const [status, at] = readFileSync(file, "utf8").trim().split(" ");
  if (at === undefined) return undefined; // still being written
  return { status: Number(status), at: Number(at) };
}

let dir: TestDirectory | undefined;
let serverStarted = false;

function shellCommand(name: Name): string {
  const user = USERS.find((u) => u.name === name);
  const data = JSON.stringify(dir?.dataDir ?? "");
  // A clean environment: colour on (it is a terminal) whatever NO_COLOR the caller has; no inherited password.
  const exitFile = JSON.stringify(join(dir?.dataDir ?? "", `${name}.exit`));
  return (
    `cd ${JSON.stringify(REPO)} && env -u NO_COLOR -u CHATNODE_PASSWORD -u CHATNODE_HOME ${CLI_COMMAND} ` +
    `--username ${name} --password ${user?.password} --data-dir ${data} --ephemeral; ` +
    `echo "$? $(date +%s%3N)" > ${exitFile}.tmp && mv ${exitFile}.tmp ${exitFile}`
  );
}

describe("interactive client in a terminal (tmux)", {
  skip: tmuxMissing ? "tmux is not installed" : false,
  timeout: 240_000,
}, () => {
  before(async () => {
    dir = await registerUsers();
    socketDir = mkdtempSync(join(tmpdir(), "chatnode-tmux-"));
    // A placeholder first, then remain-on-exit: the server stays up (for capture-pane) when clients exit.
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", "sleep 600");
    serverStarted = true;
    tmux("set-option", "-g", "remain-on-exit", "on");
    tmux("respawn-window", "-k", "-t", target("alice"), shellCommand("alice"));
    tmux("new-window", "-t", target("bob"), shellCommand("bob"));
    tmux("new-window", "-t", target("carol"), shellCommand("carol"));
  });

  after(() => {
    if (serverStarted) {
      try {
        tmux("kill-server");
      } catch {
        // already gone
      }
    }
    if (dir) rmSync(dir.dataDir, { recursive: true, force: true });
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  });

  it("starts three clients, each showing its banner and prompt", {
    timeout: STARTUP_MS + 5000,
  }, async (t) => {
    const t0 = performance.now();
    for (const name of Object.keys(WINDOWS) as Name[]) {
      const s = await waitScreen(
        name,
        (x) => x.includes("listening on") && x.includes(`[${name}]`),
        STARTUP_MS,
        "the banner",
      );
      assert.match(
        s,
        new RegExp(
          `${name} \\(fingerprint [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4}\\) listening on 127\\.0\\.0\\.1:${dir?.ports[name]}`,
        ),
      );
    }
    t.diagnostic(`three interactive clients up in ${Math.round(performance.now() - t0)} ms`);
  });

  it("shows a broadcast on every screen and a private message only on its recipient's, with receipts", {
    timeout: 15_000,
  }, async () => {
    // Once alice's node has a session with both and has heard them: a presence line printed after the message
    // would keep its receipt from counting up in place.
    await waitScreen(
      "alice",
      (s) => s.includes("bob is online") && s.includes("carol is online"),
      5000,
      "bob and carol online",
    );
    type("alice", "/b hello from alice");
    key("alice", "Enter");
    for (const name of ["bob", "carol"] as Name[]) {
      await waitScreen(name, (s) => /\d\d:\d\d <alice> hello from alice/.test(s), 5000, "alice's broadcast");
    }
    // The typed line is replaced by the formatted message, whose receipt counts up to 2/2 in place.
    const a = await waitScreen(
      "alice",
      (s) => /\d\d:\d\d <alice> hello from alice {2}✓ 2\/2/.test(s),
      5000,
      "the receipt",
    );
    assert.doesNotMatch(a, /\[alice\] \/b hello from alice/);

    type("bob", "/p carol psst carol");
    key("bob", "Enter");
    await waitScreen(
      "carol",
      (s) => /\d\d:\d\d \[bob → you\] psst carol/.test(s),
      5000,
      "the private message",
    );
    await waitScreen("bob", (s) => /\[you → carol\] psst carol {2}✓/.test(s), 5000, "the private receipt");
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(screen("alice"), /psst/);
    assert.equal(screen("carol").match(/<alice> hello from alice/g)?.length, 1, "shown once");
  });

  it("keeps a half-typed line intact on the prompt while a message arrives above it", {
    timeout: 15_000,
  }, async () => {
    type("carol", "half typed line");
    await waitScreen("carol", (s) => s.endsWith("[carol] half typed line"), 3000, "the partial input");
    type("alice", "interrupting you");
    key("alice", "Enter");
    // The message line and the redrawn prompt are separate writes: wait for both, then check their order.
    const s = await waitScreen(
      "carol",
      (x) => x.includes("<alice> interrupting you") && x.endsWith("[carol] half typed line"),
      5000,
      "the interruption, with the prompt redrawn below it",
    );
    const lines = s.split("\n");
    assert.equal(lines.at(-1), "[carol] half typed line", `prompt line intact:\n${s}`);
    assert.match(lines.at(-2) ?? "", /\d\d:\d\d <alice> interrupting you$/);
    // And the input buffer itself is intact: Enter sends exactly what was typed.
    key("carol", "Enter");
    await waitScreen("bob", (x) => /<carol> half typed line/.test(x), 5000, "carol's line, sent");
  });

  it("reports an unknown command and an unknown peer in one line, gives the refused line back, keeps running", {
    timeout: 10_000,
  }, async () => {
    type("bob", "/frob");
    key("bob", "Enter");
    await waitScreen(
      "bob",
      (s) => s.includes("✗ unknown command /frob (see /help)"),
      3000,
      "the unknown command",
    );
    type("bob", "/p zed hi");
    key("bob", "Enter");
    await waitScreen("bob", (s) => s.includes('✗ no user "zed" in the directory'), 3000, "the unknown peer");
    // The message that could not be sent is back on the prompt, to fix rather than to type again.
    await waitScreen(
      "bob",
      (s) => s.endsWith("[bob] /p zed hi"),
      3000,
      "the refused line back on the prompt",
    );
    key("bob", "C-u");
    type("bob", "/pe");
    key("bob", "Tab");
    await waitScreen("bob", (s) => s.endsWith("[bob] /peers"), 3000, "tab completion of /peers");
    key("bob", "Enter");
    await waitScreen(
      "bob",
      (s) => /alice\s+online/.test(s) && /carol\s+online/.test(s),
      3000,
      "the peer list",
    );
  });

  it("quits with /q, Ctrl-C and Ctrl-D, exit status 0 within 2 s", { timeout: 15_000 }, async (t) => {
    // Each client's time runs from the moment its key went in (wall clock, as the exit files record it).
    const sentAt: Partial<Record<Name, number>> = {};
    type("alice", "/q");
    key("alice", "Enter");
    sentAt.alice = Date.now();
    key("bob", "C-c");
    sentAt.bob = Date.now();
    key("carol", "C-d");
    sentAt.carol = Date.now();
    const names = Object.keys(WINDOWS) as Name[];
    const deadline = Date.now() + 8000;
    while (names.some((n) => exitOf(n) === undefined) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const took = (n: Name) => (exitOf(n)?.at ?? Number.POSITIVE_INFINITY) - (sentAt[n] as number);
    t.diagnostic(
      `exit after /q, Ctrl-C, Ctrl-D: ${names.map((n) => `${n} ${Math.round(took(n))} ms`).join(", ")}`,
    );
    for (const name of names) {
      const exit = exitOf(name);
      assert.ok(exit, `${name} exited; its screen:\n${screen(name)}`);
      assert.equal(exit.status, 0, `${name} exit status`);
      assert.ok(took(name) < 2000, `${name} took ${Math.round(took(name))} ms`);
    }
  });
});
