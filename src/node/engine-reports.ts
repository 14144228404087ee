/**
 * The engine's events as a ChatNode reports them: peer ids become the names the user knows, waiting causes become
 * a sentence. Only committed events come here (pump.ts): what is reported has been stored.
 */
import type { EventEmitter } from "node:events";
import type { EngineEvent } from "../engine/events.ts";
import type { MsgId, PeerId } from "../engine/types.ts";
import type { OutgoingMessage } from "../storage/store.ts";
import type { CommittedEvent } from "./pump.ts";
import type { ChatNodeEvents } from "./types.ts";

/** The node itself, as the emitter of its events. */
export type NodeEmitter = Pick<EventEmitter<ChatNodeEvents>, "emit">;

/**
 * Runs after the pump's commit and before its datagrams leave: a `queued` for each message just written to the
 * outbox (with whom it waits for, as `waitingAtSend` noted at the send), then each fresh event.
 */
export function reportCommitted(
  queued: readonly OutgoingMessage[],
  events: readonly CommittedEvent[],
  waitingAtSend: Map<MsgId, string[]>,
  nameOf: (id: PeerId) => string,
  now: number,
  node: NodeEmitter,
): void {
  for (const m of queued) {
    const waiting = waitingAtSend.get(m.msgId) ?? [];
    waitingAtSend.delete(m.msgId);
    node.emit("queued", {
      msgId: m.msgId,
      kind: m.kind,
      to: m.recipients.map((r) => nameOf(r.peer)),
      waiting,
    });
  }
  for (const { event, fresh } of events) if (fresh) reportEngineEvent(event, nameOf, now, node);
}

export function reportEngineEvent(
  e: EngineEvent,
  nameOf: (id: PeerId) => string,
  now: number,
  node: NodeEmitter,
): void {
  const emit = node.emit.bind(node);
  switch (e.type) {
    case "message":
      emit("message", {
        msgId: e.msgId,
        from: nameOf(e.from),
        fromId: e.from,
        kind: e.kind,
        text: e.text,
        sentAt: e.sentAt,
        receivedAt: now,
      });
      return;
    case "delivered":
      emit("delivered", { msgId: e.msgId, to: nameOf(e.to), toId: e.to, tries: e.tries });
      return;
    case "failed":
      emit("failed", {
        msgId: e.msgId,
        to: nameOf(e.to),
        toId: e.to,
        reason: e.detail,
        code: e.reason,
      });
      return;
    case "waiting":
      emit("waiting", {
        msgId: e.msgId,
        to: nameOf(e.to),
        toId: e.to,
        cause: e.cause,
        reason:
          e.cause === "left"
            ? `${nameOf(e.to)} quit`
            : `no answer after ${e.tries} ${e.tries === 1 ? "try" : "tries"}`,
      });
      return;
    case "rejected":
      emit(
        "rejected",
        e.from
          ? { reason: e.reason, from: nameOf(e.from), address: e.address }
          : { reason: e.reason, address: e.address },
      );
      return;
    case "duplicate":
      emit("duplicate", e.msgId ? { from: nameOf(e.from), msgId: e.msgId } : { from: nameOf(e.from) });
      return;
    case "peer-online":
      emit("peer-online", { peer: nameOf(e.peer), id: e.peer, address: e.address });
      return;
    case "peer-offline":
      emit("peer-offline", { peer: nameOf(e.peer), id: e.peer });
      return;
  }
}
