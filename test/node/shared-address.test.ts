/**
 * An address is only a hint (issue 20): contacts may share one, even ours, as when two people on other machines
 * both kept the default 127.0.0.1:12001. Datagrams name their sender's key, so nothing is confused; the node
 * learns a contact's real address from its first authenticated datagram; probes that a wrong hint sends back to
 * ourselves are dropped, not reported as rejected; and a port no longer names one contact.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";

describe("contacts sharing an address", { timeout: 30_000 }, () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    for (const close of closers) await close();
  });

  test("a wrong hint (our own address) is corrected by the contact's first datagram; our own probes are dropped", async () => {
    const [alice, bob, carol] = (await makeUsers(["alice", "bob", "carol"])) as [
      TestUser,
      TestUser,
      TestUser,
    ];
    const mine = { host: alice.contact.host, port: alice.contact.port };
    // alice's directory has bob and carol at her own address; bob's has alice where she really is.
    const aliceView = [
      alice,
      { ...bob, contact: { ...bob.contact, ...mine } },
      { ...carol, contact: { ...carol.contact, ...mine } },
    ];
    const aliceNode = nodeFor(alice, aliceView, { config: { heartbeatMs: 200 } });
    const rejected: string[] = [];
    aliceNode.on("rejected", (r) => rejected.push(r.reason));
    const got: string[] = [];
    aliceNode.on("message", (m) => got.push(`${m.from}:${m.text}`));
    await aliceNode.start();
    closers.push(() => aliceNode.close());
    assert.throws(
      () => aliceNode.sendPrivate(String(mine.port), "to whom?"),
      /bob and carol share port \d+: use a name/,
    );
    // Probes to bob and carol land on alice's own socket: dropped before the engine, so never a "rejected".
    await until(() => aliceNode.stats().hellosSent >= 4, 5000, "alice's probes");
    assert.equal(aliceNode.stats().datagramsIn, 0);

    const bobNode = nodeFor(bob, [alice, bob, carol]);
    const delivered: string[] = [];
    aliceNode.on("delivered", (d) => delivered.push(d.to));
    await bobNode.start();
    closers.push(() => bobNode.close());
    bobNode.sendPrivate("alice", "hi, I am elsewhere");
    await until(() => got.length === 1, 5000, "bob's message");
    assert.deepEqual(got, ["bob:hi, I am elsewhere"]);
    // alice now sends to where bob really is.
    aliceNode.sendPrivate("bob", "found you");
    await until(() => delivered.includes("bob"), 5000, "alice's reply delivered");
    assert.equal(aliceNode.peers().find((p) => p.name === "bob")?.address, `127.0.0.1:${bob.contact.port}`);
    assert.deepEqual(rejected, []);
  });
});
