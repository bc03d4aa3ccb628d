/**
 * Reads BrokerData.broker_addrs (`map<int32, string>`: broker id → address;
 * id 0 is the master). protobufjs hands map keys over as decimal strings.
 */

/** broker id → address, ids ascending (the master, id 0, first when present). */
export function brokerAddrMap(
  addrs: Record<string | number, string> | undefined,
): Map<number, string> {
  const out: [number, string][] = [];
  for (const [key, addr] of Object.entries(addrs ?? {})) out.push([Number(key), addr]);
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
