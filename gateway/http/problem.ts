/** Writes errors as application/problem+json (the mapping itself is common/errors-http.ts). */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { Code, errors, SluiceError, toSluiceError } from '../../common/errors.js';
import { PROBLEM_CONTENT_TYPE, retryAfterSecondsOf, toProblem } from '../../common/errors-http.js';

/** Turns hono's own exceptions (bad JSON, body too large) into SluiceErrors. */
export function fromHttpException(err: HTTPException): SluiceError {
  if (err.status === 413)
    return new SluiceError(Code.PAYLOAD_TOO_LARGE, 'request body is too large');
  if (err.status === 400) return errors.badRequest(`malformed request: ${err.message}`);
  return errors.internal(err.message, err);
}

export function problemResponse(c: Context, err: unknown): Response {
  const e = err instanceof HTTPException ? fromHttpException(err) : toSluiceError(err);
  const problem = toProblem(e, c.req.path);
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  if (problem.status === 429 || problem.status === 503)
    headers['retry-after'] = String(retryAfterSecondsOf(e));
  // The refused body may still be on the wire: don't let the client reuse the connection.
  if (problem.status === 413) headers.connection = 'close';
  return new Response(JSON.stringify(problem), { status: problem.status, headers });
}
