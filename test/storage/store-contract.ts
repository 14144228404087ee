import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isMsgId, isPeerId, type MessageKind, type MsgId, type PeerId } from "../../src/engine/types.ts";
import { isStoreError } from "../../src/storage/errors.ts";
import type {
  HistoryEntry,
  OutgoingMessage,
  OutgoingRecipient,
  PeerRecord,
  ReceivedMessage,
  RecipientState,
  Store,
} from "../../src/storage/store.ts";

export function peer(n: number): PeerId {
  const id = n.toString(16).padStart(16, "0");
  if (!isPeerId(id)) throw new Error(`bad test peer ${n}`);
  return id;
}

export function msg(n: number): MsgId {
  const id = n.toString(16).padStart(32, "0");
  if (!isMsgId(id)) throw new Error(`bad test msg ${n}`);
  return id;
}

export function outgoing(n: number, peers: PeerId[], sentAt = 1000 + n): OutgoingMessage {
  return {
    msgId: msg(n),
    kind: peers.length === 1 ? "private" : "broadcast",
    text: `out ${n}`,
    sentAt,
    recipients: peers.map((p) => ({ peer: p, state: "pending", updatedAt: sentAt })),
  };
}

export function received(from: PeerId, n: number, receivedAt = 2000 + n): ReceivedMessage {
  return {
    msgId: msg(n),
    from,
    kind: "broadcast",
    text: `in ${n} from ${from}`,
    sentAt: 1000 + n,
    receivedAt,
  };
}

const ALICE = peer(0xa);
const BOB = peer(0xb);
const CAROL = peer(0xc);

/**
 * The behaviour every `Store` must share, so that the simulator (memory store) and a real node (SQLite) agree.
 * `open` returns a new, empty store each call; every test closes what it opens.
 */
export function storeContract(name: string, open: () => Store): void {
  function using(test: (store: Store) => void): () => void {
    return () => {
      const store = open();
      try {
        test(store);
      } finally {
        store.close();
      }
    };
  }

  describe(`Store contract: ${name}`, () => {
    it(
      "adds and gets an outgoing message with its recipients, in order",
      using((store) => {
        const message = outgoing(1, [CAROL, ALICE, BOB]);
        store.addOutgoing(message);
        assert.deepEqual(store.getOutgoing(msg(1)), message);
        assert.equal(store.getOutgoing(msg(2)), undefined);
      }),
    );

    it(
      "hands out copies: changing what it returned or was given does not change the store",
      using((store) => {
        const message = outgoing(1, [ALICE]);
        store.addOutgoing(message);
        message.text = "changed";
        const got = store.getOutgoing(msg(1));
        assert.ok(got?.recipients[0]);
        got.recipients[0].state = "delivered";
        got.recipients.push({ peer: BOB, state: "pending", updatedAt: 0 });
        assert.deepEqual(store.getOutgoing(msg(1)), outgoing(1, [ALICE]));
        store.upsertPeer({ id: ALICE, address: "a" });
        const [record] = store.peers();
        assert.ok(record);
        record.address = "changed";
        assert.deepEqual(store.peers(), [{ id: ALICE, address: "a" }]);
      }),
    );

    it(
      "stores recipient states as given, with a reason only for a failed one",
      using((store) => {
        const message: OutgoingMessage = {
          ...outgoing(1, []),
          recipients: [
            { peer: ALICE, state: "failed", reason: "not in the directory", updatedAt: 5 },
            { peer: BOB, state: "pending", reason: "ignored", updatedAt: 6 },
          ],
        };
        store.addOutgoing(message);
        assert.deepEqual(store.getOutgoing(msg(1))?.recipients, [
          { peer: ALICE, state: "failed", reason: "not in the directory", updatedAt: 5 },
          { peer: BOB, state: "pending", updatedAt: 6 },
        ]);
      }),
    );

    it(
      "refuses a duplicate msgId, keeping the first",
      using((store) => {
        store.addOutgoing(outgoing(1, [ALICE]));
        assert.throws(
          () => store.addOutgoing({ ...outgoing(1, [BOB]), text: "second" }),
          (e) => isStoreError(e, "DUPLICATE_MSG_ID"),
        );
        assert.deepEqual(store.getOutgoing(msg(1)), outgoing(1, [ALICE]));
        assert.equal(store.history(10).length, 1);
      }),
    );

    it(
      "refuses a message naming a recipient twice, storing nothing of it",
      using((store) => {
        assert.throws(
          () => store.addOutgoing(outgoing(1, [ALICE, BOB, ALICE])),
          (e) => isStoreError(e, "DUPLICATE_RECIPIENT"),
        );
        assert.equal(store.getOutgoing(msg(1)), undefined);
        assert.deepEqual(store.history(10), []);
      }),
    );

    it(
      "moves recipients pending → failed → delivered, and a delivered one stays delivered",
      using((store) => {
        store.addOutgoing(outgoing(1, [ALICE, BOB]));
        store.setRecipientState(msg(1), ALICE, "failed", 10, "no route");
        assert.deepEqual(store.getOutgoing(msg(1))?.recipients[0], {
          peer: ALICE,
          state: "failed",
          reason: "no route",
          updatedAt: 10,
        });
        store.setRecipientState(msg(1), ALICE, "delivered", 20, "a reason is dropped unless failed");
        assert.deepEqual(store.getOutgoing(msg(1))?.recipients[0], {
          peer: ALICE,
          state: "delivered",
          updatedAt: 20,
        });
        store.setRecipientState(msg(1), ALICE, "failed", 30, "late give-up");
        store.setRecipientState(msg(1), ALICE, "pending", 31);
        assert.deepEqual(store.getOutgoing(msg(1))?.recipients[0], {
          peer: ALICE,
          state: "delivered",
          updatedAt: 20,
        });
        // failed may go back to pending (a retry) as well as on to delivered.
        store.setRecipientState(msg(1), BOB, "failed", 40, "timeout");
        store.setRecipientState(msg(1), BOB, "pending", 41);
        assert.deepEqual(store.getOutgoing(msg(1))?.recipients[1], {
          peer: BOB,
          state: "pending",
          updatedAt: 41,
        });
      }),
    );

    it(
      "ignores a state change for an unknown msgId or peer",
      using((store) => {
        store.addOutgoing(outgoing(1, [ALICE]));
        store.setRecipientState(msg(1), BOB, "delivered", 10);
        store.setRecipientState(msg(2), ALICE, "delivered", 10);
        assert.deepEqual(store.getOutgoing(msg(1)), outgoing(1, [ALICE]));
        assert.equal(store.getOutgoing(msg(2)), undefined);
      }),
    );

    it(
      "lists unfinished outgoing messages oldest (first stored) first, without the all-delivered ones",
      using((store) => {
        // Stored in this order; the sentAt values disagree with it on purpose: a clock may step back.
        store.addOutgoing(outgoing(1, [ALICE, BOB], 500));
        store.addOutgoing(outgoing(2, [ALICE], 400));
        store.addOutgoing(outgoing(3, [BOB], 300));
        store.addOutgoing(outgoing(4, [], 200));
        store.addOutgoing(outgoing(5, [CAROL], 100));
        store.setRecipientState(msg(1), ALICE, "delivered", 600);
        store.setRecipientState(msg(2), ALICE, "delivered", 600);
        store.setRecipientState(msg(3), BOB, "failed", 600, "gave up");
        const unfinished = store.unfinishedOutgoing();
        assert.deepEqual(
          unfinished.map((m) => m.msgId),
          [msg(1), msg(3), msg(5)],
        );
        assert.deepEqual(unfinished[1], store.getOutgoing(msg(3)));
        store.setRecipientState(msg(1), BOB, "delivered", 700);
        store.setRecipientState(msg(3), BOB, "delivered", 700);
        store.setRecipientState(msg(5), CAROL, "delivered", 700);
        assert.deepEqual(store.unfinishedOutgoing(), []);
      }),
    );

    it(
      "adds a received message once: a duplicate returns false and changes nothing",
      using((store) => {
        assert.equal(store.hasReceived(ALICE, msg(1)), false);
        assert.equal(store.addReceived(received(ALICE, 1)), true);
        assert.equal(store.hasReceived(ALICE, msg(1)), true);
        const before = store.history(10);
        assert.equal(store.addReceived({ ...received(ALICE, 1), text: "replayed", receivedAt: 9999 }), false);
        assert.deepEqual(store.history(10), before);
        assert.deepEqual(before, [{ direction: "in", ...received(ALICE, 1) }]);
      }),
    );

    it(
      "keys received messages by (from, msgId), apart from outgoing ids",
      using((store) => {
        store.addOutgoing(outgoing(1, [ALICE]));
        assert.equal(store.addReceived(received(ALICE, 1)), true);
        assert.equal(store.addReceived(received(BOB, 1)), true);
        assert.equal(store.hasReceived(BOB, msg(1)), true);
        assert.equal(store.hasReceived(CAROL, msg(1)), false);
        assert.equal(store.hasReceived(ALICE, msg(2)), false);
        assert.equal(store.hasReceivedFrom(BOB), true);
        assert.equal(store.hasReceivedFrom(CAROL), false);
      }),
    );

    it(
      "gives the newest `limit` history entries of both directions, oldest first, in insertion order",
      using((store) => {
        store.addReceived(received(ALICE, 10, 50));
        store.addOutgoing(outgoing(1, [ALICE, BOB], 40));
        store.addReceived(received(BOB, 11, 30));
        store.addReceived(received(ALICE, 10)); // a duplicate: no entry
        store.addOutgoing(outgoing(2, [BOB], 20));
        store.addReceived(received(CAROL, 12, 10));
        store.setRecipientState(msg(1), BOB, "failed", 60, "offline");

        const all: HistoryEntry[] = [
          { direction: "in", ...received(ALICE, 10, 50) },
          { direction: "out", ...outgoing(1, [ALICE, BOB], 40) },
          { direction: "in", ...received(BOB, 11, 30) },
          { direction: "out", ...outgoing(2, [BOB], 20) },
          { direction: "in", ...received(CAROL, 12, 10) },
        ];
        // An outgoing entry shows its recipients as they stand now.
        const first = all[1];
        assert.ok(first?.direction === "out");
        first.recipients[1] = { peer: BOB, state: "failed", reason: "offline", updatedAt: 60 };

        assert.deepEqual(store.history(100), all);
        assert.deepEqual(store.history(5), all);
        assert.deepEqual(store.history(3), all.slice(2));
        assert.deepEqual(store.history(1), all.slice(4));
        assert.deepEqual(store.history(2.7), all.slice(3));
        assert.deepEqual(store.history(Number.POSITIVE_INFINITY), all);
        assert.deepEqual(store.history(0), []);
        assert.deepEqual(store.history(-1), []);
        assert.deepEqual(store.history(Number.NaN), []);
      }),
    );

    it(
      "saves, overwrites and loads peer states",
      using((store) => {
        assert.deepEqual(store.loadPeerStates(), new Map());
        store.savePeerState(ALICE, '{"seq":1}');
        store.savePeerState(BOB, '{"seq":7}');
        store.savePeerState(ALICE, '{"seq":2}');
        const states = store.loadPeerStates();
        assert.deepEqual(
          states,
          new Map([
            [ALICE, '{"seq":2}'],
            [BOB, '{"seq":7}'],
          ]),
        );
        states.delete(ALICE);
        assert.equal(store.loadPeerStates().size, 2);
      }),
    );

    it(
      "sets, overwrites and gets meta values",
      using((store) => {
        assert.equal(store.getMeta("epoch"), undefined);
        store.setMeta("epoch", "1");
        store.setMeta("name", "");
        store.setMeta("epoch", "2");
        assert.equal(store.getMeta("epoch"), "2");
        assert.equal(store.getMeta("name"), "");
      }),
    );

    it(
      "upserts peers, keeping stored fields the update leaves out; lists them by id",
      using((store) => {
        store.upsertPeer({ id: BOB });
        store.upsertPeer({ id: ALICE, address: "127.0.0.1:12001", lastSeen: 100 });
        store.upsertPeer({ id: ALICE, address: undefined, rttMs: 12.5 });
        store.upsertPeer({ id: ALICE, address: "[::1]:12001", lastSeen: 200 });
        assert.deepEqual(store.peers(), [
          { id: ALICE, address: "[::1]:12001", lastSeen: 200, rttMs: 12.5 },
          { id: BOB },
        ]);
      }),
    );

    it(
      "returns the transaction's value and keeps its changes",
      using((store) => {
        const value = store.transaction(() => {
          store.addReceived(received(ALICE, 1));
          store.savePeerState(ALICE, "{}");
          return 42;
        });
        assert.equal(value, 42);
        assert.equal(store.hasReceived(ALICE, msg(1)), true);
        assert.equal(store.loadPeerStates().get(ALICE), "{}");
      }),
    );

    it(
      "rolls back every change when the transaction throws, and rethrows the same error",
      using((store) => {
        store.addOutgoing(outgoing(1, [ALICE, BOB]));
        store.savePeerState(ALICE, "before");
        store.setMeta("epoch", "1");
        store.upsertPeer({ id: ALICE, address: "a", lastSeen: 1 });
        const snapshot = observe(store, [msg(1), msg(2)]);
        const failure = new Error("boom");
        assert.throws(
          () =>
            store.transaction(() => {
              store.addOutgoing(outgoing(2, [CAROL]));
              store.setRecipientState(msg(1), ALICE, "delivered", 5);
              store.setRecipientState(msg(1), BOB, "failed", 5, "x");
              store.addReceived(received(BOB, 3));
              store.savePeerState(ALICE, "after");
              store.savePeerState(BOB, "new");
              store.setMeta("epoch", "2");
              store.setMeta("other", "x");
              store.upsertPeer({ id: ALICE, rttMs: 3 });
              store.upsertPeer({ id: BOB });
              throw failure;
            }),
          (e) => e === failure,
        );
        assert.deepEqual(observe(store, [msg(1), msg(2)]), snapshot);
        assert.equal(store.hasReceived(BOB, msg(3)), false);
        // The rolled-back ids are free again, and history order carries on from where it was.
        store.addOutgoing(outgoing(2, [CAROL]));
        assert.equal(store.addReceived(received(BOB, 3)), true);
        assert.deepEqual(
          store.history(10).map((e) => e.msgId),
          [msg(1), msg(2), msg(3)],
        );
      }),
    );

    it(
      "rolls back a nested transaction alone when its error is caught, and all of it when the outer one throws",
      using((store) => {
        store.transaction(() => {
          store.setMeta("outer", "1");
          assert.throws(() =>
            store.transaction(() => {
              store.setMeta("inner", "1");
              store.addReceived(received(ALICE, 1));
              throw new Error("inner");
            }),
          );
          store.transaction(() => store.setMeta("kept", "1"));
        });
        assert.equal(store.getMeta("outer"), "1");
        assert.equal(store.getMeta("inner"), undefined);
        assert.equal(store.getMeta("kept"), "1");
        assert.equal(store.hasReceived(ALICE, msg(1)), false);

        assert.throws(() =>
          store.transaction(() => {
            store.transaction(() => store.setMeta("committed inner", "1"));
            throw new Error("outer");
          }),
        );
        assert.equal(store.getMeta("committed inner"), undefined);
      }),
    );

    it(
      "keeps a transaction going after a store call inside it was refused",
      using((store) => {
        store.addOutgoing(outgoing(1, [ALICE]));
        store.transaction(() => {
          assert.throws(
            () => store.addOutgoing(outgoing(1, [BOB])),
            (e) => isStoreError(e, "DUPLICATE_MSG_ID"),
          );
          store.addOutgoing(outgoing(2, [BOB]));
        });
        assert.deepEqual(store.getOutgoing(msg(1)), outgoing(1, [ALICE]));
        assert.deepEqual(store.getOutgoing(msg(2)), outgoing(2, [BOB]));
      }),
    );

    it(
      "refuses an async transaction, rolling it back",
      using((store) => {
        assert.throws(
          () =>
            store.transaction(async () => {
              store.setMeta("k", "v");
            }),
          TypeError,
        );
        assert.equal(store.getMeta("k"), undefined);
      }),
    );

    it("throws CLOSED when used after close, and closes twice quietly", () => {
      const store = open();
      store.close();
      store.close();
      assert.throws(
        () => store.getMeta("k"),
        (e) => isStoreError(e, "CLOSED"),
      );
      assert.throws(
        () => store.addReceived(received(ALICE, 1)),
        (e) => isStoreError(e, "CLOSED"),
      );
      assert.throws(
        () => store.transaction(() => 1),
        (e) => isStoreError(e, "CLOSED"),
      );
      assert.throws(
        () => store.history(0),
        (e) => isStoreError(e, "CLOSED"),
      );
    });

    it("agrees with a simple model over random sequences of operations", () => {
      fc.assert(
        fc.property(fc.array(operation, { maxLength: 40 }), (ops) => {
          const store = open();
          try {
            const model = new Model();
            for (const op of ops)
              assert.deepEqual(apply(store, op), applyToModel(model, op), JSON.stringify(op));
            assert.deepEqual(observe(store, MSG_POOL), model.observe(MSG_POOL));
          } finally {
            store.close();
          }
        }),
        { numRuns: 100 },
      );
    });
  });
}

/** Everything a store shows, for comparing two stores (or one store before and after). */
function observe(store: Store, msgIds: readonly MsgId[]) {
  return {
    history: store.history(Number.POSITIVE_INFINITY),
    unfinished: store.unfinishedOutgoing(),
    outgoing: msgIds.map((id) => store.getOutgoing(id)),
    received: PEER_POOL.flatMap((p) => msgIds.map((id) => store.hasReceived(p, id))),
    peerStates: store.loadPeerStates(),
    meta: META_KEYS.map((key) => store.getMeta(key)),
    peers: store.peers(),
  };
}

// --- the model and the random operations ----------------------------------------------------------------------

// Small pools, so random operations collide: duplicates, updates of existing rows, unknown ids.
const PEER_POOL = [ALICE, BOB, CAROL, peer(0xd)];
const MSG_POOL = [1, 2, 3, 4, 5, 6].map(msg);
const META_KEYS = ["epoch", "name", "other"];

type Op =
  | { op: "addOutgoing"; message: OutgoingMessage }
  | {
      op: "setRecipientState";
      msgId: MsgId;
      peer: PeerId;
      state: RecipientState;
      at: number;
      reason?: string;
    }
  | { op: "addReceived"; message: ReceivedMessage }
  | { op: "savePeerState"; peer: PeerId; json: string }
  | { op: "setMeta"; key: string; value: string }
  | { op: "upsertPeer"; record: PeerRecord }
  | { op: "transaction"; ops: Op[]; throws: boolean };

const peerArb = fc.constantFrom(...PEER_POOL);
const msgArb = fc.constantFrom(...MSG_POOL);
const kindArb = fc.constantFrom<MessageKind>("broadcast", "private");
const stateArb = fc.constantFrom<RecipientState>("pending", "delivered", "failed");
const timeArb = fc.integer({ min: 0, max: 1_000_000 });
const textArb = fc.string({ unit: "grapheme", maxLength: 8 });

const recipientArb: fc.Arbitrary<OutgoingRecipient> = fc.record(
  { peer: peerArb, state: stateArb, reason: textArb, updatedAt: timeArb },
  { requiredKeys: ["peer", "state", "updatedAt"] },
);

const basicOperation: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("addOutgoing" as const),
    message: fc.record({
      msgId: msgArb,
      kind: kindArb,
      text: textArb,
      sentAt: timeArb,
      // Mostly distinct recipients; sometimes a repeat, which the store must refuse.
      recipients: fc.oneof(
        { weight: 4, arbitrary: fc.uniqueArray(recipientArb, { maxLength: 4, selector: (r) => r.peer }) },
        { weight: 1, arbitrary: fc.array(recipientArb, { maxLength: 4 }) },
      ),
    }),
  }),
  fc.record(
    {
      op: fc.constant("setRecipientState" as const),
      msgId: msgArb,
      peer: peerArb,
      state: stateArb,
      at: timeArb,
      reason: textArb,
    },
    { requiredKeys: ["op", "msgId", "peer", "state", "at"] },
  ),
  fc.record({
    op: fc.constant("addReceived" as const),
    message: fc.record({
      msgId: msgArb,
      from: peerArb,
      kind: kindArb,
      text: textArb,
      sentAt: timeArb,
      receivedAt: timeArb,
    }),
  }),
  fc.record({ op: fc.constant("savePeerState" as const), peer: peerArb, json: textArb }),
  fc.record({ op: fc.constant("setMeta" as const), key: fc.constantFrom(...META_KEYS), value: textArb }),
  fc.record({
    op: fc.constant("upsertPeer" as const),
    record: fc.record(
      {
        id: peerArb,
        address: textArb,
        lastSeen: timeArb,
        rttMs: fc.double({ min: 0, max: 1000, noNaN: true }),
      },
      { requiredKeys: ["id"] },
    ),
  }),
);

function transactionOf(body: fc.Arbitrary<Op>): fc.Arbitrary<Op> {
  return fc.record({
    op: fc.constant("transaction" as const),
    ops: fc.array(body, { maxLength: 6 }),
    throws: fc.boolean(),
  });
}

/** Basic operations, and transactions of them nested up to two deep. */
const operation: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: basicOperation },
  {
    weight: 1,
    arbitrary: transactionOf(
      fc.oneof({ weight: 4, arbitrary: basicOperation }, transactionOf(basicOperation)),
    ),
  },
);

class Abort extends Error {}

/** What an operation showed: its return value, or the code of the StoreError it threw. */
type Outcome = { value: unknown } | { error: string };

function apply(store: Store, op: Op): Outcome | Outcome[] {
  try {
    switch (op.op) {
      case "addOutgoing":
        return { value: store.addOutgoing(op.message) };
      case "setRecipientState":
        return { value: store.setRecipientState(op.msgId, op.peer, op.state, op.at, op.reason) };
      case "addReceived":
        return { value: store.addReceived(op.message) };
      case "savePeerState":
        return { value: store.savePeerState(op.peer, op.json) };
      case "setMeta":
        return { value: store.setMeta(op.key, op.value) };
      case "upsertPeer":
        return { value: store.upsertPeer(op.record) };
      case "transaction": {
        const outcomes: (Outcome | Outcome[])[] = [];
        try {
          store.transaction(() => {
            for (const inner of op.ops) outcomes.push(apply(store, inner));
            if (op.throws) throw new Abort();
          });
        } catch (error) {
          if (!(error instanceof Abort)) throw error;
        }
        return outcomes.flat();
      }
    }
  } catch (error) {
    if (isStoreError(error)) return { error: error.code };
    throw error;
  }
}

/**
 * The simplest thing that could be a store: the history as one array, searched linearly; a transaction is a deep
 * copy put back on throw. Written from the Store interface's comments, apart from both implementations.
 */
class Model {
  history: HistoryEntry[] = [];
  peerStates = new Map<PeerId, string>();
  meta = new Map<string, string>();
  peers = new Map<PeerId, PeerRecord>();

  findOutgoing(msgId: MsgId): OutgoingMessage | undefined {
    for (const entry of this.history) {
      if (entry.direction === "out" && entry.msgId === msgId) return entry;
    }
    return undefined;
  }

  observe(msgIds: readonly MsgId[]) {
    const strip = ({ direction: _, ...message }: { direction: "out" } & OutgoingMessage): OutgoingMessage =>
      message;
    const outgoing = this.history.flatMap((e) => (e.direction === "out" ? [strip(e)] : []));
    return {
      history: this.history,
      unfinished: outgoing.filter((m) => m.recipients.some((r) => r.state !== "delivered")),
      outgoing: msgIds.map((id) => outgoing.find((m) => m.msgId === id)),
      received: PEER_POOL.flatMap((p) =>
        msgIds.map((id) => this.history.some((e) => e.direction === "in" && e.from === p && e.msgId === id)),
      ),
      peerStates: this.peerStates,
      meta: META_KEYS.map((key) => this.meta.get(key)),
      peers: [...this.peers.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
    };
  }
}

function withReasonIfFailed(r: OutgoingRecipient): OutgoingRecipient {
  const { reason, ...rest } = r;
  return r.state === "failed" && reason !== undefined ? { ...rest, reason } : rest;
}

function applyToModel(model: Model, op: Op): Outcome | Outcome[] {
  switch (op.op) {
    case "addOutgoing": {
      const peers = op.message.recipients.map((r) => r.peer);
      if (new Set(peers).size !== peers.length) return { error: "DUPLICATE_RECIPIENT" };
      if (model.findOutgoing(op.message.msgId)) return { error: "DUPLICATE_MSG_ID" };
      const recipients = op.message.recipients.map(withReasonIfFailed);
      model.history.push({ direction: "out", ...structuredClone(op.message), recipients });
      return { value: undefined };
    }
    case "setRecipientState": {
      const message = model.findOutgoing(op.msgId);
      const index = message?.recipients.findIndex((r) => r.peer === op.peer) ?? -1;
      if (message && index >= 0 && message.recipients[index]?.state !== "delivered") {
        message.recipients[index] = withReasonIfFailed({
          peer: op.peer,
          state: op.state,
          updatedAt: op.at,
          reason: op.reason,
        });
      }
      return { value: undefined };
    }
    case "addReceived": {
      const { from, msgId } = op.message;
      if (model.history.some((e) => e.direction === "in" && e.from === from && e.msgId === msgId)) {
        return { value: false };
      }
      model.history.push({ direction: "in", ...op.message });
      return { value: true };
    }
    case "savePeerState":
      model.peerStates.set(op.peer, op.json);
      return { value: undefined };
    case "setMeta":
      model.meta.set(op.key, op.value);
      return { value: undefined };
    case "upsertPeer":
      // The generated records leave absent fields out (never undefined), so a spread merges them.
      model.peers.set(op.record.id, { ...model.peers.get(op.record.id), ...op.record });
      return { value: undefined };
    case "transaction": {
      const saved = structuredClone({ ...model });
      const outcomes = op.ops.flatMap((inner) => applyToModel(model, inner));
      if (op.throws) Object.assign(model, saved);
      return outcomes;
    }
  }
}
