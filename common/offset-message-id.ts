/**
 * The physical-offset half of RocketMQ's offset message id (store host +
 * physical offset, upper-case hex; broker/store/message-id.ts makes the host
 * half). Shared because the gateway rebuilds offset message ids from a
 * broker's compact send results (common/compact-send-results.ts).
 */

/** Char codes of upper-case hex digits. */
const HEX_CODES = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 65, 66, 67, 68, 69, 70];

/**
 * Offset message id: `prefix` (the store host in upper-case hex) followed by
 * the physical offset as 16 upper-case hex digits. Hot path: one flat string,
 * no padStart. `physicalOffset` is a byte offset below 2^53.
 *
 * @example
 *   offsetMessageIdWithPrefix('0A00000700002A9F', 4096); // '0A00000700002A9F0000000000001000'
 */
export function offsetMessageIdWithPrefix(prefix: string, physicalOffset: number): string {
  const hi = Math.floor(physicalOffset / 0x100000000);
  const lo = physicalOffset - hi * 0x100000000;
  const h = HEX_CODES;
  return (
    prefix +
    String.fromCharCode(
      h[(hi >>> 28) & 15]!,
      h[(hi >>> 24) & 15]!,
      h[(hi >>> 20) & 15]!,
      h[(hi >>> 16) & 15]!,
      h[(hi >>> 12) & 15]!,
      h[(hi >>> 8) & 15]!,
      h[(hi >>> 4) & 15]!,
      h[hi & 15]!,
      h[(lo >>> 28) & 15]!,
      h[(lo >>> 24) & 15]!,
      h[(lo >>> 20) & 15]!,
      h[(lo >>> 16) & 15]!,
      h[(lo >>> 12) & 15]!,
      h[(lo >>> 8) & 15]!,
      h[(lo >>> 4) & 15]!,
      h[lo & 15]!,
    )
  );
}
