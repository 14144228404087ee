/**
 * Peers described as plain JSON, to hand to a node in a child process (environment variable) and to rebuild its
 * crypto there. The secrets are test keys made for the run.
 */

import { generateSecretKeys, peerIdOf, publicKeysOf, type SecretKeys } from "../../../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../../../src/crypto/port.ts";
import type { CryptoPort } from "../../../src/engine/ports.ts";
import type { PeerId } from "../../../src/engine/types.ts";
import type { Contact } from "../../../src/node/types.ts";
import { keySourceOf, type SessionKeySource } from "../../../src/session/key-source.ts";

export interface PeerSpec {
  name: string;
  id: PeerId;
  host: string;
  port: number;
  ed25519Seed: string;
  x25519PrivateKey: string;
}

export function newPeerSpec(name: string, port: number, host = "127.0.0.1"): PeerSpec {
  const secrets = generateSecretKeys();
  return {
    name,
    id: peerIdOf(publicKeysOf(secrets)),
    host,
    port,
    ed25519Seed: Buffer.from(secrets.ed25519Seed).toString("hex"),
    x25519PrivateKey: Buffer.from(secrets.x25519PrivateKey).toString("hex"),
  };
}

export function secretsOf(p: PeerSpec): SecretKeys {
  return {
    ed25519Seed: Uint8Array.from(Buffer.from(p.ed25519Seed, "hex")),
    x25519PrivateKey: Uint8Array.from(Buffer.from(p.x25519PrivateKey, "hex")),
  };
}

export function contactOf(p: PeerSpec): Contact {
  return { id: p.id, name: p.name, host: p.host, port: p.port };
}

/** `self`'s crypto port, knowing every peer in `directory` (self included or not). */
export function cryptoFor(self: PeerSpec, directory: readonly PeerSpec[]): CryptoPort {
  return createCryptoPort({
    identity: secretsOf(self),
    directory: staticKeyDirectory(directory.map((p) => publicKeysOf(secretsOf(p)))),
  });
}

/** The session keys for `self` among `directory`, as the node's own directory would give them. */
export function sessionKeysFor(self: PeerSpec, directory: readonly PeerSpec[]): SessionKeySource {
  return keySourceOf(secretsOf(self), staticKeyDirectory(directory.map((p) => publicKeysOf(secretsOf(p)))));
}

/** The same peer as seen at another address (a proxy port, a new port after roaming). */
export function at(p: PeerSpec, port: number, host = p.host): PeerSpec {
  return { ...p, host, port };
}

/** The environment for a child process: the parent's, minus the test runner's marker (the child is no test). */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return { ...env, ...extra };
}
