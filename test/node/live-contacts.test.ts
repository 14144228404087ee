/**
 * Contacts change while a node runs, over real UDP: two machines (two data directories) that do not know each
 * other. A contact imported into the running node's directory takes effect at once (no restart): the node probes
 * the new contact, and what the contact had waiting arrives; a contact removed is refused from then on.
 *
 * A stranger is refused by the session layer, before the engine sees anything: its handshake names a static key
 * alice has not pinned (unknown-key). Removing a contact erases its session keys at once: its datagrams under the
 * old session then name an index alice no longer has (unknown-index), and its next handshake is a stranger's.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { exportContact, importContact } from "../../src/identity/contact.ts";
import { openDirectory } from "../../src/identity/directory.ts";
import { registerUser } from "../../src/identity/register.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import { openNode } from "../../src/node/open-node.ts";
import type { ContactChanges } from "../../src/node/types.ts";
import type { SessionRefusal } from "../../src/session/events.ts";
import { freePorts, until } from "../helpers/loopback-nodes.ts";

/** How many datagrams `node`'s session layer refused for `reason`. */
function refused(node: ChatNode, reason: SessionRefusal): number {
  return node.stats().sessions.refused[reason] ?? 0;
}

const root = mkdtempSync(join(tmpdir(), "chatnode-live-contacts-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("live contacts", { timeout: 60_000 }, () => {
  it("a contact imported, then removed, while the node runs takes effect at once", async () => {
    const [alicePort, davePort] = (await freePorts(2)) as [number, number];
    const aliceHome = join(root, "alice-machine");
    const daveHome = join(root, "dave-machine");
    await registerUser({
      dataDir: aliceHome,
      username: "alice",
      password: "pw-a",
      port: alicePort,
      scryptN: 2 ** 10,
    });
    await registerUser({
      dataDir: daveHome,
      username: "dave",
      password: "pw-d",
      port: davePort,
      scryptN: 2 ** 10,
    });
    // dave knows alice; alice does not know dave yet.
    importContact(openDirectory(daveHome), exportContact(openDirectory(aliceHome), "alice"));
    const alice = await openNode({
      dataDir: aliceHome,
      username: "alice",
      password: "pw-a",
      closeGraceMs: 50,
    });
    const dave = await openNode({ dataDir: daveHome, username: "dave", password: "pw-d", closeGraceMs: 50 });
    const changes: ContactChanges[] = [];
    const got: string[] = [];
    const rejected: string[] = [];
    alice.on("contacts", (c) => changes.push(c));
    alice.on("message", (m) => got.push(`${m.from}: ${m.text}`));
    alice.on("rejected", (r) => rejected.push(r.reason));
    const nodes: ChatNode[] = [alice, dave];
    try {
      await alice.start();
      await dave.start();
      dave.sendPrivate("alice", "hi, it's dave");
      await until(() => refused(alice, "unknown-key") > 0, 10_000, "alice refusing a stranger's handshake");
      assert.deepEqual(got, []);
      assert.equal(alice.stats().sessions.established, 0, "no session with a stranger");
      // Nothing of a stranger's reaches alice's engine, but she is told someone unknown knocked, so she can import.
      assert.ok(
        rejected.length > 0 && rejected.every((r) => r === "unknown-sender"),
        `rejected: ${rejected}`,
      );

      importContact(openDirectory(aliceHome), exportContact(openDirectory(daveHome), "dave"));
      await until(() => changes.length > 0, 10_000, "alice's node to see the import");
      assert.deepEqual(changes[0], { added: ["dave"], removed: [], changed: [] });
      await until(() => got.length === 1, 10_000, "dave's waiting message");
      assert.deepEqual(got, ["dave: hi, it's dave"]);
      assert.ok(alice.contacts().some((c) => c.name === "dave"));

      // Removed by hand from users.json: refused again, and gone from the contacts.
      const usersPath = join(aliceHome, "users.json");
      const file = JSON.parse(readFileSync(usersPath, "utf8")) as { users: { name: string }[] };
      file.users = file.users.filter((u) => u.name !== "dave");
      writeFileSync(usersPath, JSON.stringify(file));
      await until(() => changes.length > 1, 10_000, "alice's node to see the removal");
      assert.deepEqual(changes[1], { added: [], removed: ["dave"], changed: [] });
      // dave still holds the old session: what he sends under it names keys alice has erased.
      const opened = alice.stats().sessions.opened;
      const unknownIndex = refused(alice, "unknown-index");
      dave.sendPrivate("alice", "still there?");
      await until(
        () => refused(alice, "unknown-index") > unknownIndex,
        10_000,
        "alice refusing dave's old session",
      );
      // Heard nothing back, dave handshakes again (after silenceBeforeRehandshakeMs): a stranger's handshake now.
      const unknownKey = refused(alice, "unknown-key");
      await until(
        () => refused(alice, "unknown-key") > unknownKey,
        15_000,
        "alice refusing dave's new handshake",
      );
      assert.equal(alice.stats().sessions.opened, opened, "nothing of dave's opened after his removal");
      // Nothing of dave's reached alice's engine; the user is told an unknown key knocked, each time.
      assert.ok(
        rejected.every((r) => r === "unknown-sender"),
        `nothing of dave's reached alice's engine: ${rejected}`,
      );
      assert.equal(got.length, 1);
      assert.ok(!alice.contacts().some((c) => c.name === "dave"));
    } finally {
      for (const n of nodes) await n.close();
    }
  });
});
