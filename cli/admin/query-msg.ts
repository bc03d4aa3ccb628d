/**
 * `mqadmin queryMsgById` / `queryMsgByKey`: find messages through the
 * brokers of a topic's route (every broker group when no topic is given).
 */
import { Code, errors, isSluiceError } from '../../common/errors.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { checkTopicName } from '../../common/names.js';
import {
  type AdminContext,
  adminCommand,
  type BrokerTarget,
  groupLeaders,
  intArg,
  routeBrokers,
} from './context.js';
import { formatTime, parseTimestamp, table } from './format.js';

/** RocketMQ's queryMsgByKey default for -c. */
export const DEFAULT_QUERY_MAX_NUM = 64;
/** Bodies longer than this are cut in the human output. */
const BODY_PREVIEW_BYTES = 4096;

async function targets(ctx: AdminContext, topic: string | undefined): Promise<BrokerTarget[]> {
  if (topic) return routeBrokers(await ctx.namesrv.route(checkTopicName(topic)));
  return groupLeaders(await ctx.namesrv.clusterInfo());
}

function notFound(err: unknown): boolean {
  return isSluiceError(err, Code.MESSAGE_NOT_FOUND) || isSluiceError(err, Code.TOPIC_NOT_FOUND);
}

function bodyText(body: Buffer): string {
  const text = body.subarray(0, BODY_PREVIEW_BYTES).toString('utf8');
  const printable = ![...text].some((ch) => {
    const code = ch.codePointAt(0)!;
    // Control characters other than tab/newline/CR, or undecodable bytes: show base64.
    return (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0xfffd;
  });
  const shown = printable
    ? text
    : `base64:${body.subarray(0, BODY_PREVIEW_BYTES).toString('base64')}`;
  return body.length > BODY_PREVIEW_BYTES ? `${shown}… (${body.length} bytes)` : shown;
}

function messageJson(m: StoredMessage__Output) {
  const msg = m.message;
  return {
    messageId: msg?.message_id ?? '',
    offsetMessageId: m.offset_message_id,
    topic: msg?.topic ?? '',
    brokerName: m.broker_name,
    queueId: m.queue_id,
    queueOffset: m.queue_offset,
    physicalOffset: m.physical_offset,
    tag: msg?.tag ?? '',
    keys: msg?.keys ?? [],
    properties: msg?.properties ?? {},
    messageGroup: msg?.message_group ?? '',
    bornTimestampMs: msg?.born_timestamp_ms ?? 0,
    bornHost: msg?.born_host ?? '',
    storeTimestampMs: m.store_timestamp_ms,
    storeHost: m.store_host,
    reconsumeTimes: m.reconsume_times,
    body: msg?.body ? Buffer.from(msg.body).toString('base64') : '',
    bodyEncoding: 'base64',
  };
}

function describe(m: StoredMessage__Output): string {
  const msg = m.message;
  const rows: [string, string][] = [
    ['Message ID', msg?.message_id ?? ''],
    ['OffsetID', m.offset_message_id],
    ['Topic', msg?.topic ?? ''],
    ['Broker Name', m.broker_name],
    ['Tags', `[${msg?.tag ?? ''}]`],
    ['Keys', `[${(msg?.keys ?? []).join(', ')}]`],
    ['Queue ID', String(m.queue_id)],
    ['Queue Offset', String(m.queue_offset)],
    ['CommitLog Offset', String(m.physical_offset)],
    ['Reconsume Times', String(m.reconsume_times)],
    ['Born Timestamp', formatTime(msg?.born_timestamp_ms ?? 0)],
    ['Store Timestamp', formatTime(m.store_timestamp_ms)],
    ['Born Host', msg?.born_host || '-'],
    ['Store Host', m.store_host || '-'],
    ['Properties', JSON.stringify(msg?.properties ?? {})],
    ['Message Body', msg?.body ? bodyText(Buffer.from(msg.body)) : ''],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(21)}${v}`).join('\n');
}

export function queryMsgByIdCommand() {
  return adminCommand<{ msgId: string; topic?: string; consumerGroup?: string; clientId?: string }>(
    'queryMsgById',
    'Find a message by its id (client id or offset id)',
    (cmd) =>
      cmd
        .requiredOption('-i, --msgId <id>', 'message id')
        .option('-t, --topic <topic>', 'topic (narrows the search to its brokers)')
        .option('-g, --consumerGroup <group>', 'accepted for RocketMQ; no effect')
        .option('-d, --clientId <id>', 'accepted for RocketMQ; no effect'),
    async (ctx, opts) => {
      const direct = [opts.consumerGroup && '-g', opts.clientId && '-d'].filter(Boolean);
      if (direct.length > 0) {
        ctx.ignored(
          direct.join(' '),
          'pushing a message to one consumer client is not supported; it is only printed',
        );
      }
      const brokers = await targets(ctx, opts.topic);
      const found = await Promise.all(
        brokers.map((b) =>
          ctx.brokers
            .queryById(b.addr, { topic: opts.topic ?? '', message_id: opts.msgId })
            .then((r) => r.messages)
            .catch((err: unknown) => {
              if (notFound(err)) return [];
              throw err;
            }),
        ),
      );
      const messages = found.flat();
      if (messages.length === 0) throw errors.messageNotFound(`message ${opts.msgId} not found`);
      if (ctx.json) ctx.printJson({ messages: messages.map(messageJson) });
      else ctx.out(messages.map(describe).join('\n\n'));
    },
  );
}

interface KeyFlags {
  topic: string;
  msgKey: string;
  beginTimestamp?: string;
  endTimestamp?: string;
  maxNum: number;
}

export function queryMsgByKeyCommand() {
  return adminCommand<KeyFlags>(
    'queryMsgByKey',
    'Find messages of a topic by key',
    (cmd) =>
      cmd
        .requiredOption('-t, --topic <topic>', 'topic')
        .requiredOption('-k, --msgKey <key>', 'message key')
        .option('-b, --beginTimestamp <time>', 'from (epoch ms, now, yyyy-MM-dd#HH:mm:ss:SSS)')
        .option('-e, --endTimestamp <time>', 'until (epoch ms, now, yyyy-MM-dd#HH:mm:ss:SSS)')
        .option(
          '-c, --maxNum <n>',
          'most messages per broker',
          intArg(1, 10_000),
          DEFAULT_QUERY_MAX_NUM,
        ),
    async (ctx, opts) => {
      const begin = opts.beginTimestamp ? parseTimestamp(opts.beginTimestamp) : 0;
      const end = opts.endTimestamp ? parseTimestamp(opts.endTimestamp) : 0;
      const brokers = await targets(ctx, opts.topic);
      const found = await Promise.all(
        brokers.map((b) =>
          ctx.brokers
            .queryByKey(b.addr, {
              topic: opts.topic,
              key: opts.msgKey,
              max: opts.maxNum,
              begin_timestamp_ms: begin,
              end_timestamp_ms: end,
            })
            .then((r) => r.messages)
            .catch((err: unknown) => {
              if (notFound(err)) return [];
              throw err;
            }),
        ),
      );
      const messages = found.flat();
      if (ctx.json) {
        ctx.printJson({ messages: messages.map(messageJson) });
        return;
      }
      ctx.out(
        table(
          ['Message ID', 'Broker Name', 'QID', 'Offset', 'Store Time'],
          messages.map((m) => [
            m.message?.message_id || m.offset_message_id,
            m.broker_name,
            m.queue_id,
            m.queue_offset,
            formatTime(m.store_timestamp_ms),
          ]),
        ),
      );
    },
  );
}
