/**
 * Reads BrokerData.broker_addrs (broker id → address; id 0 is the master).
 * The map is `map<int32, string>`, whose keys protobufjs hands over as
 * decimal strings; a `map<int64, string>` (as it was) comes as 8-character
 * "long hash" strings instead. Both forms are accepted, so a name server
 * speaking either works.
 */

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

/** broker id → address, ids ascending (the master, id 0, first when present). */
export function brokerAddrMap(
  addrs: Record<string | number, string> | undefined,
): Map<number, string> {
  const out: [number, string][] = [];
  for (const [key, addr] of Object.entries(addrs ?? {})) out.push([brokerIdOfKey(key), addr]);
  return new Map(out.sort(([a], [b]) => a - b));
}

/** The master's (id 0) address, if any. */
export function masterAddrOf(
  addrs: Record<string | number, string> | undefined,
): string | undefined {
  return brokerAddrMap(addrs).get(0);
}

/** The master's address, else the lowest-id slave's (for reads). */
export function anyAddrOf(addrs: Record<string | number, string> | undefined): string | undefined {
  return brokerAddrMap(addrs).values().next().value;
}

/** broker id (as a decimal string) → address, for JSON. */
export function brokerAddrsJson(
  addrs: Record<string | number, string> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, addr] of brokerAddrMap(addrs)) out[String(id)] = addr;
  return out;
}
