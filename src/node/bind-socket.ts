/**
 * The node's one UDP socket: made for the host's address family, bound, and its bind errors turned into the
 * ChatNodeErrors a user can act on. Once bound, errors are per-datagram and retransmission covers them.
 */
import { createSocket, type Socket, type SocketOptions } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { isIP } from "node:net";
import { ChatNodeError } from "./errors.ts";

/**
 * dgram resolves the host of every send, even an IP literal, through dns.lookup, which answers a literal on the
 * next tick: one deferred callback per datagram. Peers' addresses are IP literals, answered here at once; anything
 * else still goes to dns.lookup.
 */
const ipLiteralLookup: NonNullable<SocketOptions["lookup"]> = (hostname, options, callback) => {
  const family = isIP(hostname);
  if (family === 0) return dnsLookup(hostname, options, callback);
  callback(null, hostname, family);
};

/** Binds host:port (port 0 picks a free one). Throws PORT_IN_USE or BIND_FAILED; `host` must be an IP literal. */
export async function bindNodeSocket(host: string, port: number): Promise<Socket> {
  const socket = createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4", lookup: ipLiteralLookup });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", (err: NodeJS.ErrnoException) => {
      socket.close();
      reject(
        err.code === "EADDRINUSE"
          ? new ChatNodeError(
              "PORT_IN_USE",
              `port ${port} on ${host} is already in use (is another node running?)`,
            )
          : new ChatNodeError("BIND_FAILED", `cannot listen on ${host}:${port}: ${err.message}`),
      );
    });
    socket.bind(port, host, () => resolve());
  });
  socket.on("error", () => {}); // after binding, errors are per-datagram: retransmission covers them
  return socket;
}
