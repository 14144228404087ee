/**
 * 4. Wrong-key private message: alice's node seals one private message to the wrong key (its own, as a confused
 * client would). Bob cannot decrypt it: he reports a decrypt-failed rejection, shows nothing, and tells alice in
 * his ACK, so alice reports the message failed with code rejected-decrypt (not delivered, not retried). Bob keeps
 * working: a correct private message from alice and one from carol arrive afterwards.
 */
import { checkDeliveries, giveUpsSince, unexpectedFailure } from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import { outcome, waitDelivered } from "./traffic.ts";
import type { Scenario } from "./types.ts";

export const wrongKey: Scenario = {
  id: 4,
  title: "Wrong-key private message",
  proves:
    "a private message sealed to the wrong key is refused by its recipient, who keeps working; the sender gets a rejected-decrypt failure",
  nodes: ["zoe", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const before = cluster.totalsOf(nodes);
    const mark = log.mark();

    cluster.setFaults(["alice"], { wrongKeyPpm: 1_000_000 });
    const bad = cluster.sendPrivate("alice", "bob", "s4: alice to bob, sealed to the wrong key");
    cluster.setFaults(["alice"], { wrongKeyPpm: 0 });
    const failedAtAlice = () => log.since(mark, "failed", ["alice"]).filter((e) => e.msgId === bad.msgId);
    await cluster.waitFor("alice to be told bob could not decrypt", () => failedAtAlice().length > 0, {
      timeoutMs: 5000,
      abort: () => unexpectedFailure(log, mark, nodes, (e) => e.msgId === bad.msgId),
    });
    const bobRejections = log.since(mark, "rejected", ["bob"]);
    check.equal(
      "bob's decrypt-failed reports about alice",
      1,
      bobRejections.filter((e) => e.reason === "decrypt-failed" && e.from === "alice").length,
    );
    const failure = failedAtAlice()[0];
    check.equal("failure code reported to alice", "rejected-decrypt", failure?.code ?? "none");

    const good = [
      cluster.sendPrivate("alice", "bob", "s4: alice to bob, sealed correctly"),
      cluster.sendPrivate("carol", "bob", "s4: carol to bob, bob still works"),
    ];
    await waitDelivered(cluster, "the correct private messages to arrive", good, {
      timeoutMs: 5000,
      mark,
      nodes,
      expected: (e) => e.msgId === bad.msgId,
    });
    await cluster.settle(nodes);

    const delta = diffTotals(cluster.totalsOf(nodes), before);
    const deliveries = checkDeliveries(check, log, good, { mark, nodes });
    check.equal("messages sealed to the wrong key", 1, delta.faults.wrongKeys);
    check.equal("the wrong-key message shown", 0, log.shown("bob", bad.msgId, "alice"));
    check.equal("the wrong-key message reported delivered", 0, log.acked("alice", bad.msgId, "bob"));
    check.equal("failures reported for it", 1, log.failed("alice", bad.msgId, "bob"));
    check.equalCounts("rejections", { "decrypt-failed": 1 }, delta.rejected);
    check.equal("messages failed (counter)", 1, delta.messagesFailed);
    const giveUps = giveUpsSince(log, mark, nodes);
    check.equal("give-ups", 0, giveUps);
    note(`bob: decrypt-failed from alice; alice: "${failure?.reason ?? "?"}" (${failure?.code ?? "?"})`);
    // The wrong-key message is expected not to be shown: it counts in neither delivery column.
    return outcome(1 + good.length, deliveries, delta, giveUps);
  },
};
