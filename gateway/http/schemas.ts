/**
 * Request and response schemas of the REST API. The same zod schemas
 * validate requests and generate /openapi.json, so the document cannot drift.
 */
import { z } from '@hono/zod-openapi';

export const MAX_RECEIVE_BATCH = 32;
export const MAX_WAIT_SECONDS = 30;
export const MIN_INVISIBLE_SECONDS = 10;
export const MAX_INVISIBLE_SECONDS = 43_200;
export const DEFAULT_INVISIBLE_SECONDS = 30;
export const DEFAULT_RECEIVE_MAX = 1;

const name = (what: string) =>
  z
    .string()
    .min(1)
    .max(127)
    .regex(/^[%|a-zA-Z0-9_-]+$/, `${what} may contain only letters, digits, %, |, _ and -`);

export const TopicParam = z.object({
  topic: name('topic').openapi({ param: { name: 'topic', in: 'path' }, example: 'orders' }),
});

export const TopicGroupParams = TopicParam.extend({
  group: name('group').openapi({ param: { name: 'group', in: 'path' }, example: 'billing' }),
});

export const SendMessageSchema = z
  .object({
    body: z.string().openapi({ example: 'hello' }),
    bodyEncoding: z.enum(['utf8', 'base64']).default('utf8'),
    tag: z
      .string()
      .max(255)
      .regex(/^[^|\s*]*$/, 'tag may not contain |, * or white space')
      .optional(),
    keys: z.array(z.string().min(1).max(255)).max(32).optional(),
    properties: z.record(z.string(), z.string()).optional(),
    messageGroup: z.string().min(1).max(255).optional(),
    deliveryTime: z.number().int().nonnegative().optional().openapi({ description: 'epoch ms' }),
    delaySeconds: z.number().int().nonnegative().optional(),
    transactional: z.boolean().optional(),
  })
  .openapi('SendMessage');

export const SendRequestSchema = z
  .union([z.object({ messages: z.array(SendMessageSchema).min(1).max(1024) }), SendMessageSchema])
  .openapi('SendRequest');

export const SendResultSchema = z
  .object({
    messageId: z.string().optional(),
    status: z.string().openapi({ example: 'OK' }),
    code: z.number().int(),
    message: z.string().optional(),
    broker: z.string().optional(),
    queueId: z.number().int().optional(),
    offset: z.number().int().optional(),
    transactionId: z.string().optional(),
  })
  .openapi('SendResult');

export const SendResponseSchema = z
  .object({ results: z.array(SendResultSchema) })
  .openapi('SendResponse');

export const ReceiveRequestSchema = z
  .object({
    max: z.number().int().min(1).max(MAX_RECEIVE_BATCH).default(DEFAULT_RECEIVE_MAX),
    waitSeconds: z.number().min(0).max(MAX_WAIT_SECONDS).default(0),
    invisibleSeconds: z
      .number()
      .int()
      .min(MIN_INVISIBLE_SECONDS)
      .max(MAX_INVISIBLE_SECONDS)
      .default(DEFAULT_INVISIBLE_SECONDS),
    filter: z
      .object({ type: z.literal('TAG').default('TAG'), expression: z.string().max(1024).default('*') })
      .optional(),
  })
  .openapi('ReceiveRequest');

export const DeliveredMessageSchema = z
  .object({
    messageId: z.string(),
    topic: z.string(),
    body: z.string(),
    bodyEncoding: z.enum(['utf8', 'base64']),
    tag: z.string().optional(),
    keys: z.array(z.string()),
    properties: z.record(z.string(), z.string()),
    messageGroup: z.string().optional(),
    queueId: z.number().int(),
    offset: z.number().int(),
    bornTimestamp: z.number().int(),
    storeTimestamp: z.number().int(),
    deliveryAttempt: z.number().int(),
    receiptHandle: z.string(),
    broker: z.string(),
  })
  .openapi('DeliveredMessage');

export const ReceiveResponseSchema = z
  .object({ messages: z.array(DeliveredMessageSchema) })
  .openapi('ReceiveResponse');

export const AckRequestSchema = z
  .object({ receiptHandles: z.array(z.string().min(1)).min(1).max(1024) })
  .openapi('AckRequest');

export const AckResponseSchema = z
  .object({
    results: z.array(
      z.object({
        receiptHandle: z.string(),
        status: z.string(),
        code: z.number().int(),
        message: z.string().optional(),
      }),
    ),
  })
  .openapi('AckResponse');

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.number().int().openapi({ description: 'apache.rocketmq.v2 Code value' }),
  })
  .passthrough()
  .openapi('Problem');
