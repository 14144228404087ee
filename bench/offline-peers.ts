/**
 * Quiet toward peers that are not running (issue 23): alice, bob (in this process, over real UDP on
 * 127.0.0.1), and carol, as in the README's demo with three of ten users; the other seven never start. Their ports are held by sockets that count what arrives and
 * never answer, which from alice's side is a port where nobody listens. Alice sends 100 broadcasts, one every
 * 600 ms; the phase reports what reached the seven silent ports in the 60 s from all three running nodes (alice's
 * broadcasts and everyone's probes), against the limit of 100 KB for alice alone. (What it was before
 * presence-aware sending: bench/README.md.)
 */
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDirectory } from "../src/identity/directory.ts";
import { bulkRegister, DEFAULT_USERS } from "../src/identity/register.ts";
import { openNode } from "../src/node/open-node.ts";

export interface OfflinePeersResult {
  silentPeers: number;
  broadcasts: number;
  seconds: number;
  /** What reached the silent peers' ports in all, and as datagrams. */
  bytesToSilent: number;
  datagramsToSilent: number;
  /** Broadcasts bob showed, of `broadcasts`. */
  deliveredToRunning: number;
  limitBytes: number;
}

const LIMIT_BYTES = 100_000;

export async function offlinePeers(quick: boolean, log: (line: string) => void): Promise<OfflinePeersResult> {
  const seconds = quick ? 12 : 60;
  const broadcasts = 100;
  const dataDir = mkdtempSync(join(tmpdir(), "chatnode-bench-offline-"));
  const sinks: Socket[] = [];
  try {
    const basePort = 20_000 + Math.floor(Math.random() * 40_000);
    await bulkRegister({ dataDir, basePort });
    const [alice, bob, carol, ...silent] = DEFAULT_USERS;
    if (!alice || !bob || !carol) throw new Error("the demo users are missing");
    const directory = openDirectory(dataDir);
    let bytesToSilent = 0;
    let datagramsToSilent = 0;
    for (const user of silent) {
      const sink = createSocket("udp4");
      sink.on("message", (m) => {
        bytesToSilent += m.length;
        datagramsToSilent++;
      });
      await new Promise<void>((resolve, reject) => {
        sink.once("error", reject);
        sink.bind(directory.getUser(user.name)?.port ?? 0, "127.0.0.1", () => resolve());
      });
      sinks.push(sink);
    }
    const open = (u: { name: string; password: string }) =>
      openNode({ dataDir, username: u.name, password: u.password, ephemeral: true, closeGraceMs: 200 });
    const [a, b, c] = [await open(alice), await open(bob), await open(carol)];
    let shown = 0;
    b.on("message", () => shown++);
    for (const n of [a, b, c]) await n.start();
    const text = "x".repeat(200);
    const intervalMs = (seconds * 1000) / broadcasts;
    const started = Date.now();
    for (let i = 0; i < broadcasts; i++) {
      a.broadcast(`${i} ${text}`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, started + seconds * 1000 - Date.now())));
    const result: OfflinePeersResult = {
      silentPeers: silent.length,
      broadcasts,
      seconds,
      bytesToSilent,
      datagramsToSilent,
      deliveredToRunning: shown,
      limitBytes: LIMIT_BYTES,
    };
    await Promise.all([a.close(), b.close(), c.close()]);
    log(
      `  ${broadcasts} broadcasts in ${seconds} s with ${silent.length} peers not running: ${bytesToSilent} bytes ` +
        `(${datagramsToSilent} datagrams, from the three running nodes) reached their ports, ${((bytesToSilent / LIMIT_BYTES) * 100).toFixed(1)}% ` +
        `of the ${LIMIT_BYTES / 1000} KB limit; bob showed ${shown}/${broadcasts}`,
    );
    return result;
  } finally {
    for (const s of sinks) s.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
