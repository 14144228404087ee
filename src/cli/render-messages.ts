/** How messages look on screen: ours with their delivery receipts, others', and the lines about delivery. */
import type { Style } from "./render-style.ts";
import { abbreviate, formatTime, listNames, quote, sanitize } from "./text-format.ts";

export interface Receipt {
  kind: "broadcast" | "private";
  total: number;
  delivered: number;
  failed: number;
  /** Recipients the message waits for: not heard from (offline), it goes once they are. */
  waiting: readonly string[];
}

export function receiptDone(r: Receipt): boolean {
  return r.delivered + r.failed >= r.total;
}

export interface IncomingView {
  from: string;
  kind: "broadcast" | "private";
  text: string;
  sentAt: number;
  receivedAt: number;
}

export interface OutgoingView {
  kind: "broadcast" | "private";
  /** Recipient names (one for a private message). */
  to: readonly string[];
  text: string;
  sentAt: number;
}

/** A history entry with key ids already turned into names. */
export type HistoryView =
  | ({ direction: "in" } & IncomingView)
  | {
      direction: "out";
      kind: "broadcast" | "private";
      text: string;
      sentAt: number;
      recipients: { name: string; state: "pending" | "delivered" | "failed" }[];
    };

/** Sent this long after it was written (offline delivery, a slow network or a skewed clock): say when. */
const LATE_MS = 60_000;
const TIME_WIDTH = 6; // "HH:MM "

/** Messages, ours and others', as one block each. */
export function messageLines(s: Style) {
  const { paint, self } = s;

  const waitingFor = (names: readonly string[]): string =>
    paint("yellow", `⋯ waiting for ${sanitize(listNames(names))}`);

  const receipt = (r: Receipt): string => {
    if (r.kind === "private" && r.total === 1) {
      if (r.delivered === 1) return paint("green", "✓");
      if (r.failed === 1) return paint("red", "✗");
      if (r.waiting.length === 1) return waitingFor(r.waiting);
      return paint("gray", "…");
    }
    const tick = `✓ ${r.delivered}/${r.total}`;
    const parts = [receiptDone(r) && r.failed === 0 ? paint("green", tick) : paint("gray", tick)];
    if (r.waiting.length > 0) parts.push(waitingFor(r.waiting));
    if (r.failed > 0) parts.push(paint("red", `✗ ${r.failed}`));
    return parts.join(" ");
  };

  /** A message someone sent us. */
  const incoming = (m: IncomingView): string => {
    const late =
      Math.abs(m.receivedAt - m.sentAt) > LATE_MS
        ? ` ${paint("gray", `(sent ${formatTime(m.sentAt)})`)}`
        : "";
    const text = s.body(m.text, TIME_WIDTH + s.headWidth(m.kind, m.from, self));
    return `${s.time(m.receivedAt)} ${s.head(m.kind, m.from, self)} ${text}${late}`;
  };

  /** A message we sent, with its delivery receipt. */
  const outgoing = (m: OutgoingView, r: Receipt): string => {
    const to = m.kind === "private" ? (m.to[0] ?? "?") : "";
    const text = s.body(m.text, TIME_WIDTH + s.headWidth(m.kind, self, to));
    return `${s.time(m.sentAt)} ${s.head(m.kind, self, to)} ${text}  ${receipt(r)}`;
  };

  return {
    receipt,
    incoming,
    outgoing,

    /** A receipt for a message that is no longer the last line: one compact line. */
    receiptLine(m: OutgoingView, r: Receipt): string {
      const target = m.kind === "private" ? `to ${m.to[0] ?? "?"}` : "to everyone";
      return `${receipt(r)} ${paint("gray", `${target}: ${quote(m.text)}`)}`;
    },

    /**
     * A stored history entry (see Store.history). `brief` (the replay at start) shortens a long text to its first
     * lines: a very long message would push everything else off the screen.
     */
    historyEntry(e: HistoryView, brief = false): string {
      if (brief) e = { ...e, text: abbreviate(e.text) };
      if (e.direction === "in") {
        const { from, kind, text, sentAt, receivedAt } = e;
        return incoming({ from, kind, text, sentAt, receivedAt });
      }
      const r: Receipt = {
        kind: e.kind,
        total: e.recipients.length,
        delivered: e.recipients.filter((x) => x.state === "delivered").length,
        failed: e.recipients.filter((x) => x.state === "failed").length,
        // Stored history does not know who is online now: a recipient not reached yet shows as not delivered.
        waiting: [],
      };
      return outgoing(
        { kind: e.kind, to: e.recipients.map((x) => x.name), text: e.text, sentAt: e.sentAt },
        r,
      );
    },
  };
}

/** Lines about a message's delivery printed below it: it failed, it waits for someone, it got there late. */
export function deliveryLines({ paint }: Style) {
  const what = (count: number, text: string | undefined): string =>
    count === 1 && text !== undefined ? quote(text) : `${count} ${count === 1 ? "message" : "messages"}`;
  return {
    /** "✗ dave: recipient could not decrypt it": failed for good, optionally naming the message. */
    failure(peer: string, reason: string, message?: string): string {
      const line = paint("red", `✗ ${sanitize(peer)}: ${sanitize(reason)}`);
      return message === undefined ? line : `${line} ${paint("gray", `— ${message}`)}`;
    },

    /**
     * Messages that now wait for a peer that stopped answering (or quit): one line for a burst of them, naming
     * the message when there is one.
     */
    waiting(peer: string, reason: string, count: number, text?: string): string {
      const who = sanitize(peer);
      const verb = count === 1 ? "waits" : "wait";
      return paint(
        "yellow",
        `⋯ ${what(count, text)} ${verb} for ${who} (${sanitize(reason)}); sent when ${who} is back`,
      );
    },

    /** Delivered after it had waited for the peer (offline delivery), or after a restart: one line per burst. */
    lateDelivery(peer: string, count: number, text: string | undefined, earlier: boolean): string {
      const when = earlier ? " sent earlier" : " that had waited";
      return `${paint("green", "✓")} ${paint("gray", `${sanitize(peer)} got ${what(count, text)}${when}`)}`;
    },
  };
}
