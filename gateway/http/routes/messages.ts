/**
 * POST /v1/topics/{topic}/messages: one message or a batch, as a JSON
 * envelope or as a raw body with x-mq-* headers; Idempotency-Key honoured.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { context } from '@opentelemetry/api';
import { Code, errors } from '../../../common/errors.js';
import type { Message } from '../../../common/generated/sluice/v1/Message.js';
import type { SendOutcome } from '../../core/gateway-service.js';
import { fingerprintOf, IdempotencyGuard } from '../../core/idempotency-guard.js';
import type { AppDeps } from '../deps.js';
import { type HeaderView, headersOf } from '../headers.js';
import { isRawSend, rawToMessage, sendResultJson, toMessage } from '../message-json.js';
import { jsonResponse, mount, problems } from '../route.js';
import {
  RawBodySchema,
  SendBatchSchema,
  SendHeadersSchema,
  SendMessageSchema,
  SendRequestSchema,
  SendResponseSchema,
  TopicParam,
} from '../schemas.js';
import { startSendTrace } from '../tracing.js';
import { parse, parseJsonText } from '../validate.js';

export const REPLAY_HEADER = 'idempotent-replayed';

/**
 * Whether a broker stored the message: OK, or a status such as
 * SLAVE_NOT_AVAILABLE that comes with a message id (RocketMQ's SendResult).
 */
function isStored(r: SendOutcome): boolean {
  return r.status.code === Code.OK || r.messageId !== undefined;
}

const sendRoute = createRoute({
  method: 'post',
  path: '/v1/topics/{topic}/messages',
  summary: 'Send one message or a batch',
  description:
    'JSON envelope (content-type application/json): one message object or {"messages":[…]} (up to 1024). ' +
    'Raw mode (any other content type, or any x-mq-* header): the body is the message, attributes come from headers. ' +
    'Answers per message; when no message was stored the request fails with the first error. ' +
    'An entry stored on a SYNC_MASTER whose slave did not confirm it carries its messageId with code ' +
    '50002 (SLAVE_NOT_AVAILABLE) or 50402 (FLUSH_SLAVE_TIMEOUT): it is stored and will be delivered; it is not ' +
    'sent again elsewhere, so retrying it yourself may store a duplicate. ' +
    'With Idempotency-Key a repeat within 10 minutes returns the first answer (header idempotent-replayed: true).',
  request: {
    params: TopicParam,
    headers: SendHeadersSchema,
    body: {
      required: true,
      content: {
        'application/json': { schema: SendRequestSchema },
        'application/octet-stream': { schema: RawBodySchema },
        'text/plain': { schema: RawBodySchema },
      },
    },
  },
  responses: {
    200: jsonResponse('per-message results', SendResponseSchema),
    ...problems(400, 404, 413, 429, 503),
  },
});

function headerFingerprint(headers: HeaderView): string {
  const parts: string[] = [];
  for (const [k, v] of headers) if (k.startsWith('x-mq-')) parts.push(`${k}=${v}`);
  return parts.sort().join('\n');
}

export function mountMessages(app: OpenAPIHono, deps: AppDeps): void {
  mount(app, sendRoute, async (c) => {
    const { topic } = parse(TopicParam, c.req.param(), 'path');
    const headers = headersOf(c);
    const key = headers.get('idempotency-key');
    const idempotency = key == null ? undefined : deps.idempotency;
    const now = Date.now();
    let messages: Message[];
    // Computed only under an Idempotency-Key, and before the send: holding the
    // request text for the whole send (as a closure or hono's body cache
    // would) keeps ~110 KB per in-flight batch alive through young-generation
    // collections, which then copy and promote it.
    let fingerprint = '';
    if (isRawSend(headers)) {
      // Refuse an oversized body before reading it, let alone sending it.
      const declared = Number(headers.get('content-length') ?? -1);
      if (declared > deps.maxMessageSize) throw errors.bodyTooLarge(declared, deps.maxMessageSize);
      const body = Buffer.from(await c.req.raw.arrayBuffer());
      messages = [rawToMessage(body, headers, now)];
      if (idempotency) fingerprint = fingerprintOf('raw', topic, headerFingerprint(headers), body);
    } else {
      const text = await c.req.raw.text();
      const json = parseJsonText(text);
      if (json !== null && typeof json === 'object' && 'messages' in json) {
        messages = parse(SendBatchSchema, json, 'body').messages.map((m, i) =>
          toMessage(m, now, i),
        );
      } else {
        messages = [toMessage(parse(SendMessageSchema, json, 'body'), now)];
      }
      if (idempotency) fingerprint = fingerprintOf('json', topic, text);
    }
    for (const m of messages) m.topic = topic;
    deps.service.validate(messages);

    const started = performance.now();
    const traced = startSendTrace(topic, messages, headers);
    const store = async (): Promise<{ value: SendOutcome[]; replayed: boolean }> => {
      if (idempotency && key != null) {
        IdempotencyGuard.checkKey(key);
        return idempotency.run(
          `${topic}:${key}`,
          fingerprint,
          () => deps.service.send(topic, messages),
          // Remembered once anything was stored, so a repeat cannot store a duplicate.
          (rs) => rs.some(isStored),
        );
      }
      return { value: await deps.service.send(topic, messages), replayed: false };
    };
    let results: SendOutcome[];
    let replayed: boolean;
    try {
      ({ value: results, replayed } = await (traced
        ? context.with(traced.context, store)
        : store()));
    } catch (err) {
      traced?.end(undefined, err);
      throw err;
    }
    traced?.end(results);
    deps.metrics?.sendDuration.observe({ topic }, (performance.now() - started) / 1000);
    let ok = 0;
    let okBytes = 0;
    results.forEach((r, i) => {
      if (!isStored(r)) return;
      ok++;
      okBytes += messages[i]!.body?.length ?? 0;
    });
    if (ok === 0) {
      // Nothing was stored: the request as a whole failed, with the first entry's error.
      const s = results[0]!.status;
      throw errors.fromStatus(
        s.code,
        s.message,
        s.reason,
        s.retryAfterMs === undefined ? undefined : { retryAfterMs: s.retryAfterMs },
      );
    }
    if (!replayed) {
      deps.metrics?.messagesSent.inc(ok);
      deps.metrics?.countMessages('in', topic, ok, okBytes);
    }
    if (replayed) c.header(REPLAY_HEADER, 'true');
    return c.json({ results: results.map(sendResultJson) }, 200);
  });
}
