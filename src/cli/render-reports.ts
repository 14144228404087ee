/** What the client's commands print: /peers, /stats, /verify, /help. */
import { shortenFingerprint } from "../identity/fingerprint.ts";
import type { NodeStats, PeerView } from "../node/types.ts";
import { COMMANDS } from "./commands.ts";
import type { Style } from "./render-style.ts";
import { formatAgo } from "./text-format.ts";

/** One row per peer, aligned columns; `list` is not empty. */
export function peersTable({ paint, name }: Style, list: readonly PeerView[], now: number): string {
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
}

export function statsTable({ paint }: Style, s: NodeStats): string {
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
    ["sessions", sessionsLine(s)],
    [
      "faults",
      `dropped ${f.droppedOut} out / ${f.droppedIn} in, duplicated ${f.duplicated}, bad signatures ${f.badSignatures}, ` +
        `wrong keys ${f.wrongKeys}, delayed ${f.delayed}, blackholed ${f.blackholed}`,
    ],
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${paint("gray", k.padEnd(w))}  ${v}`).join("\n");
}

/** The session layer: handshakes, keys replaced and erased, and what it refused before the engine saw it. */
function sessionsLine(s: NodeStats): string {
  const x = s.sessions;
  const refused = Object.entries(x.refused)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return (
    `${x.established} established, ${x.handshakesStarted} handshakes started, ${x.keysErased} keys erased; ` +
    `refused ${refused === "" ? "0" : refused}`
  );
}

/** A peer's safety fingerprint, ours beside it unless `mine` is undefined, and how to compare them. */
export function verifyText(
  { paint, name, self }: Style,
  peer: string,
  fingerprint: string | undefined,
  mine: string | undefined,
): string {
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
}

/**
 * Our contact code on a line of its own, uncoloured and unindented, so that copying the line copies the code and
 * nothing else; then the fingerprint the receiver should compare.
 */
export function whoamiText(
  { paint, name }: Style,
  me: string,
  code: string | undefined,
  fingerprint: string | undefined,
): string {
  if (code === undefined || fingerprint === undefined)
    return paint("red", `✗ ${me}'s entry in the directory cannot be read`);
  return [
    `${name(me)}'s contact code (give it to whoever should reach you: \`chatnode contact import <code>\`):`,
    code,
    `fingerprint ${paint("bold", fingerprint)}`,
    paint(
      "gray",
      "They should compare the fingerprint with you over a channel you trust (in person, a call).",
    ),
  ].join("\n");
}

export function helpText({ paint }: Style): string {
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
}
