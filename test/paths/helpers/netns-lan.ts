/**
 * A LAN of network namespaces for the discovery tests: a "switch" namespace holding a bridge, and host
 * namespaces each joined to it by a veth pair, with 10.x addresses and a multicast route. Nothing is sent
 * anywhere else. `removeLan` deletes the namespaces (their veth ends and the bridge go with them); call it from
 * `after`, so that a failing test leaves nothing behind. Processes run inside with `ip netns exec`.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
const CLI = join(REPO, "src", "cli", "bin.ts");

/** Why namespaces cannot be made here, or false. */
export function netnsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return "needs root to make network namespaces";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch {
    return "needs iproute2 (`ip netns`)";
  }
  return false;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

export interface Lan {
  /** Namespace and address of each host, by the name given. */
  hosts: Map<string, { ns: string; address: string }>;
  namespaces: string[];
}

/** Makes the switch and one host per name (at most 9). Namespace names carry `tag`, so parallel runs differ. */
export function makeLan(tag: string, names: readonly string[]): Lan {
  const subnet = `10.214.${(Number(tag) % 250) + 1}`;
  const sw = `cl${tag}sw`;
  const lan: Lan = { hosts: new Map(), namespaces: [sw] };
  ip("netns", "add", sw);
  ip("-n", sw, "link", "add", "br0", "type", "bridge");
  ip("-n", sw, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"); // flood multicast to every port
  ip("-n", sw, "link", "set", "br0", "up");
  for (const [i, name] of names.entries()) {
    const ns = `cl${tag}h${i}`;
    const [hostEnd, switchEnd] = [`cl${tag}v${i}`, `cl${tag}s${i}`];
    const address = `${subnet}.${i + 1}`;
    lan.namespaces.push(ns);
    ip("netns", "add", ns);
    ip("link", "add", hostEnd, "type", "veth", "peer", "name", switchEnd);
    ip("link", "set", hostEnd, "netns", ns);
    ip("link", "set", switchEnd, "netns", sw);
    ip("-n", sw, "link", "set", switchEnd, "master", "br0", "up");
    ip("-n", ns, "addr", "add", `${address}/24`, "dev", hostEnd);
    ip("-n", ns, "link", "set", "lo", "up");
    ip("-n", ns, "link", "set", hostEnd, "up");
    // Multicast leaves by the route to its group; the host has no default route.
    ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", hostEnd);
    lan.hosts.set(name, { ns, address });
  }
  return lan;
}

export function removeLan(lan: Lan | undefined): void {
  for (const ns of lan?.namespaces ?? []) {
    try {
      ip("netns", "del", ns);
    } catch {
      // never made, or already gone
    }
  }
}

export type JsonEvent = { event: string } & Record<string, unknown>;

/** A process inside a namespace that writes one JSON object per stdout line (chatnode --json, the forger). */
export class NsProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly events: (JsonEvent & { at: number })[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  /** performance.now() at spawn, to measure from. */
  readonly startedAt = performance.now();
  private buffer = "";

  constructor(ns: string, args: readonly string[]) {
    const env = { ...process.env };
    delete env.CHATNODE_PASSWORD;
    delete env.CHATNODE_HOME;
    this.child = spawn("ip", ["netns", "exec", ns, process.execPath, "--import", "tsx", ...args], {
      cwd: REPO,
      env,
      stdio: "pipe",
    });
    this.child.stdout.setEncoding("utf8");
    this.child.stderr.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        try {
          this.events.push({ ...(JSON.parse(line) as JsonEvent), at: performance.now() });
        } catch {
          // not an event
        }
      }
    });
    this.child.stderr.on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.child.stdin.on("error", () => {});
    this.exited = new Promise((done) => this.child.on("exit", (code) => done(code)));
  }

  /** The chat client in `ns`: `args` after the CLI's path. */
  static chat(ns: string, args: readonly string[]): NsProcess {
    return new NsProcess(ns, [CLI, ...args]);
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** The first event matching `predicate`; rejects after `timeoutMs` or when the process exits. */
  async waitFor(
    predicate: (e: JsonEvent) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<JsonEvent & { at: number }> {
    const deadline = performance.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => {
      exited = true;
    });
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      if (exited || performance.now() > deadline)
        throw new Error(
          `${exited ? "exited" : `timed out after ${timeoutMs} ms`} waiting for ${what}; last events: ${JSON.stringify(this.events.slice(-12))}; stderr: ${this.stderr.slice(-2000)}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Asks a chat client to quit, then kills it if it is still there after a while. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send("/q");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): Promise<unknown> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    return this.exited;
  }
}
