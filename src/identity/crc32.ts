/**
 * CRC-32 (IEEE 802.3, the one zlib, PNG and gzip use), for the checksum of contact codes. A CRC rather than a
 * truncated hash because it *guarantees* what a typo check needs: every error confined to 32 consecutive bits is
 * detected, so any single mistyped character is, always, not merely with high probability. It is no protection
 * against a forger (the key binding signature and the fingerprint are); zlib.crc32 needs Node 20.15, hence our own.
 */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
