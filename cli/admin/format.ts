/**
 * Text output as RocketMQ's mqadmin prints it: `#`-headed columns, local
 * times `yyyy-MM-dd HH:mm:ss`, permissions as `RW-`; and the timestamp forms
 * its commands accept.
 */
import { errors } from '../../common/errors.js';
import { isReadable, isWritable, Perm } from '../../common/names.js';

/**
 * Aligns rows under `#`-prefixed headers, two spaces between columns.
 *
 * @example table(['Topic', 'QID'], [['T1', 0]]) // "#Topic  #QID\nT1      0"
 */
export function table(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cells = [headers.map((h) => `#${h}`), ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `key : value` lines, keys padded, sorted by key. */
export function keyValues(entries: Record<string, string>, separator = ':'): string {
  const keys = Object.keys(entries).sort();
  const width = Math.max(0, ...keys.map((k) => k.length));
  return keys.map((k) => `${k.padEnd(width)} ${separator} ${entries[k]}`).join('\n');
}

/** RocketMQ's perm string: R (read), W (write), X (inherit), `-` where unset. */
export function permString(perm: number): string {
  return `${isReadable(perm) ? 'R' : '-'}${isWritable(perm) ? 'W' : '-'}${perm & Perm.INHERIT ? 'X' : '-'}`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Local time `yyyy-MM-dd HH:mm:ss`; `-` for 0. */
export function formatTime(ms: number): string {
  if (!ms) return '-';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const ROCKETMQ_TIME = /^(\d{4})-(\d{2})-(\d{2})#(\d{2}):(\d{2}):(\d{2}):(\d{3})$/;

/**
 * Epoch ms from `now`, epoch milliseconds, RocketMQ's `yyyy-MM-dd#HH:mm:ss:SSS`
 * (local time) or an ISO-8601 date.
 */
export function parseTimestamp(text: string, now = Date.now()): number {
  const value = text.trim();
  if (value === 'now') return now;
  if (/^\d+$/.test(value)) return Number(value);
  const m = ROCKETMQ_TIME.exec(value);
  if (m) {
    const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const date = new Date(y, mo - 1, d, h, mi, s, ms);
    if (date.getMonth() === mo - 1 && date.getDate() === d) return date.getTime();
  } else if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw errors.badRequest(
    `timestamp '${text}' is not valid; expected now, epoch milliseconds or yyyy-MM-dd#HH:mm:ss:SSS`,
  );
}
