import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

/** scrypt cost for tests: 2^10 is ~1 ms instead of ~150 ms. One test per file uses the default on purpose. */
export const TEST_SCRYPT_N = 2 ** 10;

/** A fresh data directory path (not yet created) under a temp root removed after the file's tests. */
export function tempDataDir(label: string): string {
  const root = mkdtempSync(join(tmpdir(), `chatnode-${label}-`));
  after(() => rmSync(root, { recursive: true, force: true }));
  return join(root, "home");
}

/** Every file under `dir` with its bytes and mtime: to prove an operation changed nothing. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      const stat = statSync(full);
      if (stat.isDirectory()) walk(full);
      else out.set(full, `${stat.mtimeMs}:${stat.mode}:${readFileSync(full, "base64")}`);
    }
  };
  walk(dir);
  return out;
}

export function mode(path: string): number {
  return statSync(path).mode & 0o777;
}
