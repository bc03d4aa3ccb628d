/** Converts store records into the StoredMessage shape of the internal protocol. */
import type { StoredMessage } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { StoredRecord } from '../store/index.js';
import { SystemProperty, userProperties } from './properties.js';

export function toStoredMessage(
  r: StoredRecord,
  brokerName: string,
  extra: { deliveryAttempt?: number; receiptHandle?: string; topic?: string } = {},
): StoredMessage {
  const p = r.properties;
  return {
    message: {
      topic: extra.topic ?? p[SystemProperty.REAL_TOPIC] ?? r.topic,
      body: r.body,
      tag: r.tag,
      keys: r.keys,
      properties: userProperties(p),
      message_group: p[SystemProperty.MESSAGE_GROUP] ?? '',
      delivery_timestamp_ms: Number(p[SystemProperty.DELIVERY_TIME_MS] ?? 0),
      message_id: r.messageId,
      born_timestamp_ms: r.bornTimestamp,
      born_host: r.bornHost,
      producer_group: p[SystemProperty.PRODUCER_GROUP] ?? '',
      traceparent: p[SystemProperty.TRACEPARENT] ?? '',
      tracestate: p[SystemProperty.TRACESTATE] ?? '',
    },
    queue_id: r.queueId,
    queue_offset: r.queueOffset,
    physical_offset: r.physicalOffset,
    store_timestamp_ms: r.storeTimestamp,
    store_host: r.storeHost,
    offset_message_id: r.offsetMessageId,
    delivery_attempt: extra.deliveryAttempt ?? r.reconsumeTimes + 1,
    receipt_handle: extra.receiptHandle ?? '',
    reconsume_times: r.reconsumeTimes,
    broker_name: brokerName,
  };
}
