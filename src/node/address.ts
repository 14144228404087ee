import { isIP } from "node:net";

/** "127.0.0.1:12001" or "[::1]:12001": the engine's opaque address strings. */
export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function parseAddress(address: string): { host: string; port: number } {
  const match = /^\[(.+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (!match) throw new RangeError(`not an address: ${address}`);
  return { host: match[1] as string, port: Number(match[2]) };
}
