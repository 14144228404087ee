/**
 * The simulator's invariant checker. It watches every send, engine event, DATA frame, crash and restart, and
 * records a Violation (with node, msgId, step and virtual time) whenever the engine breaks a promise:
 *
 *   I1 integrity    a delivered message has exactly the kind, text and sentAt its author sent to this receiver
 *   I2 once         no message is delivered twice at one receiver, across restarts too (the DeliveryLog persists)
 *   I3 authentic    nothing is delivered (or sent as DATA) that its claimed author did not send to that receiver
 *                   (a message counts as sent once its author's store committed it: nothing leaves before)
 *   I4 order        per sender and receiver, messages never failed and never in flight across a crash of the
 *                   sender are delivered in the order they were sent, none skipped
 *   I5 bounded      every attempt at a message is resolved (`delivered` or `waiting`) within giveUpBoundMs after
 *                   the first transmission of its last frame (so a message queued behind a full window is judged
 *                   from when it could go out; a resubmission after a restart or a park starts a new attempt)
 *   I6 acked        `delivered` at the sender means the receiver has delivered it, or holds it whole and checked
 *                   in its persisted state, waiting only for earlier messages (I7 then demands its delivery)
 *   I7 liveness     after the network heals, every message reaches every recipient and its sender hears so,
 *                   within heartbeat + give-up bound + slack, and every engine is then idle
 *   I8 honest       an honest message never fails: never refused by its recipient, never expired
 *   I9 needless     no give-up on an undisturbed link: for a frame to fail all its tries at the simulator's 40% loss
 *                   (and 3% corruption) each way takes about 1 in 250,000 (docs/PROTOCOL.md §9.8); a give-up counts
 *                   as needless when no partition, blackhole or crash touched the pair within giveUpBoundMs of it,
 *                   and two needless give-ups in one seed (odds below 1e-7 for an honest engine) are a violation
 */
import type { EngineEvent } from "../src/engine/events.ts";
import type { MsgId, PeerId } from "../src/engine/types.ts";
import { MAX_FRAGMENT_PAYLOAD } from "../src/engine/wire.ts";
import type { ClusterObserver, DataFrameInfo, OutboxEntry } from "./cluster.ts";

export type ViolationClass = "correctness" | "liveness" | "crash";

export interface Violation {
  cls: ViolationClass;
  invariant: string;
  /** The node where it was seen. */
  node?: number;
  msgId?: string;
  step: number;
  /** Virtual ms since the run started. */
  timeMs: number;
  detail: string;
}

/** One message to one recipient. */
interface Copy {
  sender: number;
  receiver: number;
  msgId: MsgId;
  entry: OutboxEntry;
  /** Position among the messages from sender to receiver. */
  index: number;
  failedEver: boolean;
  /** Unresolved at its sender when the sender crashed: its order is no longer promised. */
  crossedCrash: boolean;
  senderResolved: "pending" | "delivered" | "waiting";
  deliveredStep: number | undefined;
  attempt: Attempt | undefined;
  complete: boolean;
}

/** One try at getting a copy through: the frames the sender transmitted for it since it was (re)queued. */
interface Attempt {
  copy: Copy;
  seqs: Set<number>;
  fragCount: number;
  open: boolean;
  /** Set once every frame went out: the time by which the attempt must be resolved. */
  deadline: number | undefined;
}

/** Violations kept per invariant and seed: enough to see a pattern, and one noisy invariant hides no other. */
const VIOLATIONS_PER_INVARIANT_MAX = 5;

const utf8 = new TextEncoder();

/** Whether a receiver's persisted state holds a message, received but not delivered yet (for diagnoses only). */
export type HoldsProbe = (receiver: number, sender: number, msgId: MsgId) => boolean;

export class Checker implements ClusterObserver {
  readonly violations: Violation[] = [];
  private readonly copies = new Map<string, Copy>();
  private readonly bySender: Copy[][];
  /** Per "sender>receiver": copies in send order, and the order the receiver delivered them. */
  private readonly pairSends = new Map<string, Copy[]>();
  private readonly pairDeliveries = new Map<string, Copy[]>();
  private readonly deliveredAt: Set<string>[];
  private readonly deadlines = new DeadlineHeap();
  private incomplete = 0;
  /** Disruptions in effect (partition, blackhole, crash), by name: which (sender, receiver) pairs each touches. */
  private readonly disruptions = new Map<string, (sender: number, receiver: number) => boolean>();
  /** Per pair (sender * n + receiver): when a disruption last began or ended for it. */
  private readonly disturbedAt: Float64Array;
  private readonly needless: string[] = [];
  /** Violations seen per invariant, counted past the ones kept. */
  readonly perInvariant = new Map<string, number>();
  messagesSent = 0;
  privateSent = 0;
  /** Messages whose text needs more than one DATA frame (before sealing). */
  multiFragmentSent = 0;
  copiesSent = 0;
  deliveries = 0;

  constructor(
    private readonly ids: readonly PeerId[],
    /** giveUpBoundMs() of the engines' configuration. */
    private readonly giveUpBoundMs: number,
    private readonly startMs: number,
    private readonly holds: HoldsProbe = () => false,
  ) {
    this.bySender = ids.map(() => []);
    this.disturbedAt = new Float64Array(ids.length * ids.length).fill(Number.NEGATIVE_INFINITY);
    this.deliveredAt = ids.map(() => new Set());
  }

  /** Every copy delivered and acknowledged to its sender. */
  allComplete(): boolean {
    return this.incomplete === 0;
  }

  hasViolations(): boolean {
    return this.violations.length > 0;
  }

  // ---- observer ---------------------------------------------------------------------------------------------

  onSend(step: number, now: number, node: number, entry: OutboxEntry): void {
    this.messagesSent++;
    if (entry.kind === "private") this.privateSent++;
    if (utf8.encode(entry.text).length > MAX_FRAGMENT_PAYLOAD) this.multiFragmentSent++;
    for (const peer of entry.recipients.keys()) {
      const receiver = this.indexOf(peer);
      if (receiver === undefined) {
        this.report(
          "correctness",
          "I3 authentic",
          step,
          now,
          node,
          entry.msgId,
          `send() chose unknown peer ${peer}`,
        );
        continue;
      }
      const pair = pairKey(node, receiver);
      const list = this.pairSends.get(pair) ?? [];
      this.pairSends.set(pair, list);
      const copy: Copy = {
        sender: node,
        receiver,
        msgId: entry.msgId,
        entry,
        index: list.length,
        failedEver: false,
        crossedCrash: false,
        senderResolved: "pending",
        deliveredStep: undefined,
        attempt: undefined,
        complete: false,
      };
      list.push(copy);
      this.copies.set(copyKey(node, entry.msgId, receiver), copy);
      this.bySender[node]?.push(copy);
      this.copiesSent++;
      this.incomplete++;
    }
  }

  /** A partition, blackhole or crash begins (`touches` says which pairs) or, with `touches` undefined, ends. */
  onDisruption(now: number, name: string, touches?: (sender: number, receiver: number) => boolean): void {
    const affects = touches ?? this.disruptions.get(name);
    if (touches) this.disruptions.set(name, touches);
    else this.disruptions.delete(name);
    if (!affects) return;
    const n = this.ids.length;
    for (let s = 0; s < n; s++)
      for (let r = 0; r < n; r++) if (affects(s, r)) this.disturbedAt[s * n + r] = now;
  }

  private noteGiveUp(step: number, now: number, node: number, to: PeerId, msgId: MsgId): void {
    const receiver = this.indexOf(to);
    if (receiver === undefined) return;
    for (const touches of this.disruptions.values()) if (touches(node, receiver)) return;
    const pair = node * this.ids.length + receiver;
    if (now - (this.disturbedAt[pair] ?? 0) <= this.giveUpBoundMs) return;
    this.needless.push(`step ${step} at ${now - this.startMs} ms: n${node} gave up ${msgId} to n${receiver}`);
  }

  /** I9: at most one give-up on an undisturbed link per seed (see the header for the odds). */
  checkNeedlessGiveUps(step: number, now: number): void {
    if (this.needless.length < 2) return;
    this.report(
      "liveness",
      "I9 needless give-up",
      step,
      now,
      undefined,
      undefined,
      `${this.needless.length} give-ups on undisturbed links: ${this.needless.slice(0, 3).join("; ")}`,
    );
  }

  onEvent(step: number, now: number, node: number, event: EngineEvent): void {
    if (event.type === "waiting" && event.cause === "no-answer")
      this.noteGiveUp(step, now, node, event.to, event.msgId);
    switch (event.type) {
      case "message":
        return this.onMessage(step, now, node, event);
      case "delivered":
        return this.onDelivered(step, now, node, event.msgId, event.to);
      case "failed":
      case "waiting": {
        const copy = this.copyOf(node, event.msgId, event.to);
        if (!copy) {
          this.report(
            "correctness",
            "I3 authentic",
            step,
            now,
            node,
            event.msgId,
            `${event.type} for a message never sent to ${event.to}`,
          );
          return;
        }
        if (event.type === "failed") {
          this.report(
            "correctness",
            "I8 honest",
            step,
            now,
            node,
            event.msgId,
            `receiver n${copy.receiver} refused an honest message: ${event.reason} (${event.detail})`,
          );
        }
        copy.failedEver = true;
        if (copy.senderResolved !== "delivered") copy.senderResolved = "waiting";
        this.closeAttempt(copy);
        return;
      }
      default:
        return;
    }
  }

  onDataFrame(step: number, now: number, node: number, frame: DataFrameInfo): void {
    const copy = this.copyOf(node, frame.msgId, frame.recipient);
    if (!copy) {
      this.report(
        "correctness",
        "I3 authentic",
        step,
        now,
        node,
        frame.msgId,
        `sent DATA for a message it never sent to ${frame.recipient}`,
      );
      return;
    }
    let attempt = copy.attempt;
    if (!attempt?.open) {
      attempt = { copy, seqs: new Set(), fragCount: frame.fragCount, open: true, deadline: undefined };
      copy.attempt = attempt;
      // Sent again after a give-up (offline delivery): unresolved once more.
      if (copy.senderResolved === "waiting") copy.senderResolved = "pending";
    }
    if (attempt.seqs.has(frame.seq)) return;
    attempt.seqs.add(frame.seq);
    if (attempt.seqs.size === attempt.fragCount) {
      attempt.deadline = now + this.giveUpBoundMs;
      this.deadlines.push(attempt);
    }
  }

  onCrash(_step: number, _now: number, node: number): void {
    for (const copy of this.bySender[node] ?? []) {
      if (copy.senderResolved === "pending") copy.crossedCrash = true;
      // Its in-flight frames died with the engine; a resubmission after the restart starts a new attempt.
      this.closeAttempt(copy);
    }
  }

  onRestart(): void {}

  afterStep(step: number, now: number): void {
    for (let a = this.deadlines.peek(); a && (a.deadline ?? 0) < now; a = this.deadlines.peek()) {
      this.deadlines.pop();
      if (!a.open || a.copy.attempt !== a) continue;
      a.open = false;
      this.report(
        "correctness",
        "I5 bounded",
        step,
        now,
        a.copy.sender,
        a.copy.msgId,
        `to n${a.copy.receiver}: neither delivered nor failed ${this.giveUpBoundMs} ms after its last frame first went out (at ${rel(
          (a.deadline ?? 0) - this.giveUpBoundMs,
          this.startMs,
        )})`,
      );
    }
  }

  // ---- end-of-run checks ------------------------------------------------------------------------------------

  /** I4, judged once every copy's fate is known. */
  checkOrder(step: number, now: number): void {
    for (const [pair, sends] of this.pairSends) {
      const clean = (c: Copy) => !c.failedEver && !c.crossedCrash;
      const delivered = (this.pairDeliveries.get(pair) ?? []).filter(clean);
      let expect = 0;
      const cleanSends = sends.filter(clean);
      for (const copy of delivered) {
        const position = cleanSends.indexOf(copy);
        if (position !== expect) {
          const skipped = cleanSends[expect];
          this.report(
            "correctness",
            "I4 order",
            copy.deliveredStep ?? step,
            now,
            copy.receiver,
            copy.msgId,
            `from n${copy.sender}: delivered send #${copy.index} while send #${skipped?.index} (${skipped?.msgId}), ` +
              "sent earlier and never failed nor caught in a crash, was not delivered before it",
          );
          break;
        }
        expect++;
      }
    }
  }

  /** I7: after the liveness phase, everything must have arrived, and been acknowledged to its sender. */
  checkLiveness(step: number, now: number, healedAt: number, pendingOf: (node: number) => number): void {
    let reported = 0;
    for (const copy of this.copies.values()) {
      if (copy.complete) continue;
      const got = this.deliveredAt[copy.receiver]?.has(deliveryKey(copy.sender, copy.msgId));
      if (reported++ < 5)
        this.report(
          "liveness",
          "I7 liveness",
          step,
          now,
          copy.sender,
          copy.msgId,
          `to n${copy.receiver} ${copy.entry.kind} still ${got ? "not acknowledged to its sender" : "not delivered"} ` +
            `${now - healedAt} ms after the heal (sender's last word: ${copy.senderResolved}${
              copy.failedEver ? ", failed before" : ""
            }${copy.crossedCrash ? ", in flight across a crash" : ""})`,
        );
    }
    if (reported > 0) return;
    for (let node = 0; node < this.ids.length; node++) {
      const pending = pendingOf(node);
      if (pending > 0)
        this.report(
          "liveness",
          "I7 liveness",
          step,
          now,
          node,
          undefined,
          `every message arrived, yet the engine still holds ${pending} unresolved or parked message(s)`,
        );
    }
  }

  report(
    cls: ViolationClass,
    invariant: string,
    step: number,
    now: number,
    node: number | undefined,
    msgId: string | undefined,
    detail: string,
  ): void {
    const count = (this.perInvariant.get(invariant) ?? 0) + 1;
    this.perInvariant.set(invariant, count);
    if (count > VIOLATIONS_PER_INVARIANT_MAX) return;
    const v: Violation = { cls, invariant, step, timeMs: now - this.startMs, detail };
    if (node !== undefined) v.node = node;
    if (msgId !== undefined) v.msgId = msgId;
    this.violations.push(v);
  }

  // ---- details ----------------------------------------------------------------------------------------------

  private onMessage(
    step: number,
    now: number,
    node: number,
    event: Extract<EngineEvent, { type: "message" }>,
  ): void {
    this.deliveries++;
    const sender = this.indexOf(event.from);
    const copy = sender === undefined ? undefined : this.copies.get(copyKey(sender, event.msgId, node));
    const seen = this.deliveredAt[node] as Set<string>;
    const key = deliveryKey(sender ?? -1, event.msgId);
    if (seen.has(key)) {
      this.report(
        "correctness",
        "I2 once",
        step,
        now,
        node,
        event.msgId,
        `delivered a second time (from ${event.from})`,
      );
      return;
    }
    seen.add(key);
    if (!copy) {
      this.report(
        "correctness",
        "I3 authentic",
        step,
        now,
        node,
        event.msgId,
        `delivered a message claimed by ${event.from} that it never sent to this node`,
      );
      return;
    }
    const sent = copy.entry;
    if (event.kind !== sent.kind || event.text !== sent.text || event.sentAt !== sent.sentAt) {
      const what =
        event.kind !== sent.kind
          ? `kind ${event.kind}, sent as ${sent.kind}`
          : event.text !== sent.text
            ? `text of ${event.text.length} chars differs from the ${sent.text.length} sent`
            : `sentAt ${event.sentAt}, sent with ${sent.sentAt}`;
      this.report(
        "correctness",
        "I1 integrity",
        step,
        now,
        node,
        event.msgId,
        `from n${copy.sender}: ${what}`,
      );
    }
    copy.deliveredStep = step;
    const pair = pairKey(copy.sender, node);
    const list = this.pairDeliveries.get(pair) ?? [];
    this.pairDeliveries.set(pair, list);
    list.push(copy);
    this.maybeComplete(copy);
  }

  private onDelivered(step: number, now: number, node: number, msgId: MsgId, to: PeerId): void {
    const copy = this.copyOf(node, msgId, to);
    if (!copy) {
      this.report(
        "correctness",
        "I3 authentic",
        step,
        now,
        node,
        msgId,
        `delivered reported for a message never sent to ${to}`,
      );
      return;
    }
    if (
      !this.deliveredAt[copy.receiver]?.has(deliveryKey(node, msgId)) &&
      !this.holds(copy.receiver, node, msgId)
    ) {
      this.report(
        "correctness",
        "I6 acked",
        step,
        now,
        node,
        msgId,
        `reported delivered to n${copy.receiver}, which has neither delivered it nor holds it whole`,
      );
    }
    copy.senderResolved = "delivered";
    this.closeAttempt(copy);
    this.maybeComplete(copy);
  }

  private maybeComplete(copy: Copy): void {
    if (copy.complete || copy.senderResolved !== "delivered") return;
    if (!this.deliveredAt[copy.receiver]?.has(deliveryKey(copy.sender, copy.msgId))) return;
    copy.complete = true;
    this.incomplete--;
  }

  private closeAttempt(copy: Copy): void {
    if (copy.attempt) copy.attempt.open = false;
  }

  private copyOf(sender: number, msgId: MsgId, to: PeerId): Copy | undefined {
    const receiver = this.indexOf(to);
    return receiver === undefined ? undefined : this.copies.get(copyKey(sender, msgId, receiver));
  }

  private indexOf(id: PeerId): number | undefined {
    const i = this.ids.indexOf(id);
    return i < 0 ? undefined : i;
  }
}

function copyKey(sender: number, msgId: string, receiver: number): string {
  return `${sender}/${msgId}/${receiver}`;
}

function pairKey(sender: number, receiver: number): string {
  return `${sender}>${receiver}`;
}

function deliveryKey(sender: number, msgId: string): string {
  return `${sender}/${msgId}`;
}

function rel(t: number, startMs: number): string {
  return `t=${t - startMs}ms`;
}

/** Attempts ordered by deadline (a binary heap); entries of attempts closed since are skipped when popped. */
class DeadlineHeap {
  private readonly items: Attempt[] = [];

  push(a: Attempt): void {
    const items = this.items;
    items.push(a);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (deadlineOf(items[parent]) <= deadlineOf(a)) break;
      items[i] = items[parent] as Attempt;
      i = parent;
    }
    items[i] = a;
  }

  peek(): Attempt | undefined {
    return this.items[0];
  }

  pop(): Attempt | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && deadlineOf(items[right]) < deadlineOf(items[left]) ? right : left;
      if (deadlineOf(items[child]) >= deadlineOf(last)) break;
      items[i] = items[child] as Attempt;
      i = child;
    }
    items[i] = last;
    return top;
  }
}

function deadlineOf(a: Attempt | undefined): number {
  return a?.deadline ?? Number.POSITIVE_INFINITY;
}
