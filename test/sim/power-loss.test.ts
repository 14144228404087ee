import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Cluster, type ClusterObserver } from "../../sim/cluster.ts";
import type { LinkProfile } from "../../sim/network.ts";
import { SeededRng } from "../../src/faults/seeded-rng.ts";

const CLEAN: LinkProfile = { lossPpm: 0, duplicatePpm: 0, corruptPpm: 0, delayMs: 5, jitterMs: 0 };

/** A two-node cluster on clean links, recording what the observer hears and what each node puts on the wire. */
function twoNodes() {
  const sends: string[] = [];
  const crashes: number[] = [];
  const observer: ClusterObserver = {
    onSend: (_step, _now, node, entry) => sends.push(`${node}:${entry.text}`),
    onEvent: () => {},
    onDataFrame: () => {},
    onCrash: (_step, _now, node) => crashes.push(node),
    onRestart: () => {},
    afterStep: () => {},
  };
  const cluster = new Cluster(
    { nodes: 2, seed: 7, startMs: 1_000_000, links: [CLEAN, CLEAN, CLEAN, CLEAN] },
    new SeededRng(7),
    observer,
  );
  const wire: number[] = [];
  cluster.tap = (from) => wire.push(from);
  return { cluster, sends, crashes, wire };
}

describe("the simulator's power loss", () => {
  test("strikes inside the next commit: the message is not stored, not counted as sent, and nothing leaves", () => {
    const { cluster, sends, crashes, wire } = twoNodes();
    cluster.runUntil(cluster.now + 2_000);
    wire.length = 0;
    let struck = 0;
    assert.equal(
      cluster.crashAtNextCommit(0, () => struck++),
      true,
    );
    cluster.send(0, [{ kind: "broadcast", text: "lost with the power" }]);
    assert.equal(struck, 1);
    assert.deepEqual(crashes, [0]);
    assert.equal(cluster.isUp(0), false);
    assert.deepEqual(sends, []);
    assert.deepEqual(wire, [], "a datagram left before its commit");
    assert.equal(cluster.node(0).store.history(10).length, 0);

    cluster.restart(0);
    cluster.runUntil(cluster.now + 5_000);
    assert.equal(cluster.node(1).store.history(10).length, 0, "the unstored message arrived");
  });

  test("a commit after the power loss was cancelled goes through, and the message arrives", () => {
    const { cluster, sends, crashes } = twoNodes();
    const strike = () => assert.fail("cancelled power loss struck");
    cluster.crashAtNextCommit(0, strike);
    cluster.cancelPowerLoss(0, strike);
    cluster.send(0, [{ kind: "broadcast", text: "kept" }]);
    cluster.runUntil(cluster.now + 5_000);
    assert.deepEqual(crashes, []);
    assert.deepEqual(sends, ["0:kept"]);
    assert.deepEqual(
      cluster
        .node(1)
        .store.history(10)
        .map((h) => h.text),
      ["kept"],
    );
  });

  test("a power loss while receiving loses no message its sender was told is delivered", () => {
    const { cluster, sends } = twoNodes();
    cluster.runUntil(cluster.now + 2_000);
    cluster.crashAtNextCommit(1, () => {});
    cluster.send(0, [{ kind: "broadcast", text: "survives the receiver's power loss" }]);
    cluster.runUntil(cluster.now + 1_000);
    assert.equal(cluster.isUp(1), false, "the receiver's commit of the message should have struck");
    cluster.restart(1);
    cluster.runUntil(cluster.now + 30_000);
    assert.deepEqual(sends, ["0:survives the receiver's power loss"]);
    assert.deepEqual(
      cluster
        .node(1)
        .store.history(10)
        .map((h) => h.text),
      ["survives the receiver's power loss"],
    );
  });
});
