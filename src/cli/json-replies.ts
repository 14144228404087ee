/**
 * `--json` answers every command in the order the commands came, whatever order they complete in: a send is
 * answered by its `queued` event, which comes once the message is stored (after the group commit), while a query
 * is answered at once; without this queue, a `/peers` typed after a message would be answered before it.
 *
 * Each reply carries the command's `line` (1-based, counting every line read as a command, blank ones too) and,
 * when the caller gave one, its `tag`. Events that answer no command (messages, receipts, presence) carry
 * `"async": true` instead, and are written as they happen.
 */

export type Fields = Record<string, unknown>;

interface Slot {
  line: number;
  tag: string | number | undefined;
  reply: { event: string; fields: Fields } | undefined;
}

export class ReplyQueue {
  private readonly slots: Slot[] = [];

  constructor(private readonly write: (event: string, fields: Fields) => void) {}

  /** Holds the place of the command on `line`; its reply is written once every earlier one has been. */
  open(line: number, tag: string | number | undefined): Slot {
    const slot: Slot = { line, tag, reply: undefined };
    this.slots.push(slot);
    return slot;
  }

  answer(slot: Slot, event: string, fields: Fields = {}): void {
    if (slot.reply) return;
    slot.reply = { event, fields };
    this.flush();
  }

  /** Answers every command still waiting with an error (the node closed before it completed), in order. */
  abandon(message: string, except?: Slot): void {
    for (const slot of [...this.slots])
      if (!slot.reply && slot !== except)
        slot.reply = { event: "error", fields: { message, code: "closed" } };
    this.flush();
  }

  private flush(): void {
    for (let head = this.slots[0]; head?.reply; head = this.slots[0]) {
      this.slots.shift();
      const { event, fields } = head.reply;
      this.write(event, { ...fields, line: head.line, ...(head.tag !== undefined && { tag: head.tag }) });
    }
  }
}

/** The longest tag a caller may give: it is echoed on every reply, so it stays small. */
const TAG_MAX = 200;

export type ParsedInput =
  | { ok: true; text: string; tag: string | number | undefined }
  | { ok: false; message: string; tag: string | number | undefined };

/**
 * A line of input: a command in the interactive syntax, or a JSON object `{"cmd": "...", "tag": "..."}` that
 * carries the same command with a tag of the caller's choosing. A line that starts with `{` must be such an
 * object: a broken one is an error, never a broadcast (to broadcast a line that starts with `{`, use `/b`).
 */
export function parseInput(line: string): ParsedInput {
  if (!line.trimStart().startsWith("{")) return { ok: true, text: line, tag: undefined };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return {
      ok: false,
      message:
        'a line starting with "{" must be a JSON object like {"cmd":"/peers","tag":"a1"}; to broadcast it, start it with /b',
      tag: undefined,
    };
  }
  const o = value as { cmd?: unknown; tag?: unknown };
  const tag =
    (typeof o?.tag === "string" && o.tag.length <= TAG_MAX) ||
    (typeof o?.tag === "number" && Number.isFinite(o.tag))
      ? (o.tag as string | number)
      : undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value) || typeof o.cmd !== "string")
    return {
      ok: false,
      message: 'a JSON command needs a string "cmd", e.g. {"cmd":"/peers","tag":"a1"}',
      tag,
    };
  if (o.tag !== undefined && tag === undefined)
    return {
      ok: false,
      message: `"tag" must be a string of at most ${TAG_MAX} characters or a number`,
      tag: undefined,
    };
  return { ok: true, text: o.cmd, tag };
}
