/** The scenario nodes' UDP ports: which are taken, a free range, and the error of a port taken meanwhile. */
import { createSocket } from "node:dgram";
import { ChatNodeError } from "../node/errors.ts";
import { ScenarioError } from "./checks.ts";

/** Which of `ports` cannot be bound on `host` right now (UDP). */
export async function busyPorts(host: string, ports: readonly number[]): Promise<number[]> {
  const results = await Promise.all(
    ports.map(
      (port) =>
        new Promise<number | undefined>((resolve) => {
          const socket = createSocket("udp4");
          socket.once("error", () => {
            socket.close();
            resolve(port);
          });
          socket.bind(port, host, () => socket.close(() => resolve(undefined)));
        }),
    ),
  );
  return results.filter((p): p is number => p !== undefined);
}

/** A base port whose `count` consecutive UDP ports were all free a moment ago. */
export async function findFreeBasePort(host: string, count: number, attempts = 40): Promise<number> {
  for (let i = 0; i < attempts; i++) {
    const base = 20_000 + Math.floor(Math.random() * (40_000 - count));
    const ports = Array.from({ length: count }, (_, k) => base + k);
    if ((await busyPorts(host, ports)).length === 0) return base;
  }
  throw new ScenarioError(`found no ${count} consecutive free UDP ports on ${host}`);
}

export function isPortInUse(error: unknown): boolean {
  return error instanceof ChatNodeError && error.code === "PORT_IN_USE";
}
