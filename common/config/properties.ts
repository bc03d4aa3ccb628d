/**
 * A reader for Java `.properties` files as RocketMQ uses them: `key=value`,
 * `key: value` or `key value`; `#` and `!` comments; a trailing backslash
 * continues a line; `\t \n \r \f \uXXXX` escapes. Each entry remembers the line
 * it started on so config errors can point at it.
 */
export interface PropertyEntry {
  key: string;
  value: string;
  /** 1-based line number where the entry starts. */
  line: number;
}

function decodeEscapes(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_m, esc: string) => {
    if (esc.length === 5) return String.fromCharCode(Number.parseInt(esc.slice(1), 16));
    switch (esc) {
      case 't':
        return '\t';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 'f':
        return '\f';
      default:
        return esc;
    }
  });
}

/** True when the line ends in an odd number of backslashes (a continuation). */
function continues(line: string): boolean {
  let n = 0;
  for (let i = line.length - 1; i >= 0 && line[i] === '\\'; i--) n++;
  return n % 2 === 1;
}

export function parseProperties(text: string): PropertyEntry[] {
  const lines = text.split(/\r\n|\r|\n/);
  const entries: PropertyEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const startLine = i + 1;
    let logical = (lines[i] ?? '').replace(/^[ \t\f]+/, '');
    if (logical === '' || logical.startsWith('#') || logical.startsWith('!')) continue;
    while (continues(logical) && i + 1 < lines.length) {
      i++;
      logical = logical.slice(0, -1) + (lines[i] ?? '').replace(/^[ \t\f]+/, '');
    }
    const sep = /(?<!\\)(?:[ \t\f]*[=:][ \t\f]*|[ \t\f]+)/.exec(logical);
    const key = sep ? logical.slice(0, sep.index) : logical;
    const value = sep ? logical.slice(sep.index + sep[0].length) : '';
    entries.push({
      key: decodeEscapes(key),
      value: decodeEscapes(value.replace(/[ \t\f]+$/, '')),
      line: startLine,
    });
  }
  return entries;
}
