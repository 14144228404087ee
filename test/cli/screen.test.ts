import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Screen } from "../../src/cli/screen.ts";

/** A terminal of `columns` that records what is written to it. */
function terminal(columns: number) {
  const writes: string[] = [];
  const out = {
    columns,
    isTTY: true,
    write(chunk: string, cb?: () => void) {
      writes.push(chunk);
      cb?.();
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { out, writes };
}

/** The rows a redraw moved the cursor up by: readline's moveCursor writes CSI <n> A. */
const rowsUp = (writes: string[]) =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the cursor-up sequence is the point
  writes.flatMap((w) => [...w.matchAll(/\u001b\[(\d+)A/g)].map((m) => Number(m[1])));

describe("the prompt redraw", () => {
  it("replaces a message of wide characters by moving up the rows the terminal wrapped it to", () => {
    for (const [text, rows] of [
      ["<bob> 🚀🚀🚀🚀🚀🚀", 2], // 6 + 12 columns on a 10-column terminal
      ["<bob> 👍🏽👍🏽", 1], // 6 + 4: one row, though it is 10 UTF-16 code units
      ["<bob> 👨‍👩‍👧👨‍👩‍👧👨‍👩‍👧", 2], // 6 + 6
      ["<bob> 日本語日本語日本語", 3], // 6 + 18 = 24 columns
    ] as const) {
      const { out, writes } = terminal(10);
      const screen = new Screen(out, true);
      screen.print(text, "m1");
      writes.length = 0;
      assert.equal(screen.replace("m1", "<bob> ✓"), true);
      assert.deepEqual(rowsUp(writes), [rows], text);
    }
  });

  it("erases the echoed input by the rows it took, emoji and East Asian text included", () => {
    const { out, writes } = terminal(10);
    const screen = new Screen(out, true);
    screen.eraseEcho("> ", "日本語日本語"); // 2 + 12 columns
    assert.deepEqual(rowsUp(writes), [2]);
  });

  it("does not redraw once the terminal was resized", () => {
    const { out } = terminal(10);
    const screen = new Screen(out, true);
    screen.print("<bob> 🚀", "m1");
    (out as { columns: number }).columns = 20;
    assert.equal(screen.replace("m1", "<bob> ✓"), false);
  });
});
