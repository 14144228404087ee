/**
 * Contacts change while a node runs, over real UDP: two machines (two data directories) that do not know each
 * other. A contact imported into the running node's directory takes effect at once (no restart): the node probes
 * the new contact, and what the contact had waiting arrives; a contact removed is refused from then on.
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
import { freePorts, until } from "../helpers/loopback-nodes.ts";

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
      await until(() => rejected.includes("unknown-sender"), 10_000, "alice refusing a stranger");
      assert.deepEqual(got, []);

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
      const before = rejected.filter((r) => r === "unknown-sender").length;
      dave.sendPrivate("alice", "still there?");
      await until(
        () => rejected.filter((r) => r === "unknown-sender").length > before,
        10_000,
        "alice refusing dave again",
      );
      assert.equal(got.length, 1);
      assert.ok(!alice.contacts().some((c) => c.name === "dave"));
    } finally {
      for (const n of nodes) await n.close();
    }
  });
});
