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
export const MAX_SEND_BATCH = 1024;
export const DEFAULT_PULL_MAX = 32;
export const DEFAULT_STREAM_BATCH = 16;
export const MAX_ORPHANS = 100;
export const DEFAULT_ORPHANS = 16;

const NAME_RULE = /^[%|a-zA-Z0-9_-]+$/;

const name = (what: string) =>
  z
    .string()
    .min(1)
    .max(127)
    .regex(NAME_RULE, `${what} may contain only letters, digits, %, |, _ and -`);

const topicName = name('topic').openapi({
  param: { name: 'topic', in: 'path' },
  example: 'orders',
});
const groupName = name('group').openapi({
  param: { name: 'group', in: 'path' },
  example: 'billing',
});

export const TopicParam = z.object({ topic: topicName });
export const TopicGroupParams = z.object({ topic: topicName, group: groupName });
export const GroupParam = z.object({ group: groupName });
export const MessageIdParam = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: 'id', in: 'path' }, example: '7F000001000A18B4AAC2' }),
});
export const TransactionParam = z.object({
  transactionId: z
    .string()
    .min(1)
    .max(256)
    .openapi({ param: { name: 'transactionId', in: 'path' } }),
});

const tag = z
  .string()
  .max(255)
  .regex(/^[^|\s*]*$/, 'tag may not contain |, * or white space');

export const SendMessageSchema = z
  .object({
    body: z.string().openapi({ example: 'hello' }),
    bodyEncoding: z.enum(['utf8', 'base64']).default('utf8'),
    tag: tag.optional(),
    keys: z.array(z.string().min(1).max(255)).max(32).optional(),
    properties: z.record(z.string().min(1).max(255), z.string()).optional(),
    messageGroup: z.string().min(1).max(255).optional(),
    deliveryTime: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .openapi({ description: 'epoch ms before which the message is not delivered' }),
    delaySeconds: z.number().int().nonnegative().optional(),
    transactional: z
      .boolean()
      .optional()
      .openapi({ description: 'half message: invisible until committed' }),
  })
  .strict()
  .openapi('SendMessage');

export const SendBatchSchema = z
  .object({ messages: z.array(SendMessageSchema).min(1).max(MAX_SEND_BATCH) })
  .strict()
  .openapi('SendBatch');

export const SendRequestSchema = z
  .union([SendBatchSchema, SendMessageSchema])
  .openapi('SendRequest');

export const RawBodySchema = z.string().openapi({
  format: 'binary',
  description:
    'Raw mode: the request body is the message body. Headers: x-mq-tag, x-mq-keys (comma-separated), ' +
    'x-mq-message-group, x-mq-delay-seconds, x-mq-delivery-time (epoch ms), x-mq-transactional, x-mq-property-NAME.',
});

export const SendHeadersSchema = z.object({
  'idempotency-key': z.string().max(255).optional().openapi({
    description:
      'a repeat within the window (10 min) returns the first result without storing again',
  }),
  'x-mq-tag': tag.optional(),
  'x-mq-keys': z.string().optional().openapi({ description: 'raw mode: comma-separated keys' }),
  'x-mq-message-group': z.string().max(255).optional(),
  'x-mq-delay-seconds': z.string().regex(/^\d+$/, 'a whole number of seconds').optional(),
  'x-mq-delivery-time': z.string().regex(/^\d+$/, 'epoch milliseconds').optional(),
  'x-mq-transactional': z.enum(['true', 'false']).optional(),
});

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

const filter = z
  .object({
    type: z.literal('TAG').default('TAG'),
    expression: z.string().max(1024).default('*').openapi({ example: 'TagA || TagB' }),
  })
  .strict();

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
    filter: filter.optional(),
  })
  .strict()
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
    receiptHandle: z
      .string()
      .optional()
      .openapi({ description: 'set for receive and stream deliveries' }),
    broker: z.string(),
    traceparent: z
      .string()
      .optional()
      .openapi({
        description:
          "W3C trace context the producer sent (the gateway's send span when tracing is on); " +
          'send it back as the traceparent header of the ack to continue the trace',
      }),
    tracestate: z.string().optional(),
  })
  .openapi('DeliveredMessage');

export const ReceiveResponseSchema = z
  .object({ messages: z.array(DeliveredMessageSchema) })
  .openapi('ReceiveResponse');

export const AckRequestSchema = z
  .object({ receiptHandles: z.array(z.string().min(1)).min(1).max(MAX_SEND_BATCH) })
  .strict()
  .openapi('AckRequest');

export const EntryStatusSchema = z
  .object({ status: z.string(), code: z.number().int(), message: z.string().optional() })
  .openapi('EntryStatus');

export const AckResponseSchema = z
  .object({ results: z.array(EntryStatusSchema.extend({ receiptHandle: z.string() })) })
  .openapi('AckResponse');

export const VisibilityRequestSchema = z
  .object({
    receiptHandle: z.string().min(1),
    invisibleSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_INVISIBLE_SECONDS)
      .openapi({ description: '0 = deliver again now' }),
  })
  .strict()
  .openapi('VisibilityRequest');

export const VisibilityResponseSchema = z
  .object({
    receiptHandle: z.string().openapi({ description: 'the new handle; the old one is stale' }),
  })
  .openapi('VisibilityResponse');

export const DeadLetterRequestSchema = z
  .object({ receiptHandle: z.string().min(1) })
  .strict()
  .openapi('DeadLetterRequest');

export const DeadLetterResponseSchema = z
  .object({ status: z.string(), code: z.number().int(), deadLetterTopic: z.string() })
  .openapi('DeadLetterResponse');

export const PullRequestSchema = z
  .object({
    broker: z
      .string()
      .min(1)
      .optional()
      .openapi({ description: 'broker holding the queue; required when the topic is on several' }),
    queueId: z.number().int().min(0),
    offset: z.number().int().min(0),
    max: z.number().int().min(1).max(MAX_RECEIVE_BATCH).default(DEFAULT_PULL_MAX),
    waitSeconds: z.number().min(0).max(MAX_WAIT_SECONDS).default(0),
    filter: filter.optional(),
  })
  .strict()
  .openapi('PullRequest');

export const PullResponseSchema = z
  .object({
    broker: z.string(),
    brokerId: z
      .number()
      .int()
      .openapi({ description: 'the node that answered: 0 = master, > 0 = a slave' }),
    queueId: z.number().int(),
    messages: z.array(DeliveredMessageSchema),
    nextOffset: z.number().int(),
    minOffset: z.number().int(),
    maxOffset: z.number().int(),
  })
  .openapi('PullResponse');

const QueueOffsetSchema = z
  .object({
    broker: z.string().min(1).optional(),
    queueId: z.number().int().min(0),
    offset: z.number().int().min(0),
  })
  .strict();

export const OffsetsRequestSchema = z
  .object({ offsets: z.array(QueueOffsetSchema).min(1).max(MAX_SEND_BATCH) })
  .strict()
  .openapi('OffsetsRequest');

export const OffsetsResponseSchema = z
  .object({
    results: z.array(
      EntryStatusSchema.extend({ broker: z.string().optional(), queueId: z.number().int() }),
    ),
  })
  .openapi('OffsetsResponse');

export const OffsetsListSchema = z
  .object({
    offsets: z.array(
      z.object({ broker: z.string(), queueId: z.number().int(), offset: z.number().int() }),
    ),
  })
  .openapi('OffsetsList');

export const StreamQuerySchema = z.object({
  max: z.coerce.number().int().min(1).max(MAX_RECEIVE_BATCH).default(DEFAULT_STREAM_BATCH),
  invisibleSeconds: z.coerce
    .number()
    .int()
    .min(MIN_INVISIBLE_SECONDS)
    .max(MAX_INVISIBLE_SECONDS)
    .default(DEFAULT_INVISIBLE_SECONDS),
  filter: z
    .string()
    .max(1024)
    .default('*')
    .openapi({ description: 'tag expression, e.g. TagA||TagB' }),
  autoAck: z
    .enum(['true', 'false'])
    .default('false')
    .openapi({ description: 'ack each message once written to the stream (at-most-once)' }),
});

export const TransactionRequestSchema = z
  .object({
    topic: name('topic'),
    messageId: z.string().min(1).max(128),
    broker: z
      .string()
      .min(1)
      .optional()
      .openapi({ description: 'the broker the send result named (faster)' }),
  })
  .strict()
  .openapi('TransactionRequest');

export const TransactionResponseSchema = z
  .object({
    status: z.string(),
    code: z.number().int(),
    transactionId: z.string(),
    broker: z.string(),
  })
  .openapi('TransactionResponse');

export const OrphansQuerySchema = z
  .object({
    topic: name('topic').openapi({ param: { name: 'topic', in: 'query' }, example: 'orders' }),
    max: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_ORPHANS)
      .default(DEFAULT_ORPHANS)
      .openapi({ param: { name: 'max', in: 'query' } }),
  })
  .strict();

export const OrphanedTransactionSchema = z
  .object({
    transactionId: z.string(),
    messageId: z.string(),
    topic: z.string(),
    broker: z.string().openapi({ description: 'pass it back as "broker" when committing' }),
    checkTimes: z.number().int().openapi({
      description: 'check-backs so far, this one included; past the limit the broker discards it',
    }),
    message: DeliveredMessageSchema,
  })
  .openapi('OrphanedTransaction');

export const OrphansResponseSchema = z
  .object({ transactions: z.array(OrphanedTransactionSchema) })
  .openapi('OrphansResponse');

export const ClusterResponseSchema = z
  .object({
    clusters: z.record(z.string(), z.array(z.string())),
    brokers: z.array(
      z.object({
        cluster: z.string(),
        brokerName: z.string(),
        addrs: z.record(z.string(), z.string()),
        live: z.array(
          z.object({
            addr: z.string(),
            role: z.string(),
            lastUpdateTimestamp: z.number().int(),
            maxPhysicalOffset: z.number().int(),
          }),
        ),
      }),
    ),
  })
  .openapi('Cluster');

export const TopicListSchema = z.object({ topics: z.array(z.string()) }).openapi('TopicList');

export const TopicPutRequestSchema = z
  .object({
    readQueueNums: z.number().int().min(1).max(1024).optional(),
    writeQueueNums: z.number().int().min(1).max(1024).optional(),
    perm: z
      .number()
      .int()
      .min(0)
      .max(7)
      .optional()
      .openapi({ description: '4 read, 2 write (6 = both)' }),
    messageType: z.enum(['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION', 'MIXED']).optional(),
    order: z.boolean().optional(),
    cluster: z.string().min(1).optional(),
    broker: z.string().min(1).optional(),
  })
  .strict()
  .openapi('TopicPutRequest');

export const TopicPutResponseSchema = z
  .object({ topic: z.string(), brokers: z.array(z.string()) })
  .openapi('TopicPutResponse');

export const ClusterQuerySchema = z.object({ cluster: z.string().min(1).optional() });

export const RouteResponseSchema = z
  .object({
    topic: z.string(),
    queues: z.array(
      z.object({
        broker: z.string(),
        readQueueNums: z.number().int(),
        writeQueueNums: z.number().int(),
        perm: z.number().int(),
        messageType: z.string(),
      }),
    ),
    brokers: z.array(
      z.object({
        cluster: z.string(),
        brokerName: z.string(),
        addrs: z.record(z.string(), z.string()),
      }),
    ),
  })
  .openapi('TopicRoute');

export const ProgressQuerySchema = z.object({ topic: name('topic').optional() });

export const ProgressResponseSchema = z
  .object({
    group: z.string(),
    totalLag: z.number().int(),
    queues: z.array(
      z.object({
        broker: z.string(),
        topic: z.string(),
        queueId: z.number().int(),
        brokerOffset: z.number().int(),
        consumerOffset: z.number().int(),
        lag: z.number().int(),
        inFlight: z.number().int(),
        lastTimestamp: z.number().int(),
      }),
    ),
    unreachable: z.array(z.string()),
  })
  .openapi('GroupProgress');

export const MessageByIdQuerySchema = z.object({ topic: name('topic').optional() });

export const MessagesByKeyQuerySchema = z.object({
  key: z.string().min(1).max(255),
  max: z.coerce.number().int().min(1).max(256).default(32),
  begin: z.coerce.number().int().min(0).optional().openapi({ description: 'epoch ms' }),
  end: z.coerce.number().int().min(0).optional().openapi({ description: 'epoch ms' }),
});

export const MessageListSchema = z
  .object({ messages: z.array(DeliveredMessageSchema) })
  .openapi('MessageList');

export const HealthSchema = z.object({ status: z.string() });
export const ReadySchema = z.object({
  ready: z.boolean(),
  namesrv: z.boolean(),
  broker: z.boolean(),
});

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
