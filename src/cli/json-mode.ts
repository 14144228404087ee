/**
 * `--json`: the client for programs. Commands are read from stdin, one per line, in the interactive syntax (a line
 * without a leading "/" is a broadcast), or as {"cmd": "...", "tag": "..."}; every event is written to stdout as one
 * JSON object per line, with an `event` field. Each command gets one reply, in input order, with its `line` (and
 * `tag`); every other event is marked `"async": true` (json-replies.ts). Nothing else goes to stdout; diagnostics go
 * to stderr. End of stdin is /q.
 *
 * Only new messages produce a `message` event: history is never replayed (ask with /history). A message queued
 * before a restart is reported again only by its outcome (`delivered` or `failed`), without a second `queued`.
 */
import { createInterface } from "node:readline";
import type { PeerId } from "../engine/types.ts";
import { faultsAsFractions } from "../faults/parse.ts";
import type { ChatNode } from "../node/chat-node.ts";
import { openNode } from "../node/open-node.ts";
import type { HistoryEntry } from "../storage/store.ts";
import { type ChatOptions, closeWithin, nodeOptions, startOrClose } from "./chat-options.ts";
import { runCommand } from "./command-actions.ts";
import { COMMANDS, type Command, parseCommand } from "./commands.ts";
import { type Fields, parseInput, ReplyQueue } from "./json-replies.ts";

export interface JsonIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export type JsonEvent = { event: string } & Record<string, unknown>;

/** One history entry as JSON: names instead of key ids. */
export function historyJson(e: HistoryEntry, nameOf: (id: PeerId) => string): object {
  if (e.direction === "in") {
    return {
      id: e.msgId,
      direction: "in",
      kind: e.kind,
      from: nameOf(e.from),
      text: e.text,
      sentAt: e.sentAt,
      receivedAt: e.receivedAt,
    };
  }
  return {
    id: e.msgId,
    direction: "out",
    kind: e.kind,
    text: e.text,
    sentAt: e.sentAt,
    recipients: e.recipients.map((r) => ({
      to: nameOf(r.peer),
      state: r.state,
      ...(r.reason !== undefined && { reason: r.reason }),
    })),
  };
}

export async function runJson(options: ChatOptions, io: JsonIO): Promise<number> {
  const node = await openNode(nodeOptions(options));
  return new JsonClient(node, io, options.dataDir).run();
}

class JsonClient {
  private quitting = false;
  private outputBroken = false;
  private exit: (code: number) => void = () => {};
  private readonly replies = new ReplyQueue((event, fields) => this.emit(event, fields));
  /** Sends whose reply is their `queued` event, by message id. */
  private readonly awaitingQueued = new Map<string, ReturnType<ReplyQueue["open"]>>();
  private lineNumber = 0;
  /** The reply slot of the /q that ends the session, answered by `closed`. */
  private quitSlot: ReturnType<ReplyQueue["open"]> | undefined;

  constructor(
    private readonly node: ChatNode,
    private readonly io: JsonIO,
    private readonly dataDir: string | undefined,
  ) {}

  private emit(event: string, fields: Fields = {}): void {
    if (this.outputBroken) return;
    this.io.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
  }

  /** An event that answers no command. */
  private emitAsync(event: string, fields: Fields = {}): void {
    this.emit(event, { ...fields, async: true });
  }

  async run(): Promise<number> {
    const exited = new Promise<number>((resolve) => {
      this.exit = resolve;
    });
    this.listen();
    await startOrClose(this.node);
    const rl = createInterface({
      input: this.io.stdin,
      terminal: false,
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    rl.on("line", (line) => this.onLine(line));
    rl.on("close", () => this.quit());
    // stdin may have ended already (it held only the password of --password-file -): readline will not see it end.
    if ((this.io.stdin as { readableEnded?: boolean }).readableEnded) this.quit();
    const onSignal = () => this.quit();
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.on("SIGHUP", onSignal);
    // A reader that went away (EPIPE): nobody to report to, so stop.
    this.io.stdout.on("error", () => {
      this.outputBroken = true;
      this.quit();
    });
    const code = await exited;
    rl.close();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("SIGHUP", onSignal);
    return code;
  }

  private listen(): void {
    const node = this.node;
    node.on("ready", (e) =>
      this.emitAsync("ready", { username: e.username, port: e.port, address: e.address }),
    );
    node.on("queued", (e) => {
      const fields = { id: e.msgId, kind: e.kind, to: e.to, waiting: e.waiting };
      const slot = this.awaitingQueued.get(e.msgId);
      this.awaitingQueued.delete(e.msgId);
      if (slot) this.replies.answer(slot, "queued", fields);
      else this.emitAsync("queued", fields);
    });
    node.on("delivered", (e) => this.emitAsync("delivered", { id: e.msgId, to: e.to, tries: e.tries }));
    node.on("failed", (e) =>
      this.emitAsync("failed", { id: e.msgId, to: e.to, reason: e.reason, code: e.code }),
    );
    node.on("waiting", (e) =>
      this.emitAsync("waiting", { id: e.msgId, to: e.to, reason: e.reason, cause: e.cause }),
    );
    node.on("contacts", (e) =>
      this.emitAsync("contacts", { added: e.added, removed: e.removed, changed: e.changed }),
    );
    node.on("message", (m) =>
      this.emitAsync("message", {
        id: m.msgId,
        from: m.from,
        kind: m.kind,
        text: m.text,
        sentAt: m.sentAt,
        receivedAt: m.receivedAt,
      }),
    );
    node.on("rejected", (e) =>
      this.emitAsync("rejected", {
        reason: e.reason,
        ...(e.from !== undefined && { from: e.from }),
        address: e.address,
      }),
    );
    node.on("peer-online", (e) => this.emitAsync("peer-online", { peer: e.peer, address: e.address }));
    node.on("peer-offline", (e) => this.emitAsync("peer-offline", { peer: e.peer }));
    node.on("lan-found", (e) => this.emitAsync("lan-found", { peer: e.peer, address: e.address }));
  }

  private onLine(line: string): void {
    const lineNumber = ++this.lineNumber;
    if (this.quitting) return;
    const input = parseInput(line);
    const command = input.ok ? parseCommand(input.text) : undefined;
    if (command?.type === "empty") return; // blank lines are no command: no reply
    const slot = this.replies.open(lineNumber, input.tag);
    if (!input.ok || !command) {
      this.replies.answer(slot, "error", { message: input.ok ? "empty" : input.message, code: "usage" });
      return;
    }
    try {
      this.execute(command, slot);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      this.replies.answer(slot, "error", {
        message: (error as Error).message,
        ...(typeof code === "string" && { code: kebabCode(code) }),
      });
    }
  }

  private execute(c: Command, slot: ReturnType<ReplyQueue["open"]>): void {
    const node = this.node;
    const reply = (event: string, fields: Fields = {}) => this.replies.answer(slot, event, fields);
    const o = runCommand(node, c, this.dataDir);
    switch (o.type) {
      case "nothing":
        return;
      case "invalid":
        reply("error", { message: o.message, code: "usage" });
        return;
      case "sent":
        // Answered by the node's `queued` event, once the message is stored.
        this.awaitingQueued.set(o.sent.msgId, slot);
        return;
      case "quit":
        this.quitSlot = slot;
        this.quit();
        return;
      case "help":
        reply("help", { commands: COMMANDS.map((x) => ({ usage: x.usage, summary: x.summary })) });
        return;
      case "peers":
        reply("peers", {
          peers: o.peers.map((p) => ({
            name: p.name,
            id: p.id,
            online: p.online,
            lastSeen: p.lastSeen ?? null,
            rttMs: p.rttMs ?? null,
            address: p.address,
            fingerprint: p.fingerprint ?? null,
            inFlight: p.inFlight,
            queued: p.queued,
            parked: p.parked,
          })),
        });
        return;
      case "stats":
        reply("stats", { ...o.stats });
        return;
      case "history":
        reply("history", { messages: o.entries.map((e) => historyJson(e, (id) => node.nameOf(id))) });
        return;
      case "faults":
        reply("faults", { faults: faultsAsFractions(o.faults) });
        return;
      case "retried":
        reply("retried", { count: o.count });
        return;
      case "fingerprint":
        reply("fingerprint", { peer: o.peer, fingerprint: o.fingerprint ?? null });
        return;
      case "whoami":
        reply("whoami", { username: o.name, code: o.code ?? null, fingerprint: o.fingerprint ?? null });
        return;
    }
  }

  private quit(): void {
    if (this.quitting) return;
    this.quitting = true;
    void closeWithin(this.node).then(() => {
      // Every send was answered by the pump that closing ran; `closed` answers the /q, after them.
      this.replies.abandon("the node closed before this command completed", this.quitSlot);
      if (this.quitSlot) this.replies.answer(this.quitSlot, "closed");
      else this.emitAsync("closed");
      this.exit(0);
    });
  }
}

/**
 * Error codes in --json are kebab-case, whichever layer raised them (the node's are UPPER_SNAKE, as in its
 * exceptions; the engine's and the client's are kebab-case already): `unknown-peer`, `too-large`, `usage`.
 */
export function kebabCode(code: string): string {
  return code.toLowerCase().replaceAll("_", "-");
}
