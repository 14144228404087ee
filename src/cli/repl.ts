/**
 * The interactive client, irssi-style: one prompt line at the bottom, everything else printed above it. Output
 * that arrives while the user is typing is written above the prompt (clear the prompt rows, write, re-render the
 * prompt with the partial input and the cursor where they were), so incoming messages never garble a half-typed
 * line. A line without a leading "/" is a broadcast (see commands.ts).
 *
 * Receipts: our own message shows "✓ delivered/total" and is rewritten in place while it is still the last thing
 * on the screen; once something else was printed below it, only failures ("✗ dave: gave up after 30 tries") and a
 * compact line when every recipient is resolved are printed.
 */
import { createInterface, type Interface } from "node:readline";
import type { PeerId } from "../engine/types.ts";
import { FAULT_NAMES } from "../faults/parse.ts";
import { shortenFingerprint } from "../identity/fingerprint.ts";
import type { ChatNode } from "../node/chat-node.ts";
import { openNode } from "../node/open-node.ts";
import type { ChatNodeEvents, SentView } from "../node/types.ts";
import type { HistoryEntry } from "../storage/store.ts";
import { colorEnabled } from "../terminal/text.ts";
import { type ChatOptions, closeWithin, nodeOptions, startOrClose } from "./chat-options.ts";
import { ownFingerprint, runCommand } from "./command-actions.ts";
import { type Command, complete, DEFAULT_HISTORY, parseCommand } from "./commands.ts";
import { RateLimiter } from "./rate-limiter.ts";
import { createRenderer, type Renderer } from "./render.ts";
import { type HistoryView, type OutgoingView, type Receipt, receiptDone } from "./render-messages.ts";
import { Screen } from "./screen.ts";
import { listNames, quote } from "./text-format.ts";

export interface ReplIO {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** Runs the interactive client until the user quits; resolves with the exit code. */
export async function runRepl(options: ChatOptions, io: ReplIO): Promise<number> {
  const node = await openNode(nodeOptions(options));
  return new ReplClient(node, options, io).run();
}

// ---- the client -----------------------------------------------------------------------------------------------

type RecipientState = "pending" | "delivered" | "waiting" | "failed";

interface SentMessage {
  view: OutgoingView;
  states: Map<string, RecipientState>;
}

const SENT_KEPT = 500;

function receiptOf(s: SentMessage): Receipt {
  let delivered = 0;
  let failed = 0;
  const waiting: string[] = [];
  for (const [name, state] of s.states) {
    if (state === "delivered") delivered++;
    else if (state === "failed") failed++;
    else if (state === "waiting") waiting.push(name);
  }
  return { kind: s.view.kind, total: s.states.size, delivered, failed, waiting };
}

/** A stored history entry with key ids turned into names. */
export function historyView(e: HistoryEntry, name: (id: PeerId) => string): HistoryView {
  if (e.direction === "in") {
    return {
      direction: "in",
      from: name(e.from),
      kind: e.kind,
      text: e.text,
      sentAt: e.sentAt,
      receivedAt: e.receivedAt,
    };
  }
  return {
    direction: "out",
    kind: e.kind,
    text: e.text,
    sentAt: e.sentAt,
    recipients: e.recipients.map((r) => ({ name: name(r.peer), state: r.state })),
  };
}

class ReplClient {
  private readonly render: Renderer;
  private readonly screen: Screen;
  private readonly limiter = new RateLimiter(1000);
  private readonly sent = new Map<string, SentMessage>();
  /** Texts of messages from earlier sessions still waiting for a recipient, for their late receipts. */
  private readonly earlier = new Map<string, string>();
  private rl: Interface | undefined;
  private address = "";
  private quitting = false;
  private exit: (code: number) => void = () => {};

  constructor(
    private readonly node: ChatNode,
    private readonly options: ChatOptions,
    private readonly io: ReplIO,
  ) {
    const tty = io.stdout.isTTY === true && io.stdin.isTTY === true;
    this.screen = new Screen(io.stdout, tty);
    this.render = createRenderer({
      color: colorEnabled({ flag: options.color, env: io.env, isTTY: io.stdout.isTTY === true }),
      self: node.username,
    });
  }

  async run(): Promise<number> {
    const exited = new Promise<number>((resolve) => {
      this.exit = resolve;
    });
    this.listen();
    await startOrClose(this.node);
    this.greet();
    this.openPrompt();
    // On a terminal Ctrl-C reaches readline (raw mode); without one it is a signal. Either way: quit cleanly.
    const onSignal = () => this.quit();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onSignal);
    const onOutputError = () => this.quit();
    this.io.stdout.on("error", onOutputError);
    const code = await exited;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
    return code;
  }

  private print(text: string, key?: string): void {
    this.screen.print(text, key);
  }

  /**
   * Node events are emitted from inside the node's event loop step: a display bug must not throw into it, so
   * every listener reports its own failure (on stderr, without stopping the node).
   */
  private listen(): void {
    const { node, render: r } = this;
    const on = <K extends keyof ChatNodeEvents>(name: K, handler: (...args: ChatNodeEvents[K]) => void) => {
      const guarded = (...args: ChatNodeEvents[K]) => {
        try {
          handler(...args);
        } catch (error) {
          process.stderr.write(`chatnode: internal error in the display: ${(error as Error).message}\n`);
        }
      };
      node.on(name, guarded as Parameters<typeof node.on<K>>[1]);
    };
    on("ready", (e) => {
      this.address = e.address;
    });
    on("message", (m) => this.print(r.incoming(m)));
    on("delivered", (e) => this.onDelivered(e.msgId, e.to));
    on("failed", (e) => this.onFailed(e.msgId, e.to, e.reason));
    on("waiting", (e) => this.onWaiting(e.msgId, e.to, e.reason));
    on("contacts", (c) => {
      const parts = [
        c.added.length > 0 && `${listNames(c.added)} added`,
        c.changed.length > 0 && `${listNames(c.changed)} updated`,
        c.removed.length > 0 && `${listNames(c.removed)} removed`,
      ].filter(Boolean);
      this.print(r.notice(`contacts changed: ${parts.join("; ")}`));
    });
    on("peer-online", (e) => this.print(r.notice(`${e.peer} is online (${e.address})`)));
    on("peer-offline", (e) => this.print(r.notice(`${e.peer} went offline`)));
    on("lan-found", (e) => this.print(r.notice(`${e.peer} found on the LAN at ${e.address}`)));
    on("rejected", (e) => {
      this.limiter.hit(`${e.reason}|${e.from ?? ""}`, (count) =>
        this.print(r.rejected(e.reason, e.from ?? e.address, count)),
      );
    });
  }

  private greet(): void {
    const { node, render: r } = this;
    const mine = ownFingerprint(node, this.options.dataDir);
    const history = node.history(DEFAULT_HISTORY);
    for (const m of node.history(200)) {
      if (m.direction === "out" && m.recipients.some((x) => x.state !== "delivered"))
        this.earlier.set(m.msgId, m.text);
    }
    if (history.length > 0) {
      this.print(r.rule(`last ${history.length} messages`));
      for (const e of history)
        this.print(
          r.historyEntry(
            historyView(e, (id) => node.nameOf(id)),
            true,
          ),
        );
      this.print(r.rule("now"));
    }
    const fp = mine === undefined ? "" : ` (fingerprint ${shortenFingerprint(mine)})`;
    this.print(
      r.notice(
        `${node.username}${fp} listening on ${this.address}. ` +
          "Type /help for commands; a line without / is sent to everyone.",
      ),
    );
  }

  private openPrompt(): void {
    const { node, screen } = this;
    const names = () => node.contacts().map((c) => c.name);
    const rl = createInterface({
      input: this.io.stdin,
      output: screen.tty ? this.io.stdout : undefined,
      terminal: screen.tty,
      prompt: this.render.prompt(),
      historySize: 200,
      completer: (line: string) => complete(line, names(), [...FAULT_NAMES, "off"]),
    });
    this.rl = rl;
    screen.attach(rl);
    rl.on("line", (line) => this.onLine(line));
    rl.on("SIGINT", () => this.quit());
    rl.on("close", () => this.quit());
    // stdin may have ended already (it held only the password of --password-file -): readline will not see it end.
    if (this.io.stdin.readableEnded) this.quit();
    screen.showPrompt();
  }

  private onLine(line: string): void {
    if (this.quitting) return;
    const command = parseCommand(line);
    if (command.type === "empty" || command.type === "broadcast" || command.type === "private") {
      this.screen.eraseEcho(this.render.prompt(), line);
    }
    let refused = false;
    try {
      this.execute(command);
    } catch (error) {
      this.print(this.render.error((error as Error).message));
      refused = command.type === "broadcast" || command.type === "private";
    }
    if (this.quitting) return;
    this.screen.showPrompt();
    // A message that could not be sent (a mistyped name, too long) comes back to the prompt, to fix and resend.
    if (refused && this.screen.tty) this.rl?.write(line);
  }

  private execute(c: Command): void {
    const { node, render: r } = this;
    const o = runCommand(node, c, this.options.dataDir);
    switch (o.type) {
      case "nothing":
        return;
      case "invalid":
        this.print(r.error(o.message));
        return;
      case "sent":
        this.track(o.kind, o.sent, o.text);
        return;
      case "quit":
        this.quit();
        return;
      case "help":
        this.print(r.help());
        return;
      case "peers":
        this.print(r.peers(o.peers, Date.now()));
        return;
      case "stats":
        this.print(r.stats(o.stats));
        return;
      case "history":
        if (o.entries.length === 0) this.print(r.notice("no messages yet"));
        for (const e of o.entries) this.print(r.historyEntry(historyView(e, (id) => node.nameOf(id))));
        return;
      case "faults":
        this.print(r.faults(o.faults));
        return;
      case "retried":
        this.print(
          r.notice(
            o.count === 0
              ? "no message is waiting"
              : `${o.count} ${o.count === 1 ? "message waits" : "messages wait"}: asking ${o.peer ?? "their recipients"} now; sent as soon as they answer`,
          ),
        );
        return;
      case "fingerprint":
        // Our own: nothing to compare it with.
        this.print(r.verify(o.peer, o.fingerprint, o.peer === node.username ? undefined : o.mine));
        return;
      case "whoami":
        this.print(r.whoami(o.name, o.code, o.fingerprint));
        return;
    }
  }

  private track(kind: "broadcast" | "private", result: SentView, text: string): void {
    const waiting = new Set(result.waiting);
    const s: SentMessage = {
      view: { kind, to: result.to, text, sentAt: Date.now() },
      states: new Map(result.to.map((name) => [name, waiting.has(name) ? "waiting" : "pending"])),
    };
    this.sent.set(result.msgId, s);
    if (this.sent.size > SENT_KEPT) {
      const oldest = this.sent.keys().next().value;
      if (oldest !== undefined) this.sent.delete(oldest);
    }
    this.print(this.render.outgoing(s.view, receiptOf(s)), result.msgId);
  }

  private onDelivered(msgId: string, to: string): void {
    const r = this.render;
    const s = this.sent.get(msgId);
    if (!s) {
      const text = this.earlier.get(msgId);
      this.limiter.hit(`earlier|${to}`, (count) => this.print(r.lateDelivery(to, count, text, true)));
      return;
    }
    const before = s.states.get(to);
    s.states.set(to, "delivered");
    const receipt = receiptOf(s);
    if (this.screen.replace(msgId, r.outgoing(s.view, receipt))) return;
    // A peer that comes back gets everything that waited for it: one line for the lot, not one per message.
    if (before === "waiting")
      this.limiter.hit(`late|${to}`, (count) => this.print(r.lateDelivery(to, count, s.view.text, false)));
    else if (receiptDone(receipt)) this.print(r.receiptLine(s.view, receipt));
  }

  /** The recipient stopped answering or quit: the message waits. Shown in its receipt, or one line per burst. */
  private onWaiting(msgId: string, to: string, reason: string): void {
    const r = this.render;
    const s = this.sent.get(msgId);
    if (s) {
      s.states.set(to, "waiting");
      if (this.screen.replace(msgId, r.outgoing(s.view, receiptOf(s)))) return;
    }
    const text = s?.view.text ?? this.earlier.get(msgId);
    this.limiter.hit(`waiting|${to}`, (count) => this.print(r.waiting(to, reason, count, text)));
  }

  private onFailed(msgId: string, to: string, reason: string): void {
    const r = this.render;
    const s = this.sent.get(msgId);
    if (!s) {
      const text = this.earlier.get(msgId);
      this.print(r.failure(to, reason, text === undefined ? undefined : `${quote(text)} (sent earlier)`));
      return;
    }
    s.states.set(to, "failed");
    const receipt = receiptOf(s);
    if (this.screen.replace(msgId, r.outgoing(s.view, receipt))) {
      // The message is right above: its receipt now shows the failure; say who and why below it.
      this.print(r.failure(to, reason));
      return;
    }
    // Further up the screen: name the message, and give the final count if this failure settled it.
    const settled = receiptDone(receipt) && s.view.kind === "broadcast" ? `  ${r.receipt(receipt)}` : "";
    this.print(`${r.failure(to, reason, quote(s.view.text))}${settled}`);
  }

  private quit(): void {
    if (this.quitting) return;
    this.quitting = true;
    this.screen.close();
    this.limiter.close();
    this.rl?.close();
    void closeWithin(this.node).then(() => this.exit(0));
  }
}
