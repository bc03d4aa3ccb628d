/**
 * Send: validates a batch, picks each message's queue, appends the valid ones
 * to the store in one call and answers per entry.
 */
import { Code, errors, statusOf } from '../../common/errors.js';
import type { SendEntry__Output } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendResult } from '../../common/generated/sluice/v1/SendResult.js';
import { checkTopicName, isWritable } from '../../common/names.js';
import type { MessageInput } from '../store/index.js';
import { newUniqueMessageId } from '../store/message-id.js';
import type { BrokerContext } from './broker-context.js';
import { isReservedProperty, SystemProperty } from './properties.js';

/** Java's String.hashCode, so a message group maps to the queue RocketMQ would pick. */
function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

function failed(err: unknown): SendResult {
  return { status: statusOf(err) };
}

export class SendService {
  private readonly roundRobin = new Map<string, number>();

  constructor(private readonly ctx: BrokerContext) {}

  /** Throws when this broker takes no writes at all (slave, or write permission wiped). */
  checkWritable(): void {
    const { options } = this.ctx;
    if (options.brokerRole === 'SLAVE') throw errors.notMaster(options.brokerName);
    if (!isWritable(this.ctx.perm())) {
      throw errors.noPermission(`broker ${options.brokerName} has no write permission`);
    }
  }

  async send(entries: readonly SendEntry__Output[]): Promise<SendResult[]> {
    this.checkWritable();
    const results: SendResult[] = new Array(entries.length);
    const inputs: MessageInput[] = [];
    const slots: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      try {
        inputs.push(await this.prepare(entries[i]!));
        slots.push(i);
      } catch (err) {
        results[i] = failed(err);
      }
    }
    if (inputs.length > 0) {
      try {
        const appended = await this.ctx.store.appendBatch(inputs);
        appended.forEach((r, j) => {
          results[slots[j]!] = {
            status: { code: Code.OK, message: 'OK' },
            message_id: r.messageId,
            offset_message_id: r.offsetMessageId,
            queue_id: inputs[j]!.queueId,
            queue_offset: r.queueOffset,
            physical_offset: r.physicalOffset,
          };
        });
      } catch (err) {
        for (const slot of slots) results[slot] = failed(err);
      }
    }
    return results;
  }

  private async prepare(entry: SendEntry__Output): Promise<MessageInput> {
    const m = entry.message;
    if (!m) throw errors.badRequest('send entry has no message');
    const topic = checkTopicName(m.topic);
    const max = this.ctx.options.maxMessageSize;
    if (m.body.length > max) throw errors.bodyTooLarge(m.body.length, max);
    const config = await this.ctx.topics.getOrCreate(topic);
    if (!config) throw errors.topicNotFound(topic);
    if (!isWritable(config.perm)) throw errors.noPermission(`topic '${topic}' is not writable`);
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.properties)) {
      if (isReservedProperty(k)) {
        throw errors.illegalPropertyKey(k);
      }
      properties[k] = v;
    }
    if (m.message_group) properties[SystemProperty.MESSAGE_GROUP] = m.message_group;
    if (m.traceparent) properties[SystemProperty.TRACEPARENT] = m.traceparent;
    if (m.tracestate) properties[SystemProperty.TRACESTATE] = m.tracestate;
    if (m.producer_group) properties[SystemProperty.PRODUCER_GROUP] = m.producer_group;
    return {
      topic,
      queueId: this.pickQueue(topic, config.write_queue_nums, entry.queue_id, m.message_group),
      body: m.body,
      tag: m.tag,
      keys: m.keys,
      properties,
      messageId: m.message_id || newUniqueMessageId(),
      bornTimestamp: m.born_timestamp_ms || this.ctx.clock(),
      bornHost: m.born_host || '127.0.0.1:0',
    };
  }

  private pickQueue(topic: string, writeQueues: number, requested: number, group: string): number {
    if (requested >= 0 && requested < writeQueues) return requested;
    if (group) return Math.abs(javaHash(group)) % writeQueues;
    const next = (this.roundRobin.get(topic) ?? -1) + 1;
    this.roundRobin.set(topic, next % writeQueues);
    return next % writeQueues;
  }
}
