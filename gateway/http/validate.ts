/**
 * Request validation with the zod schemas that also document the API. A
 * failure becomes a SluiceError naming the field, so problem+json says what
 * was wrong and where (`messages.2.bodyEncoding: …`).
 */
import type { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { errors, type SluiceError } from '../../common/errors.js';

export type Where = 'body' | 'query' | 'path' | 'header';

function issueField(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) path.push(issue.keys[0]!);
  return path.join('.');
}

function toError(issue: z.core.$ZodIssue | undefined, input: unknown, where: Where): SluiceError {
  const field = issue ? issueField(issue) : '';
  let message = issue?.message ?? 'invalid';
  if (issue?.code === 'unrecognized_keys') message = 'unknown field';
  if (where === 'path' && input && typeof input === 'object') {
    const value = String((input as Record<string, unknown>)[field] ?? '');
    if (field === 'topic') return errors.illegalTopic(value, message);
    if (field === 'group') return errors.illegalGroup(value, message);
  }
  const label = field || (where === 'body' ? '(body)' : `(${where})`);
  return errors.badRequest(`${label}: ${message}`, { field: label, in: where });
}

/** Validates `input`; throws BAD_REQUEST (or ILLEGAL_TOPIC / ILLEGAL_CONSUMER_GROUP for path names). */
export function parse<T extends z.ZodType>(schema: T, input: unknown, where: Where): z.output<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  return (() => {
    throw toError(r.error.issues[0], input, where);
  })();
}

/** Parses JSON text; an empty body is `{}` so that every field takes its default. */
export function parseJsonText(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw errors.badRequest(`(body): not valid JSON: ${(err as Error).message}`, {
      field: '(body)',
      in: 'body',
    });
  }
}

/**
 * Reads a JSON body. An empty body is `{}` (every field defaulted), so
 * `curl -X POST …/receive` works. Any content type is accepted. Read from the
 * raw request, not c.req.text(): hono would cache the text on the request
 * and so keep it alive while the handler waits on a broker.
 */
export async function readJson(c: Context): Promise<unknown> {
  return parseJsonText(await c.req.raw.text());
}
