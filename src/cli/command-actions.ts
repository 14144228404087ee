/**
 * What each command does, once for both clients: the interactive one (repl.ts) and `--json` (json-mode.ts) parse a
 * line with commands.ts, run it here, and each renders the outcome its own way. A new command is a parser entry,
 * a case here, and its two renderings.
 */
import type { FaultConfig } from "../faults/plan.ts";
import { contactCode } from "../identity/contact.ts";
import { openDirectory } from "../identity/directory.ts";
import type { UserRecord } from "../identity/record.ts";
import type { ChatNode } from "../node/chat-node.ts";
import { resolveDataDir } from "../node/open-node.ts";
import type { NodeStats, PeerView, SentView } from "../node/types.ts";
import type { HistoryEntry } from "../storage/store.ts";
import type { Command } from "./commands.ts";

export type Outcome =
  | { type: "nothing" }
  | { type: "sent"; kind: "broadcast" | "private"; text: string; sent: SentView }
  | { type: "quit" }
  | { type: "help" }
  | { type: "peers"; peers: PeerView[] }
  | { type: "stats"; stats: NodeStats }
  | { type: "history"; entries: HistoryEntry[] }
  | { type: "faults"; faults: FaultConfig }
  | { type: "retried"; count: number; peer: string | undefined }
  /** `mine` is our own fingerprint, to compare with (absent if the directory cannot be read). */
  | { type: "fingerprint"; peer: string; fingerprint: string | undefined; mine: string | undefined }
  /** Our own contact code and fingerprint (both absent if the directory cannot be read). */
  | { type: "whoami"; name: string; code: string | undefined; fingerprint: string | undefined }
  | { type: "invalid"; message: string };

/** Our own record, from the directory (undefined if it cannot be read). */
function ownRecord(node: ChatNode, dataDir: string | undefined): UserRecord | undefined {
  try {
    return openDirectory(resolveDataDir(dataDir)).getUser(node.username);
  } catch {
    return undefined;
  }
}

/** Our own full fingerprint, from the directory (undefined if it cannot be read). */
export function ownFingerprint(node: ChatNode, dataDir: string | undefined): string | undefined {
  return ownRecord(node, dataDir)?.fingerprint;
}

/**
 * Our contact code, its hint where this node listens now: the port it got (--port 0 gives any), and the host it is
 * bound to unless that is every interface (0.0.0.0, ::), which is nowhere to send to; then the registered host.
 */
function whoami(node: ChatNode, dataDir: string | undefined): Outcome {
  const record = ownRecord(node, dataDir);
  const anyHost = node.host === "0.0.0.0" || node.host === "::";
  const hint = { host: anyHost && record ? record.host : node.host, port: node.port };
  return {
    type: "whoami",
    name: node.username,
    code: record ? contactCode(record, [hint]) : undefined,
    fingerprint: record?.fingerprint,
  };
}

/** Runs a parsed command on the node. Throws what the node throws (an unknown peer, a message too large, …). */
export function runCommand(node: ChatNode, c: Command, dataDir: string | undefined): Outcome {
  switch (c.type) {
    case "empty":
      return { type: "nothing" };
    case "invalid":
      return { type: "invalid", message: c.message };
    case "broadcast":
      return { type: "sent", kind: "broadcast", text: c.text, sent: node.broadcast(c.text) };
    case "private":
      return { type: "sent", kind: "private", text: c.text, sent: node.sendPrivate(c.peer, c.text) };
    case "quit":
      return { type: "quit" };
    case "help":
      return { type: "help" };
    case "peers":
      return { type: "peers", peers: node.peers() };
    case "stats":
      return { type: "stats", stats: node.stats() };
    case "history":
      return { type: "history", entries: node.history(c.limit) };
    case "fault":
      return { type: "faults", faults: c.change ? node.setFaults(c.change) : node.getFaults() };
    case "retry":
      return { type: "retried", count: node.retryWaiting(c.peer), peer: c.peer };
    case "whoami":
      return whoami(node, dataDir);
    case "verify": {
      const mine = ownFingerprint(node, dataDir);
      if (c.peer === undefined) return { type: "fingerprint", peer: node.username, fingerprint: mine, mine };
      const contact = node.resolvePeer(c.peer);
      return { type: "fingerprint", peer: contact.name, fingerprint: contact.fingerprint, mine };
    }
  }
}
