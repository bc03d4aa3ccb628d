/**
 * Reads BrokerData.broker_addrs (`map<int32, string>`: broker id → address;
 * id 0 is the master). protobufjs hands map keys over as decimal strings.
 */

/**
 * Maps already built, by the record they were built from. The gateway reads
 * a cached route's addresses on every send and receive; a decoded route's
 * records are never changed afterwards (a new route is a new object), so the
 * map built once stays right for as long as the record lives.
 */
const built = new WeakMap<object, ReadonlyMap<number, string>>();
const NONE: ReadonlyMap<number, string> = new Map();

/** broker id → address, ids ascending (the master, id 0, first when present). Shared: do not change it. */
export function brokerAddrMap(
  addrs: Record<string | number, string> | undefined,
): ReadonlyMap<number, string> {
  if (!addrs) return NONE;
  let map = built.get(addrs);
  if (!map) {
    const out: [number, string][] = [];
    for (const [key, addr] of Object.entries(addrs)) out.push([Number(key), addr]);
    map = new Map(out.sort(([a], [b]) => a - b));
    built.set(addrs, map);
  }
  return map;
}

/** The master's (id 0) address, if any. */
export function masterAddrOf(
  addrs: Record<string | number, string> | undefined,
): string | undefined {
  // A decimal-string key "0" and the number 0 name the same property.
  return addrs?.[0];
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
