/**
 * What the user typed to name a peer (`/p bob`, `/p 12002`, `/p 3f9c…`) to the contact it means. Kept apart from
 * ChatNode because it is the one place that decides when a name is ambiguous, and the wording that says so.
 */
import { ChatNodeError } from "./errors.ts";
import type { Contact } from "./types.ts";

/** A contact by user name, key id or port; throws UNKNOWN_PEER with a reason the user can act on. */
export function resolvePeer(peer: string | number, contacts: readonly Contact[], self: Contact): Contact {
  const key = String(peer).toLowerCase();
  const named = contacts.find((c) => c.name === key || c.id === key);
  if (named) return named;
  // Contacts on other machines may share a port (it is only where to find them): a port must name one of them.
  const onPort = contacts.filter((c) => String(c.port) === key);
  if (onPort.length > 1)
    throw new ChatNodeError(
      "UNKNOWN_PEER",
      `${onPort.map((c) => c.name).join(" and ")} share port ${key}: use a name`,
    );
  if (onPort[0]) return onPort[0];
  if (key === self.name || key === String(self.port))
    throw new ChatNodeError("UNKNOWN_PEER", "that is you: pick another user");
  throw new ChatNodeError("UNKNOWN_PEER", `no user "${peer}" in the directory (see /peers)`);
}
