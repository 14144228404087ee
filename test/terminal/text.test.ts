import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { stripVTControlCharacters } from "node:util";
import { colorEnabled, displayWidth, paint, rowsOf } from "../../src/terminal/text.ts";

describe("colorEnabled", () => {
  it("is on only for a terminal without NO_COLOR and without --no-color", () => {
    assert.equal(colorEnabled({ isTTY: true, env: {} }), true);
    assert.equal(colorEnabled({ isTTY: false, env: {} }), false);
    assert.equal(colorEnabled({ isTTY: true, env: { NO_COLOR: "1" } }), false);
    assert.equal(
      colorEnabled({ isTTY: true, env: { NO_COLOR: "" } }),
      true,
      "an empty NO_COLOR does not count",
    );
    assert.equal(colorEnabled({ isTTY: true, env: { TERM: "dumb" } }), false);
    assert.equal(colorEnabled({ isTTY: true, env: {}, flag: false }), false);
    assert.equal(colorEnabled({ isTTY: true, env: {}, flag: true }), true);
  });

  it("honours FORCE_COLOR as Node does: on through a pipe, off for 0 and false; --no-color still wins", () => {
    for (const value of ["1", "2", "3", "true", ""])
      assert.equal(colorEnabled({ isTTY: false, env: { FORCE_COLOR: value } }), true, `FORCE_COLOR=${value}`);
    for (const value of ["0", "false"])
      assert.equal(colorEnabled({ isTTY: true, env: { FORCE_COLOR: value } }), false, `FORCE_COLOR=${value}`);
    assert.equal(colorEnabled({ isTTY: false, env: { FORCE_COLOR: "1", NO_COLOR: "1" } }), true);
    assert.equal(colorEnabled({ isTTY: true, env: { FORCE_COLOR: "1" }, flag: false }), false);
  });
});

describe("paint", () => {
  it("writes the escape codes it is told to, whatever stdout is, and none with colour off", () => {
    assert.equal(paint(true, "red", "x"), "\u001b[31mx\u001b[39m");
    assert.equal(paint(true, ["bold", "green"], "x"), "\u001b[1m\u001b[32mx\u001b[39m\u001b[22m");
    assert.equal(paint(false, ["bold", "green"], "x"), "x");
    assert.equal(stripVTControlCharacters(paint(true, ["bold", "green"], "x")), "x");
  });
});

describe("displayWidth", () => {
  it("counts columns as a terminal draws them", () => {
    const cases: [string, number][] = [
      ["abc", 3],
      ["\u001b[31mabc\u001b[0m", 3],
      ["🚀", 2],
      ["👍🏽", 2],
      ["👨‍👩‍👧", 2],
      ["日本語", 6],
      ["한국어", 6],
      ["ｶﾀｶﾅ", 4],
      ["e\u0301", 1],
      ["", 0],
    ];
    for (const [text, width] of cases) assert.equal(displayWidth(text), width, JSON.stringify(text));
  });

  it("counts the rows a block wraps to", () => {
    assert.equal(rowsOf("abc", 80), 1);
    assert.equal(rowsOf("x".repeat(80), 80), 1);
    assert.equal(rowsOf("x".repeat(81), 80), 2);
    assert.equal(rowsOf("a\nb\n", 80), 3);
    assert.equal(rowsOf("🚀".repeat(40), 80), 1);
    assert.equal(rowsOf("🚀".repeat(41), 80), 2);
    assert.equal(rowsOf("👨‍👩‍👧".repeat(6), 10), 2);
  });
});
