/**
 * Transactions over REST: POST /v1/transactions/{transactionId}/commit and
 * /rollback end a half message's transaction; GET /v1/transactions/orphans
 * is the check-back for producers that poll (DESIGN.md §5): the half
 * messages left undecided, which the producer then commits or rolls back.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { Code, codeName } from '../../../common/errors.js';
import type { AppDeps } from '../deps.js';
import { headersOf } from '../headers.js';
import { toDeliveredJson } from '../message-json.js';
import { jsonBody, jsonResponse, mount, problems } from '../route.js';
import {
  OrphansQuerySchema,
  OrphansResponseSchema,
  TransactionParam,
  TransactionRequestSchema,
  TransactionResponseSchema,
} from '../schemas.js';
import { traceEndTransaction } from '../tracing.js';
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
      ...problems(400, 404, 503),
    },
  });

const orphansRoute = createRoute({
  method: 'get',
  path: '/v1/transactions/orphans',
  summary: 'Transaction check-back: half messages of a topic waiting for their producer to decide',
  description:
    "Lists transactional messages of the topic that were neither committed nor rolled back within the broker's " +
    'transactionTimeOut. Decide each with POST /v1/transactions/{transactionId}/commit or /rollback (pass topic, ' +
    'messageId and broker). Each listing counts as one check-back: an undecided transaction is listed again every ' +
    'transactionCheckInterval, and discarded after transactionCheckMax check-backs. max applies per broker.',
  request: { query: OrphansQuerySchema },
  responses: {
    200: jsonResponse('undecided transactions, possibly none', OrphansResponseSchema),
    ...problems(400, 404, 503),
  },
});

export function mountTransactions(app: OpenAPIHono, deps: AppDeps): void {
  mount(app, orphansRoute, async (c) => {
    const q = parse(OrphansQuerySchema, c.req.query(), 'query');
    const orphans = await deps.service.orphans(q.topic, q.max);
    return c.json(
      {
        transactions: orphans.map((o) => ({
          transactionId: o.transactionId,
          messageId: o.message.message?.message_id ?? '',
          topic: o.message.message?.topic ?? q.topic,
          broker: o.broker,
          checkTimes: o.checkTimes,
          message: toDeliveredJson(o.message),
        })),
      },
      200,
    );
  });

  for (const action of ['commit', 'rollback'] as const) {
    mount(app, route(action), async (c) => {
      const { transactionId } = parse(TransactionParam, c.req.param(), 'path');
      const body = parse(TransactionRequestSchema, await readJson(c), 'body');
      const end = {
        topic: body.topic,
        messageId: body.messageId,
        transactionId,
        commit: action === 'commit',
      };
      const { broker } = await traceEndTransaction(end, headersOf(c), () =>
        deps.service.endTransaction({ ...end, ...(body.broker ? { broker: body.broker } : {}) }),
      );
      return c.json({ status: codeName(Code.OK), code: Code.OK, transactionId, broker }, 200);
    });
  }
}
