/** POST /v1/transactions/{transactionId}/commit and /rollback: end a half message's transaction. */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { Code, codeName } from '../../../common/errors.js';
import type { AppDeps } from '../deps.js';
import { jsonBody, jsonResponse, mount, problems } from '../route.js';
import {
  TransactionParam,
  TransactionRequestSchema,
  TransactionResponseSchema,
} from '../schemas.js';
import { parse, readJson } from '../validate.js';

const route = (action: 'commit' | 'rollback') =>
  createRoute({
    method: 'post',
    path: `/v1/transactions/{transactionId}/${action}`,
    summary:
      action === 'commit'
        ? 'Commit a transaction: its half message becomes visible to consumers'
        : 'Roll back a transaction: its half message is discarded',
    description:
      'The body names the topic and messageId from the transactional send result (and optionally its broker).',
    request: { params: TransactionParam, body: jsonBody(TransactionRequestSchema) },
    responses: {
      200: jsonResponse('the transaction is ended', TransactionResponseSchema),
      ...problems(400, 404, 501, 503),
    },
  });

export function mountTransactions(app: OpenAPIHono, deps: AppDeps): void {
  for (const action of ['commit', 'rollback'] as const) {
    mount(app, route(action), async (c) => {
      const { transactionId } = parse(TransactionParam, c.req.param(), 'path');
      const body = parse(TransactionRequestSchema, await readJson(c), 'body');
      const { broker } = await deps.service.endTransaction({
        topic: body.topic,
        messageId: body.messageId,
        transactionId,
        commit: action === 'commit',
        ...(body.broker ? { broker: body.broker } : {}),
      });
      return c.json({ status: codeName(Code.OK), code: Code.OK, transactionId, broker }, 200);
    });
  }
}
