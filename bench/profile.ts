/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`): self and inclusive time per function, heaviest first.
 * `tsx bench/profile.ts <file.cpuprofile>... [--top N]` prints a table; run.ts --profile uses summarizeProfile.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  selfMs: number;
  totalMs: number;
  selfPct: number;
  totalPct: number;
}

function label(f: CallFrame): string {
  const where = f.url ? `${basename(f.url.replace(/^file:\/\//, ""))}:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
}

/** Self and inclusive ms per function label, with idle and program time left out of the percentages. */
export function summarizeProfile(path: string): { rows: ProfileRow[]; busyMs: number; totalMs: number } {
  const p = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busy = 0;
  let all = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    all += us;
    const name = node.callFrame.functionName;
    if (name === "(idle)" || name === "(program)") continue;
    busy += us;
    const l = label(node.callFrame);
    self.set(l, (self.get(l) ?? 0) + us);
    // Inclusive: credit every distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const cl = label(n.callFrame);
      if (seen.has(cl)) continue;
      seen.add(cl);
      total.set(cl, (total.get(cl) ?? 0) + us);
    }
  }
  const rows = [...total.keys()].map((name) => ({
    name,
    selfMs: (self.get(name) ?? 0) / 1000,
    totalMs: (total.get(name) ?? 0) / 1000,
    selfPct: (100 * (self.get(name) ?? 0)) / Math.max(1, busy),
    totalPct: (100 * (total.get(name) ?? 0)) / Math.max(1, busy),
  }));
  return { rows, busyMs: busy / 1000, totalMs: all / 1000 };
}

export function formatProfile(path: string, top: number): string {
  const { rows, busyMs, totalMs } = summarizeProfile(path);
  const lines = [`${basename(path)}: busy ${busyMs.toFixed(0)} ms of ${totalMs.toFixed(0)} ms sampled`];
  lines.push("  self%  total%  function");
  const bySelf = [...rows].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  for (const r of bySelf)
    lines.push(`  ${r.selfPct.toFixed(1).padStart(5)}  ${r.totalPct.toFixed(1).padStart(6)}  ${r.name}`);
  lines.push("  -- inclusive --");
  const byTotal = [...rows].sort((a, b) => b.totalMs - a.totalMs).slice(0, top);
  for (const r of byTotal)
    lines.push(`  ${r.selfPct.toFixed(1).padStart(5)}  ${r.totalPct.toFixed(1).padStart(6)}  ${r.name}`);
  return lines.join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf("--top");
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const files = args.filter((a, i) => a !== "--top" && i !== topAt + 1);
  for (const f of files) console.log(formatProfile(f, top));
}
