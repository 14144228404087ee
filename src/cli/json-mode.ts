/**
 * `--json`: the client for programs. Commands are read from stdin, one per line, in the interactive syntax (a line
 * without a leading "/" is a broadcast); every event is written to stdout as one JSON object per line, with an
 * `event` field. Nothing else goes to stdout; diagnostics go to stderr. End of stdin is /q.
 *
 * Only new messages produce a `message` event: history is never replayed (ask with /history). A message queued
 * before a restart is reported again only by its outcome (`delivered` or `failed`), without a second `queued`.
 */
import { createInterface } from "node:readline";
import type { PeerId } from "../engine/types.ts";
import { openDirectory } from "../identity/directory.ts";
import type { ChatNode } from "../node/chat-node.ts";
import { openNode, resolveDataDir } from "../node/open-node.ts";
import type { HistoryEntry } from "../storage/store.ts";
import { type ChatOptions, closeWithin, nodeOptions, startOrClose } from "./chat-options.ts";
import { COMMANDS, type Command, parseCommand } from "./commands.ts";

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

  constructor(
    private readonly node: ChatNode,
    private readonly io: JsonIO,
    private readonly dataDir: string | undefined,
  ) {}

  private emit(event: string, fields: Record<string, unknown> = {}): void {
    if (this.outputBroken) return;
    this.io.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
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
    node.on("ready", (e) => this.emit("ready", { username: e.username, port: e.port, address: e.address }));
    node.on("queued", (e) =>
      this.emit("queued", { id: e.msgId, kind: e.kind, to: e.to, waiting: e.waiting }),
    );
    node.on("delivered", (e) => this.emit("delivered", { id: e.msgId, to: e.to, tries: e.tries }));
    node.on("failed", (e) => this.emit("failed", { id: e.msgId, to: e.to, reason: e.reason, code: e.code }));
    node.on("waiting", (e) =>
      this.emit("waiting", { id: e.msgId, to: e.to, reason: e.reason, cause: e.cause }),
    );
    node.on("contacts", (e) =>
      this.emit("contacts", { added: e.added, removed: e.removed, changed: e.changed }),
    );
    node.on("message", (m) =>
      this.emit("message", {
        id: m.msgId,
        from: m.from,
        kind: m.kind,
        text: m.text,
        sentAt: m.sentAt,
        receivedAt: m.receivedAt,
      }),
    );
    node.on("rejected", (e) =>
      this.emit("rejected", {
        reason: e.reason,
        ...(e.from !== undefined && { from: e.from }),
        address: e.address,
      }),
    );
    node.on("peer-online", (e) => this.emit("peer-online", { peer: e.peer, address: e.address }));
    node.on("peer-offline", (e) => this.emit("peer-offline", { peer: e.peer }));
  }

  private onLine(line: string): void {
    if (this.quitting) return;
    try {
      this.execute(parseCommand(line));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      this.emit("error", { message: (error as Error).message, ...(typeof code === "string" && { code }) });
    }
  }

  private execute(c: Command): void {
    const node = this.node;
    switch (c.type) {
      case "empty":
        return;
      case "invalid":
        this.emit("error", { message: c.message, code: "usage" });
        return;
      case "broadcast":
        node.broadcast(c.text); // reported by the node's `queued` event
        return;
      case "private":
        node.sendPrivate(c.peer, c.text);
        return;
      case "quit":
        this.quit();
        return;
      case "help":
        this.emit("help", { commands: COMMANDS.map((x) => ({ usage: x.usage, summary: x.summary })) });
        return;
      case "peers":
        this.emit("peers", {
          peers: node.peers().map((p) => ({
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
        this.emit("stats", { ...node.stats() });
        return;
      case "history":
        this.emit("history", {
          messages: node.history(c.limit).map((e) => historyJson(e, (id) => node.nameOf(id))),
        });
        return;
      case "fault":
        this.emit("faults", { faults: c.change ? node.setFaults(c.change) : node.getFaults() });
        return;
      case "retry":
        this.emit("retried", { count: node.retryWaiting(c.peer) });
        return;
      case "verify": {
        if (c.peer === undefined) {
          const self = openDirectory(resolveDataDir(this.dataDir)).getUser(node.username);
          this.emit("fingerprint", { peer: node.username, fingerprint: self?.fingerprint ?? null });
          return;
        }
        const contact = node.resolvePeer(c.peer);
        this.emit("fingerprint", { peer: contact.name, fingerprint: contact.fingerprint ?? null });
        return;
      }
    }
  }

  private quit(): void {
    if (this.quitting) return;
    this.quitting = true;
    void closeWithin(this.node).then(() => {
      this.emit("closed");
      this.exit(0);
    });
  }
}
