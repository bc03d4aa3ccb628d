/**
 * Reads BrokerData.broker_addrs (`map<int64, string>`, broker id → address).
 * protobufjs decodes 64-bit map keys as 8-character "long hash" strings (the
 * id's 8 little-endian bytes), not as numbers; this turns either form back
 * into numeric ids. With `map<int32, string>` keys arrive as digits and this
 * is a no-op.
 */
export function brokerAddrsOf(addrs: Record<string | number, string>): Map<number, string> {
  const out = new Map<number, string>();
  for (const [key, addr] of Object.entries(addrs)) out.set(brokerIdOfKey(key), addr);
  return new Map([...out].sort(([a], [b]) => a - b));
}

/** A map key as a broker id: digits, or protobufjs's 8-byte little-endian hash. */
export function brokerIdOfKey(key: string): number {
  if (/^-?\d+$/.test(key)) return Number(key);
  if (key.length === 8) {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 4; i++) {
      lo += key.charCodeAt(i) * 2 ** (8 * i);
      hi += key.charCodeAt(i + 4) * 2 ** (8 * i);
    }
    return hi * 2 ** 32 + lo;
  }
  return Number.NaN;
}
