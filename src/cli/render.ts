/**
 * How the interactive client looks: pure functions from values to strings, with colour or without. Colour is on
 * only for a terminal, without NO_COLOR in the environment and without --no-color; with it off no escape code is
 * ever written. Text that came from the network goes through `sanitize` first, so a peer cannot move the cursor,
 * change colours or reorder text with bidi controls on our screen.
 *
 * The pieces: render-style.ts (colours, names, message heads), render-messages.ts (messages and their receipts),
 * render-reports.ts (what /peers, /stats, /verify, /whoami and /help print), text-format.ts (the text without colour).
 */
import type { FaultConfig } from "../faults/plan.ts";
import type { NodeStats, PeerView } from "../node/types.ts";
import { deliveryLines, messageLines } from "./render-messages.ts";
import { helpText, peersTable, statsTable, verifyText, whoamiText } from "./render-reports.ts";
import { createStyle, type RenderOptions, type Style } from "./render-style.ts";
import { describeFaults, sanitize } from "./text-format.ts";

export type Renderer = ReturnType<typeof createRenderer>;

export function createRenderer(options: RenderOptions) {
  const style = createStyle(options);
  const { color, paint, name } = style;
  const notices = noticeLines(style);
  return {
    color,
    paint,
    name,
    ...messageLines(style),
    ...deliveryLines(style),
    ...notices,
    peers: (list: readonly PeerView[], now: number): string =>
      list.length === 0 ? notices.notice("no other users in the directory") : peersTable(style, list, now),
    stats: (s: NodeStats): string => statsTable(style, s),
    verify: (peer: string, fingerprint: string | undefined, mine: string | undefined): string =>
      verifyText(style, peer, fingerprint, mine),
    whoami: (me: string, code: string | undefined, fingerprint: string | undefined): string =>
      whoamiText(style, me, code, fingerprint),
    help: (): string => helpText(style),
  };
}

/** One-line notices: the prompt, notes, warnings, errors, refused datagrams, rules and the fault settings. */
function noticeLines({ paint, self }: Style) {
  return {
    prompt: (): string => `${paint("bold", `[${self}]`)} `,
    notice: (text: string): string => paint("cyan", `-!- ${text}`),
    warning: (text: string): string => paint("yellow", `⚠ ${text}`),
    error: (text: string): string => paint("red", `✗ ${text}`),
    rule: (label: string): string => paint("gray", `── ${label} ──`),
    faults: (f: FaultConfig): string => paint("cyan", `-!- faults: ${describeFaults(f)}`),

    rejected(reason: string, from: string | undefined, count: number): string {
      const times = count > 1 ? ` (×${count})` : "";
      // A stranger, or a contact not imported yet: say how to fix it.
      if (reason === "unknown-sender")
        return paint(
          "yellow",
          `⚠ unknown sender ${sanitize(from ?? "?")}: import their contact (chatnode contact import <their code>)${times}`,
        );
      const who = from === undefined ? "" : ` from ${sanitize(from)}`;
      return paint("yellow", `⚠ rejected${who}: ${reason}${times}`);
    },
  };
}
