/**
 * Human-readable log lines for a terminal: `12:03:04.567 INFO  mqbroker: msg key=value …`.
 * Takes pino's JSON line and rewrites it, so what is logged is the same in
 * both forms; a line that is not JSON passes through unchanged.
 */
const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Fields shown in the line's head, not as key=value. */
const HEAD = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname']);

function valueText(v: unknown): string {
  if (typeof v === 'string') return /[\s="]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

export function prettyLine(line: string, color = true): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (o === null || typeof o !== 'object') return line;
  const time = new Date(typeof o.time === 'number' ? o.time : Date.now())
    .toISOString()
    .slice(11, 23);
  const [label, tint] = LEVELS[Number(o.level)] ?? [String(o.level).padEnd(5), ''];
  const lvl = color ? `${tint}${label}${RESET}` : label;
  const name = o.name ? `${String(o.name)}: ` : '';
  const rest: string[] = [];
  for (const k in o) if (!HEAD.has(k)) rest.push(`${k}=${valueText(o[k])}`);
  const tail =
    rest.length === 0 ? '' : color ? ` ${DIM}${rest.join(' ')}${RESET}` : ` ${rest.join(' ')}`;
  return `${time} ${lvl} ${name}${String(o.msg ?? '')}${tail}\n`;
}
