/**
 * How the interactive client looks: pure functions from values to strings, with colour or without. Colour is on
 * only for a terminal, without NO_COLOR in the environment and without --no-color; with it off no escape code is
 * ever written. Text that came from the network goes through `sanitize` first, so a peer cannot move the cursor,
 * change colours or reorder text with bidi controls on our screen.
 */
import type { FaultConfig } from "../faults/plan.ts";
import { formatPercent } from "../faults/ppm.ts";
import { shortenFingerprint } from "../identity/fingerprint.ts";
import type { NodeStats, PeerView } from "../node/types.ts";
import { displayWidth, type Format, paint as paintIf } from "../terminal/text.ts";
import { COMMANDS } from "./commands.ts";

// ---- colour ---------------------------------------------------------------------------------------------------

/**
 * Name colours: no red (errors) and no yellow (warnings), so a name never looks like either; no gray (timestamps
 * and receipts in flight).
 */
export const NAME_PALETTE: readonly Format[] = [
  "green",
  "blue",
  "magenta",
  "cyan",
  "greenBright",
  "blueBright",
  "magentaBright",
  "cyanBright",
  "white",
];

/** FNV-1a over the name: the same name gets the same colour in every session and every window. */
export function nameColorIndex(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % NAME_PALETTE.length;
}

// ---- text from the network ------------------------------------------------------------------------------------

/**
 * Makes untrusted text safe to print: C0 controls become caret notation (ESC is "^["), DEL, C1 controls and bidi
 * overrides become U+FFFD, a tab becomes spaces, CR is dropped. Newlines are kept (the caller indents continuation lines).
 */
export function sanitize(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (ch === "\n") out += ch;
    else if (ch === "\r")
      continue; // CRLF line ends; a lone CR would overwrite the line start
    else if (ch === "\t") out += "    ";
    else if (cp < 0x20) out += `^${String.fromCharCode(cp + 0x40)}`;
    else if (cp === 0x7f || (cp >= 0x80 && cp <= 0x9f)) out += "\ufffd";
    else if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) out += "\ufffd";
    else out += ch;
  }
  return out;
}

// ---- time -----------------------------------------------------------------------------------------------------

/** Local wall-clock time as HH:MM. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** "just now", "12s ago", "5m ago", "3h ago", "2d ago"; "never" for undefined. */
export function formatAgo(then: number | undefined, now: number): string {
  if (then === undefined) return "never";
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 2) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

// ---- receipts -------------------------------------------------------------------------------------------------

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

/** "dave", "dave and erin", "dave, erin, frank and 4 more". */
export function listNames(names: readonly string[], shown = 3): string {
  if (names.length <= 1) return names[0] ?? "";
  if (names.length <= shown) return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  return `${names.slice(0, shown).join(", ")} and ${names.length - shown} more`;
}

// ---- the renderer ---------------------------------------------------------------------------------------------

export interface RenderOptions {
  color: boolean;
  /** Our own user name. */
  self: string;
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

/** Sent this long after it was written (offline delivery, a slow network or a skewed clock): say when. */
const LATE_MS = 60_000;
const TIME_WIDTH = 6; // "HH:MM "

export type Renderer = ReturnType<typeof createRenderer>;

export function createRenderer(options: RenderOptions) {
  const { color, self } = options;
  const paint = (format: Format, text: string): string => paintIf(color, format, text);
  const name = (who: string): string =>
    paint(who === self ? "bold" : (NAME_PALETTE[nameColorIndex(who)] as Format), who);
  const time = (ms: number): string => paint("gray", formatTime(ms));
  /** Continuation lines of a multi-line message line up under its first line's text. */
  const body = (text: string, indent: number): string =>
    sanitize(text)
      .split("\n")
      .join(`\n${" ".repeat(indent)}`);

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

  const headOf = (kind: "broadcast" | "private", from: string, to: string): string => {
    if (kind === "broadcast") return `<${name(from)}>`;
    const who = (n: string) => (n === self ? paint("magenta", "you") : name(n));
    return `${paint("magenta", "[")}${who(from)} ${paint("magenta", "→")} ${who(to)}${paint("magenta", "]")}`;
  };
  const plainHeadWidth = (kind: "broadcast" | "private", from: string, to: string): number =>
    kind === "broadcast"
      ? from.length + 3
      : displayWidth(`[${from === self ? "you" : from} → ${to === self ? "you" : to}] `);

  const self_ = {
    color,
    paint,
    name,
    receipt,

    prompt(): string {
      return `${paint("bold", `[${self}]`)} `;
    },

    /** A message someone sent us. */
    incoming(m: IncomingView): string {
      const head = headOf(m.kind, m.from, self);
      const late =
        Math.abs(m.receivedAt - m.sentAt) > LATE_MS
          ? ` ${paint("gray", `(sent ${formatTime(m.sentAt)})`)}`
          : "";
      const text = body(m.text, TIME_WIDTH + plainHeadWidth(m.kind, m.from, self));
      return `${time(m.receivedAt)} ${head} ${text}${late}`;
    },

    /** A message we sent, with its delivery receipt. */
    outgoing(m: OutgoingView, r: Receipt): string {
      const to = m.kind === "private" ? (m.to[0] ?? "?") : "";
      const head = headOf(m.kind, self, to);
      const text = body(m.text, TIME_WIDTH + plainHeadWidth(m.kind, self, to));
      return `${time(m.sentAt)} ${head} ${text}  ${receipt(r)}`;
    },

    /** A receipt for a message that is no longer the last line: one compact line. */
    receiptLine(m: OutgoingView, r: Receipt): string {
      const target = m.kind === "private" ? `to ${m.to[0] ?? "?"}` : "to everyone";
      return `${receipt(r)} ${paint("gray", `${target}: ${quote(m.text)}`)}`;
    },

    /** "✗ dave: recipient could not decrypt it": failed for good, optionally naming the message. */
    failure(peer: string, reason: string, what?: string): string {
      const line = paint("red", `✗ ${sanitize(peer)}: ${sanitize(reason)}`);
      return what === undefined ? line : `${line} ${paint("gray", `— ${what}`)}`;
    },

    /**
     * Messages that now wait for a peer that stopped answering (or quit): one line for a burst of them, naming
     * the message when there is one.
     */
    waiting(peer: string, reason: string, count: number, text?: string): string {
      const who = sanitize(peer);
      const what =
        count === 1 && text !== undefined ? quote(text) : `${count} ${count === 1 ? "message" : "messages"}`;
      const verb = count === 1 ? "waits" : "wait";
      return paint("yellow", `⋯ ${what} ${verb} for ${who} (${sanitize(reason)}); sent when ${who} is back`);
    },

    /** Delivered after it had waited for the peer (offline delivery), or after a restart: one line per burst. */
    lateDelivery(peer: string, count: number, text: string | undefined, earlier: boolean): string {
      const what =
        count === 1 && text !== undefined ? quote(text) : `${count} ${count === 1 ? "message" : "messages"}`;
      const when = earlier ? " sent earlier" : " that had waited";
      return `${paint("green", "✓")} ${paint("gray", `${sanitize(peer)} got ${what}${when}`)}`;
    },

    notice(text: string): string {
      return paint("cyan", `-!- ${text}`);
    },

    warning(text: string): string {
      return paint("yellow", `⚠ ${text}`);
    },

    error(text: string): string {
      return paint("red", `✗ ${text}`);
    },

    rejected(reason: string, from: string | undefined, count: number): string {
      const times = count > 1 ? ` (×${count})` : "";
      // A stranger, or a contact not imported yet: say how to fix it.
      if (reason === "unknown-sender")
        return paint(
          "yellow",
          `⚠ unknown sender ${sanitize(from ?? "?")}: import their contact (chatnode contact import <their card>)${times}`,
        );
      const who = from === undefined ? "" : ` from ${sanitize(from)}`;
      return paint("yellow", `⚠ rejected${who}: ${reason}${times}`);
    },

    peers(list: readonly PeerView[], now: number): string {
      if (list.length === 0) return self_.notice("no other users in the directory");
      const rows = list.map((p) => [
        p.name,
        p.online ? "online" : "offline",
        formatAgo(p.lastSeen, now),
        p.rttMs === undefined ? "-" : `${Math.round(p.rttMs)} ms`,
        p.fingerprint === undefined ? p.id : shortenFingerprint(p.fingerprint),
        p.address,
        p.inFlight + p.queued + p.parked > 0 ? `${p.inFlight + p.queued + p.parked} pending` : "",
      ]);
      const header = ["name", "status", "last seen", "rtt", "fingerprint", "address", ""];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
      // Trailing empty cells are dropped before styling, so no line ends in (coloured) padding.
      const line = (cells: string[], styled: (i: number, s: string) => string) => {
        const kept = [...cells];
        while (kept.length > 0 && kept.at(-1) === "") kept.pop();
        return kept
          .map((c, i) => styled(i, i === kept.length - 1 ? c : c.padEnd(widths[i] as number)))
          .join("  ");
      };
      const out = [line(header, (_i, s) => paint("gray", s))];
      for (const [k, r] of rows.entries()) {
        const online = list[k]?.online === true;
        out.push(
          line(r, (i, s) => {
            if (i === 0) return name(s.trimEnd()) + s.slice(s.trimEnd().length);
            if (i === 1) return paint(online ? "green" : "gray", s);
            return s;
          }),
        );
      }
      return out.join("\n");
    },

    stats(s: NodeStats): string {
      const rejected = Object.entries(s.rejected)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      const f = s.faults;
      const lines: [string, string][] = [
        ["datagrams", `${s.datagramsIn} in, ${s.datagramsOut} out (${s.bytesIn} / ${s.bytesOut} bytes)`],
        [
          "frames",
          `${s.framesSent} sent, ${s.retransmits} retransmitted (${s.earlyRetransmits} early), ${s.framesAcked} acked`,
        ],
        ["acks", `${s.acksSent} sent, ${s.acksReceived} received`],
        ["hellos", `${s.hellosSent} sent, ${s.hellosReceived} received`],
        [
          "messages",
          `${s.messagesDelivered} received, ${s.messagesAcked} acknowledged, ${s.messagesFailed} failed, ${s.pending} pending`,
        ],
        ["duplicates", String(s.duplicates)],
        ["rejected", rejected === "" ? "0" : rejected],
        [
          "faults",
          `dropped ${f.droppedOut} out / ${f.droppedIn} in, duplicated ${f.duplicated}, bad signatures ${f.badSignatures}, ` +
            `wrong keys ${f.wrongKeys}, delayed ${f.delayed}, blackholed ${f.blackholed}`,
        ],
      ];
      const w = Math.max(...lines.map(([k]) => k.length));
      return lines.map(([k, v]) => `${paint("gray", k.padEnd(w))}  ${v}`).join("\n");
    },

    faults(f: FaultConfig): string {
      return paint("cyan", `-!- faults: ${describeFaults(f)}`);
    },

    verify(peer: string, fingerprint: string | undefined, mine: string | undefined): string {
      const lines = [
        `${name(peer)}'s safety fingerprint:`,
        `    ${paint("bold", fingerprint ?? "(unknown: not in the directory)")}`,
      ];
      if (mine !== undefined) lines.push(`yours (${name(self)}):`, `    ${paint("bold", mine)}`);
      lines.push(
        paint(
          "gray",
          `Compare it with what ${peer} sees as theirs, over a channel you trust (in person, a call). If it differs, do not trust this contact.`,
        ),
      );
      return lines.join("\n");
    },

    help(): string {
      const w = Math.max(...COMMANDS.map((c) => c.usage.length));
      const lines = COMMANDS.map((c) => {
        const aliases =
          c.aliases.length > 0 ? paint("gray", ` (also ${c.aliases.map((a) => `/${a}`).join(" ")})`) : "";
        return `  ${paint("bold", c.usage.padEnd(w))}  ${c.summary}${aliases}`;
      });
      return [
        "Commands:",
        ...lines,
        paint(
          "gray",
          "A line without a leading / is a broadcast; start it with // to broadcast a line that begins with /.",
        ),
        paint("gray", "Tab completes commands and user names."),
      ].join("\n");
    },

    /**
     * A stored history entry (see Store.history); `nameOf` maps key ids to names. `brief` (the replay at start)
     * shortens a long text to its first lines: a 60 KB message would push everything else off the screen.
     */
    historyEntry(e: HistoryView, brief = false): string {
      if (brief) e = { ...e, text: abbreviate(e.text) };
      if (e.direction === "in") {
        return self_.incoming({
          from: e.from,
          kind: e.kind,
          text: e.text,
          sentAt: e.sentAt,
          receivedAt: e.receivedAt,
        });
      }
      const r: Receipt = {
        kind: e.kind,
        total: e.recipients.length,
        delivered: e.recipients.filter((x) => x.state === "delivered").length,
        failed: e.recipients.filter((x) => x.state === "failed").length,
        // Stored history does not know who is online now: a recipient not reached yet shows as not delivered.
        waiting: [],
      };
      return self_.outgoing(
        { kind: e.kind, to: e.recipients.map((x) => x.name), text: e.text, sentAt: e.sentAt },
        r,
      );
    },

    rule(label: string): string {
      return paint("gray", `── ${label} ──`);
    },
  };
  return self_;
}

/** A history entry with key ids already turned into names. */
export type HistoryView =
  | {
      direction: "in";
      from: string;
      kind: "broadcast" | "private";
      text: string;
      sentAt: number;
      receivedAt: number;
    }
  | {
      direction: "out";
      kind: "broadcast" | "private";
      text: string;
      sentAt: number;
      recipients: { name: string; state: "pending" | "delivered" | "failed" }[];
    };

/** Shown of a long message in the replay at start: at most this many lines, and this many characters. */
const BRIEF_LINES = 3;
const BRIEF_CHARS = 300;

/** The first lines of a long text, and what is left out: "… (61,440 more characters; /history shows it all)". */
export function abbreviate(text: string): string {
  const lines = text.split("\n");
  let kept = lines.slice(0, BRIEF_LINES).join("\n");
  if (kept.length > BRIEF_CHARS) kept = [...kept].slice(0, BRIEF_CHARS).join("");
  if (kept.length === text.length) return text;
  const left = text.length - kept.length;
  return `${kept}… (${left.toLocaleString("en-US")} more characters; /history shows it all)`;
}

/** A short quote of a message for a receipt line: first line, at most 40 characters. */
export function quote(text: string): string {
  const lines = sanitize(text).split("\n");
  const chars = [...(lines[0] ?? "")];
  if (chars.length > 40) return `"${chars.slice(0, 39).join("")}…"`;
  return `"${chars.join("")}${lines.length > 1 ? "…" : ""}"`;
}

export function describeFaults(f: FaultConfig): string {
  const parts: string[] = [];
  const pct = formatPercent;
  if (f.blackhole) parts.push("blackhole on");
  if (f.lossOutPpm > 0 && f.lossOutPpm === f.lossInPpm) parts.push(`loss ${pct(f.lossOutPpm)}`);
  else {
    if (f.lossOutPpm > 0) parts.push(`loss-out ${pct(f.lossOutPpm)}`);
    if (f.lossInPpm > 0) parts.push(`loss-in ${pct(f.lossInPpm)}`);
  }
  if (f.duplicatePpm > 0) parts.push(`duplicate ${pct(f.duplicatePpm)}`);
  if (f.badSignaturePpm > 0) parts.push(`bad-signature ${pct(f.badSignaturePpm)}`);
  if (f.wrongKeyPpm > 0) parts.push(`wrong-key ${pct(f.wrongKeyPpm)}`);
  if (f.delayMs > 0) parts.push(`delay ${f.delayMs} ms`);
  if (f.jitterMs > 0) parts.push(`jitter ${f.jitterMs} ms`);
  return parts.length === 0 ? "none" : parts.join(", ");
}
