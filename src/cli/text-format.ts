/**
 * Plain-text pieces of what the interactive client shows, without colour: making network text safe to print,
 * times, name lists, quotes and abbreviations of messages, the fault settings.
 */
import type { FaultConfig } from "../faults/plan.ts";
import { formatPercent } from "../faults/ppm.ts";

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

/** "dave", "dave and erin", "dave, erin, frank and 4 more". */
export function listNames(names: readonly string[], shown = 3): string {
  if (names.length <= 1) return names[0] ?? "";
  if (names.length <= shown) return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
  return `${names.slice(0, shown).join(", ")} and ${names.length - shown} more`;
}

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
