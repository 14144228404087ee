/** Several real ChatNodes in this process on 127.0.0.1, on ports the OS picked, with real crypto. */

import { createSocket } from "node:dgram";
import { generateSecretKeys, peerIdOf, publicKeysOf, type SecretKeys } from "../../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../../src/crypto/port.ts";
import { ChatNode } from "../../src/node/chat-node.ts";
import type { ChatNodeOptions, Contact } from "../../src/node/types.ts";
import { keySourceOf } from "../../src/session/key-source.ts";
import { createMemoryStore } from "../../src/storage/memory.ts";
import type { Store } from "../../src/storage/store.ts";

/** Ports that were free a moment ago: bind port 0 on each, note the port, release them all. */
export async function freePorts(count: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const s = createSocket("udp4");
      await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
      return s;
    }),
  );
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

export interface TestUser {
  contact: Contact;
  secrets: SecretKeys;
}

export async function makeUsers(names: string[]): Promise<TestUser[]> {
  const ports = await freePorts(names.length);
  return names.map((name, i) => {
    const secrets = generateSecretKeys();
    const id = peerIdOf(publicKeysOf(secrets));
    return { secrets, contact: { id, name, host: "127.0.0.1", port: ports[i] as number } };
  });
}

export function nodeFor(
  user: TestUser,
  users: TestUser[],
  extra: Partial<ChatNodeOptions> & { store?: Store } = {},
): ChatNode {
  const directory = staticKeyDirectory(users.map((u) => publicKeysOf(u.secrets)));
  const crypto = createCryptoPort({ identity: user.secrets, directory });
  return new ChatNode({
    self: user.contact,
    contacts: users.map((u) => u.contact),
    crypto,
    sessionKeys: keySourceOf(user.secrets, directory),
    store: extra.store ?? createMemoryStore(),
    ephemeral: extra.store === undefined,
    closeGraceMs: 200,
    ...extra,
  });
}

/** Resolves when `predicate` holds, polling on the event loop; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
