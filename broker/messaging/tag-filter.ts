/**
 * Tag filter expressions: `*` or empty = every message, `TagA || TagB` = any
 * of those tags.
 */
import { errors } from '../../common/errors.js';
import type { TagFilter } from '../store/index.js';

const TAG_PATTERN = /^[^|\s*]+$/;

/** Parses an expression; null means "everything". */
export function parseTagFilter(expression: string | undefined | null): TagFilter | null {
  const text = (expression ?? '').trim();
  if (text === '' || text === '*') return null;
  const tags = text.split('||').map((t) => t.trim());
  for (const tag of tags) {
    if (!TAG_PATTERN.test(tag)) throw errors.illegalFilter(text, `'${tag}' is not a tag`);
  }
  return { tags: new Set(tags) };
}

export function matchesTag(filter: TagFilter | null, tag: string): boolean {
  return filter === null || filter.tags.has(tag);
}
