/**
 * Building the records that carry a message again: into a group's
 * `%RETRY%{group}` topic (next delivery attempt) or `%DLQ%{group}` (given up).
 * Both keep the client message id, body, tag, keys and properties, and name
 * the topic and queue the message originally belonged to.
 *
 * Delivery attempts (RocketMQ 5 / v2 semantics, maxDeliveryAttempts): the
 * first delivery is attempt 1 (reconsumeTimes 0); a retry record stored with
 * reconsumeTimes n is delivered as attempt n + 1. With maxReconsumeTimes = 16
 * a message is delivered at most 16 times: when the 16th delivery's invisible
 * time runs out un-acked, it goes to the DLQ instead of a 17th delivery.
 */
import { dlqTopicOf, retryTopicOf } from '../../common/names.js';
import type { MessageInput, StoredRecord } from '../store/index.js';
import type { BrokerContext } from './broker-context.js';
import { SystemProperty } from './properties.js';

/** The topic a stored record belongs to for consumers (its REAL_TOPIC when moved). */
export function realTopicOf(r: StoredRecord): string {
  return r.properties[SystemProperty.REAL_TOPIC] ?? r.topic;
}

export function realQueueIdOf(r: StoredRecord): number {
  const q = r.properties[SystemProperty.REAL_QUEUE_ID];
  return q === undefined ? r.queueId : Number(q);
}

/**
 * Deliveries a group allows before dead-lettering: its retry_max_times when
 * set (0 is a setting: like 1, a single delivery and no retry), else the
 * broker's maxReconsumeTimes.
 */
export function maxDeliveriesOf(ctx: BrokerContext, group: string): number {
  return Math.max(1, ctx.groups.get(group)?.retry_max_times ?? ctx.options.maxReconsumeTimes);
}

function moved(r: StoredRecord, group: string): Record<string, string> {
  return {
    ...r.properties,
    [SystemProperty.REAL_TOPIC]: realTopicOf(r),
    [SystemProperty.REAL_QUEUE_ID]: String(realQueueIdOf(r)),
    [SystemProperty.ORIGIN_MESSAGE_ID]:
      r.properties[SystemProperty.ORIGIN_MESSAGE_ID] ?? r.offsetMessageId,
    [SystemProperty.CONSUMER_GROUP]: group,
  };
}

/** The retry record for a delivery `attempt` that ran out: delivered next as attempt + 1. */
export function retryInput(group: string, r: StoredRecord, attempt: number): MessageInput {
  return {
    topic: retryTopicOf(group),
    queueId: 0,
    body: r.body,
    tag: r.tag,
    keys: r.keys,
    properties: moved(r, group),
    messageId: r.messageId,
    flag: r.flag,
    bornTimestamp: r.bornTimestamp,
    bornHost: r.bornHost,
    reconsumeTimes: attempt,
  };
}

/** The dead-letter record of a message delivered `attempts` times. */
export function deadLetterInput(group: string, r: StoredRecord, attempts: number): MessageInput {
  return {
    topic: dlqTopicOf(group),
    queueId: 0,
    body: r.body,
    tag: r.tag,
    keys: r.keys,
    properties: moved(r, group),
    messageId: r.messageId,
    flag: r.flag,
    bornTimestamp: r.bornTimestamp,
    bornHost: r.bornHost,
    reconsumeTimes: attempts,
  };
}

/** Creates the group's retry / DLQ topics (one queue each) before the first record goes there. */
export async function ensureGroupTopics(
  ctx: BrokerContext,
  inputs: readonly MessageInput[],
): Promise<void> {
  const seen = new Set<string>();
  for (const i of inputs) {
    if (seen.has(i.topic)) continue;
    seen.add(i.topic);
    if (!ctx.topics.get(i.topic)) await ctx.topics.getOrCreate(i.topic, true, 1);
  }
}
