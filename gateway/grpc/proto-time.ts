/** google.protobuf Timestamp and Duration as the loader yields them (seconds as numbers). */

export interface ProtoSeconds {
  seconds?: number | string | { toString(): string } | null;
  nanos?: number | null;
}

/** Epoch milliseconds → Timestamp. */
export function toTimestamp(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Milliseconds → Duration. */
export function toDuration(ms: number): { seconds: number; nanos: number } {
  return toTimestamp(ms);
}

/** Timestamp or Duration → milliseconds; undefined when absent. */
export function toMillis(t: ProtoSeconds | null | undefined): number | undefined {
  if (!t) return undefined;
  return Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6);
}
