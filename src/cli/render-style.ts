import { displayWidth, type Format, paint as paintIf } from "../terminal/text.ts";
import { formatTime, sanitize } from "./text-format.ts";

export interface RenderOptions {
  color: boolean;
  /** Our own user name. */
  self: string;
}

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

/** The styles every part of the renderer shares: colour on or off, and who "you" is. */
export interface Style {
  readonly color: boolean;
  readonly self: string;
  paint(format: Format, text: string): string;
  /** A user name in its colour; our own in bold. */
  name(who: string): string;
  time(ms: number): string;
  /** Sanitized text whose continuation lines line up under the first line's text, `indent` columns in. */
  body(text: string, indent: number): string;
  /** `<name>` for a broadcast, `[from → to]` for a private message, "you" for us. */
  head(kind: "broadcast" | "private", from: string, to: string): string;
  /** The columns `head(...)` and the space after it take, without colour codes. */
  headWidth(kind: "broadcast" | "private", from: string, to: string): number;
}

export function createStyle({ color, self }: RenderOptions): Style {
  const paint = (format: Format, text: string): string => paintIf(color, format, text);
  const name = (who: string): string =>
    paint(who === self ? "bold" : (NAME_PALETTE[nameColorIndex(who)] as Format), who);
  return {
    color,
    self,
    paint,
    name,
    time: (ms) => paint("gray", formatTime(ms)),
    body: (text, indent) =>
      sanitize(text)
        .split("\n")
        .join(`\n${" ".repeat(indent)}`),
    head(kind, from, to) {
      if (kind === "broadcast") return `<${name(from)}>`;
      const who = (n: string) => (n === self ? paint("magenta", "you") : name(n));
      return `${paint("magenta", "[")}${who(from)} ${paint("magenta", "→")} ${who(to)}${paint("magenta", "]")}`;
    },
    headWidth: (kind, from, to) =>
      kind === "broadcast"
        ? from.length + 3
        : displayWidth(`[${from === self ? "you" : from} → ${to === self ? "you" : to}] `),
  };
}
