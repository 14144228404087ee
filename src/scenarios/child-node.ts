/**
 * One ChatNode in a child process, for the crash scenario. The process starts as a warm standby: Node and the
 * modules loaded, nothing opened, "standby" printed. Its first command opens a user's node with openNode (the
 * SQLite store survives a SIGKILL); from then on it reports every event as a JSON line on stdout. stdout is a
 * pipe, and pipe writes are synchronous on Linux and macOS, so a line the parent has read was written before
 * anything the process did next.
 *
 * Input, one JSON object per line (`id` is echoed in the answer):
 *   {"id":1,"cmd":"open","dataDir":"…","username":"carol","password":"…","faults":{…}}   first, once
 *   {"id":2,"cmd":"send","to":"alice","text":"hi"}   private message ("to" absent or null: broadcast)
 *   {"id":3,"cmd":"faults","faults":{"lossOutPpm":1000000}}  change fault injection
 *   {"id":4,"cmd":"stats"}                          the node's counters
 *   {"id":5,"cmd":"quit"}                           close the node and exit 0 (also on end of stdin)
 * Output: {"event":"standby"|"ready"|"queued"|"message"|"delivered"|"failed"|"rejected"|"duplicate"|"ok"|
 * "error"|"closed"|"fatal",…}. The password comes on stdin, never on the command line where `ps` shows it.
 */
import { createInterface } from "node:readline";
import type { FaultConfig } from "../faults/plan.ts";
import type { ChatNode } from "../node/chat-node.ts";
import { openNode } from "../node/open-node.ts";

type ChildCommand =
  | {
      id: number;
      cmd: "open";
      dataDir: string;
      username: string;
      password: string;
      faults?: Partial<FaultConfig>;
    }
  | { id: number; cmd: "send"; to?: string | null; text: string }
  | { id: number; cmd: "faults"; faults: Partial<FaultConfig> }
  | { id: number; cmd: "stats" }
  | { id: number; cmd: "quit" };

function print(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Sends waiting for their `queued` event (the outbox commit), by msgId: the command's id and text. */
const sending = new Map<string, { id: number; text: string }>();

function attach(node: ChatNode): void {
  node.on("ready", (e) => print({ event: "ready", port: e.port }));
  // Reported once the outbox holds the message, so a SIGKILL after this line can never lose it.
  node.on("queued", (e) => {
    const command = sending.get(e.msgId);
    if (!command) return;
    sending.delete(e.msgId);
    print({ event: "queued", id: command.id, msgId: e.msgId, kind: e.kind, to: e.to, text: command.text });
  });
  node.on("message", (e) =>
    print({ event: "message", msgId: e.msgId, from: e.from, kind: e.kind, text: e.text }),
  );
  node.on("delivered", (e) => print({ event: "delivered", msgId: e.msgId, to: e.to, tries: e.tries }));
  node.on("failed", (e) =>
    print({ event: "failed", msgId: e.msgId, to: e.to, code: e.code, reason: e.reason }),
  );
  node.on("waiting", (e) =>
    print({ event: "waiting", msgId: e.msgId, to: e.to, cause: e.cause, reason: e.reason }),
  );
  node.on("rejected", (e) => print({ event: "rejected", reason: e.reason, from: e.from }));
  node.on("duplicate", (e) => print({ event: "duplicate", from: e.from, msgId: e.msgId }));
  node.on("peer-online", (e) => print({ event: "peer-online", peer: e.peer }));
  node.on("peer-offline", (e) => print({ event: "peer-offline", peer: e.peer }));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function main(): void {
  let node: ChatNode | undefined;
  let opening = false;
  let quitting = false;
  const quit = async () => {
    if (quitting) return;
    quitting = true;
    try {
      await node?.close();
      print({ event: "closed" });
      process.exit(0);
    } catch (error) {
      print({ event: "fatal", message: errorText(error) });
      process.exit(1);
    }
  };
  const open = async (command: Extract<ChildCommand, { cmd: "open" }>) => {
    opening = true;
    try {
      const opened = await openNode({
        dataDir: command.dataDir,
        username: command.username,
        password: command.password,
        closeGraceMs: 300,
        ...(command.faults && { faults: command.faults }),
      });
      attach(opened);
      node = opened;
      await opened.start();
    } catch (error) {
      print({ event: "fatal", message: errorText(error) });
      process.exit(1);
    }
  };
  const handle = (command: ChildCommand, line: string) => {
    if (command.cmd === "quit") return void quit();
    if (command.cmd === "open") {
      if (opening) throw new Error("a node is already open");
      return void open(command);
    }
    if (!node) throw new Error(`no node open yet for ${line}`);
    switch (command.cmd) {
      case "send": {
        const r =
          command.to === undefined || command.to === null
            ? node.broadcast(command.text)
            : node.sendPrivate(command.to, command.text);
        sending.set(r.msgId, { id: command.id, text: command.text });
        return;
      }
      case "faults":
        print({ event: "ok", id: command.id, faults: node.setFaults(command.faults) });
        return;
      case "stats":
        print({ event: "ok", id: command.id, stats: node.stats() });
        return;
      default:
        throw new Error(`unknown command in ${line}`);
    }
  };
  const input = createInterface({ input: process.stdin });
  input.on("close", () => void quit());
  input.on("line", (line) => {
    if (line.trim() === "") return;
    let command: ChildCommand;
    try {
      command = JSON.parse(line) as ChildCommand;
    } catch {
      print({ event: "error", message: `not JSON: ${line}` });
      return;
    }
    try {
      handle(command, line);
    } catch (error) {
      print({ event: "error", id: command.id, message: errorText(error) });
    }
  });
  print({ event: "standby", pid: process.pid });
}

try {
  main();
} catch (error) {
  print({ event: "fatal", message: errorText(error) });
  process.exit(1);
}
