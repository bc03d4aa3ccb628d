/**
 * Reporting for the commands RocketMQ applies to every name server of the
 * list (write permission, KV config): one line per name server; failures
 * make the exit code non-zero, and when none answered the command fails
 * with one error.
 */
import { errors } from '../../common/errors.js';
import type { AdminContext } from './context.js';
import { type EachResult, shortReason } from './namesrv-client.js';

export function reportEach<T>(
  ctx: AdminContext,
  results: EachResult<T>[],
  line: (addr: string, value: T) => string,
): { addr: string; value: T }[] {
  const ok = results.filter((r): r is { addr: string; value: T } => r.error === undefined);
  if (ok.length === 0) {
    const first = results[0]?.error;
    // Transport failures keep the raw gRPC error as cause; a name server's own errors do not.
    const unreachable = results.every((r) => r.error?.cause !== undefined);
    if (unreachable || !first) {
      throw errors.unavailable(
        `cannot reach any name server (${results.map((r) => r.addr).join(';')}): ${shortReason(first)}`,
      );
    }
    throw first;
  }
  if (!ctx.json) for (const r of ok) ctx.out(line(r.addr, r.value));
  for (const r of results) {
    if (r.error) {
      ctx.warn(`name server ${r.addr}: ${shortReason(r.error)}`);
      ctx.failed = true;
    }
  }
  return ok;
}
