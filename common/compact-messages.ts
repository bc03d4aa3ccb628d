/**
 * StoredMessages as parallel packed columns (CompactMessages in
 * proto/sluice/v1/common.proto), for callers that pop with compact_messages.
 *
 * Why: protobufjs encodes a StoredMessage as two nested messages with a map,
 * a repeated field and a dozen strings, each built into an object on the
 * other end; a pop of 32 × 1 KiB costs ~110 µs to encode and ~50 µs to
 * decode that way, on every pop the gateway makes. As columns the same batch
 * is one body buffer, one string of the distinct string values and a few
 * packed arrays.
 *
 * The compact form holds exactly what the StoredMessages hold:
 * compactMessages answers undefined for any batch it could not give back
 * unchanged (the broker then answers `messages`), and expandMessages rebuilds
 * the very objects a `messages` answer decodes to (defaults filled in, as
 * the loader gives them).
 */
import { Code, errors, SluiceError } from './errors.js';
import type {
  CompactMessages,
  CompactMessages__Output,
} from './generated/sluice/v1/CompactMessages.js';
import type { SendEntry, SendEntry__Output } from './generated/sluice/v1/SendEntry.js';
import type { SendMessagesRequest__Output } from './generated/sluice/v1/SendMessagesRequest.js';
import type { StoredMessage, StoredMessage__Output } from './generated/sluice/v1/StoredMessage.js';

/**
 * Answers with fewer messages than this go as `messages` even when compact
 * ones were asked for: for a single message the columns cost more. Measured
 * here (1 KiB bodies, encode + decode of a pop answer): 1 message 9 µs full
 * vs 15 µs compact, 2 messages 11 vs 12, 8 messages 38 vs 22.
 */
export const COMPACT_MESSAGES_FROM = 2;

/** Builds the dictionary of a batch: each distinct string once, in first-use order. */
class Dictionary {
  text = '';
  readonly lengths: number[] = [];
  private readonly index = new Map<string, number>();

  /**
   * A new entry without looking it up: for values that are almost always
   * distinct when set (receipt handles, message ids), where the lookup would
   * hash a long string for nothing. A repeated value then travels twice:
   * correct, only larger.
   */
  fresh(s: string | undefined): number {
    const v = s ?? '';
    if (v === '') return this.ref(v); // empty ones (sends) share one entry
    const k = this.lengths.length;
    this.text += v;
    this.lengths.push(v.length);
    return k;
  }

  ref(s: string | undefined): number {
    const v = s ?? '';
    let k = this.index.get(v);
    if (k === undefined) {
      k = this.lengths.length;
      this.index.set(v, k);
      this.text += v;
      this.lengths.push(v.length);
    }
    return k;
  }
}

/** A 64-bit field as a double, or undefined when a double cannot hold it exactly. */
function exact(v: number | string | { toString(): string } | undefined | null): number | undefined {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : Number(v.toString());
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The compact form of a batch, or undefined when some message does not fit
 * it (no message, a body given as a string, a 64-bit value that is not an
 * integer below 2^53).
 */
export function compactMessages(
  messages: readonly StoredMessage[],
): CompactMessages__Output | undefined {
  const n = messages.length;
  const dict = new Dictionary();
  const bodies: Uint8Array[] = new Array<Uint8Array>(n);
  const c: CompactMessages__Output = {
    text: '',
    text_lengths: dict.lengths,
    bodies: Buffer.alloc(0),
    body_lengths: new Array<number>(n),
    topics: new Array<number>(n),
    tags: new Array<number>(n),
    message_groups: new Array<number>(n),
    message_ids: new Array<number>(n),
    born_hosts: new Array<number>(n),
    producer_groups: new Array<number>(n),
    traceparents: new Array<number>(n),
    tracestates: new Array<number>(n),
    store_hosts: new Array<number>(n),
    offset_message_ids: new Array<number>(n),
    receipt_handles: new Array<number>(n),
    broker_names: new Array<number>(n),
    delivery_timestamps_ms: new Array<number>(n),
    born_timestamps_ms: new Array<number>(n),
    queue_offsets: new Array<number>(n),
    physical_offsets: new Array<number>(n),
    store_timestamps_ms: new Array<number>(n),
    delay_levels: new Array<number>(n),
    transactional: new Array<boolean>(n),
    queue_ids: new Array<number>(n),
    delivery_attempts: new Array<number>(n),
    reconsume_times: new Array<number>(n),
    key_counts: new Array<number>(n),
    keys: [],
    property_counts: new Array<number>(n),
    properties: [],
  };
  for (let i = 0; i < n; i++) {
    const s = messages[i]!;
    const m = s.message;
    if (!m) return undefined;
    const body = m.body ?? Buffer.alloc(0);
    if (typeof body === 'string') return undefined;
    const deliveryAt = exact(m.delivery_timestamp_ms);
    const bornAt = exact(m.born_timestamp_ms);
    const queueOffset = exact(s.queue_offset);
    const physical = exact(s.physical_offset);
    const storedAt = exact(s.store_timestamp_ms);
    if (
      deliveryAt === undefined ||
      bornAt === undefined ||
      queueOffset === undefined ||
      physical === undefined ||
      storedAt === undefined
    ) {
      return undefined;
    }
    bodies[i] = body;
    c.body_lengths[i] = body.length;
    c.topics[i] = dict.ref(m.topic);
    c.tags[i] = dict.ref(m.tag);
    c.message_groups[i] = dict.ref(m.message_group);
    c.message_ids[i] = dict.fresh(m.message_id);
    c.born_hosts[i] = dict.ref(m.born_host);
    c.producer_groups[i] = dict.ref(m.producer_group);
    c.traceparents[i] = dict.ref(m.traceparent);
    c.tracestates[i] = dict.ref(m.tracestate);
    c.store_hosts[i] = dict.ref(s.store_host);
    c.offset_message_ids[i] = dict.fresh(s.offset_message_id);
    c.receipt_handles[i] = dict.fresh(s.receipt_handle);
    c.broker_names[i] = dict.ref(s.broker_name);
    c.delivery_timestamps_ms[i] = deliveryAt;
    c.born_timestamps_ms[i] = bornAt;
    c.queue_offsets[i] = queueOffset;
    c.physical_offsets[i] = physical;
    c.store_timestamps_ms[i] = storedAt;
    c.delay_levels[i] = m.delay_level ?? 0;
    c.transactional[i] = m.transactional ?? false;
    c.queue_ids[i] = s.queue_id ?? 0;
    c.delivery_attempts[i] = s.delivery_attempt ?? 0;
    c.reconsume_times[i] = s.reconsume_times ?? 0;
    const keys = m.keys ?? [];
    c.key_counts[i] = keys.length;
    for (const k of keys) c.keys.push(dict.ref(k));
    const props = m.properties ?? {};
    let properties = 0;
    for (const name in props) {
      c.properties.push(dict.ref(name), dict.ref(props[name]));
      properties++;
    }
    c.property_counts[i] = properties;
  }
  c.text = dict.text;
  c.bodies = Buffer.concat(bodies);
  return c;
}

/**
 * The compact form to answer with when a caller asked for one (`asked`) and
 * the batch is big enough to gain from it; undefined: answer `messages`.
 */
export function compactAnswerOf(
  asked: boolean,
  messages: readonly StoredMessage[],
): CompactMessages__Output | undefined {
  return asked && messages.length >= COMPACT_MESSAGES_FROM ? compactMessages(messages) : undefined;
}

function malformed(why: string): Error {
  return errors.internal(`malformed compact messages: ${why}`);
}

/**
 * The StoredMessages a compact answer stands for, in order, as a `messages`
 * answer decodes to. Bodies are views into c.bodies (no copy). Throws
 * INTERNAL_ERROR when the columns do not agree (a broker bug, never a client's).
 */
export function expandMessages(c: CompactMessages__Output): StoredMessage__Output[] {
  const { text, text_lengths: textLengths, bodies, body_lengths: bodyLengths } = c;
  const dict = new Array<string>(textLengths.length);
  let at = 0;
  for (let k = 0; k < textLengths.length; k++) {
    const len = textLengths[k]!;
    dict[k] = text.substring(at, at + len);
    at += len;
  }
  if (at !== text.length) throw malformed('text lengths do not add up');
  const str = (refs: number[], i: number): string => {
    const s = dict[refs[i] ?? -1];
    if (s === undefined) throw malformed(`dictionary index out of range at message ${i}`);
    return s;
  };

  const n = bodyLengths.length;
  const columns = [
    c.topics,
    c.tags,
    c.message_groups,
    c.message_ids,
    c.born_hosts,
    c.producer_groups,
    c.traceparents,
    c.tracestates,
    c.store_hosts,
    c.offset_message_ids,
    c.receipt_handles,
    c.broker_names,
    c.delivery_timestamps_ms,
    c.born_timestamps_ms,
    c.queue_offsets,
    c.physical_offsets,
    c.store_timestamps_ms,
    c.delay_levels,
    c.transactional,
    c.queue_ids,
    c.delivery_attempts,
    c.reconsume_times,
    c.key_counts,
    c.property_counts,
  ];
  if (columns.some((col) => col.length !== n)) throw malformed('columns of different lengths');

  const out = new Array<StoredMessage__Output>(n);
  const keyRefs = c.keys;
  const propertyRefs = c.properties;
  let bodyAt = 0;
  let keyAt = 0;
  let propertyAt = 0;
  for (let i = 0; i < n; i++) {
    const bodyLength = bodyLengths[i]!;
    if (bodyLength < 0 || bodyAt + bodyLength > bodies.length) throw malformed('bodies too short');
    const body = bodies.subarray(bodyAt, bodyAt + bodyLength);
    bodyAt += bodyLength;
    const keyCount = c.key_counts[i]!;
    if (keyCount < 0 || keyAt + keyCount > keyRefs.length) throw malformed('keys too short');
    const keys = new Array<string>(keyCount);
    for (let k = 0; k < keyCount; k++) keys[k] = str(keyRefs, keyAt++);
    const propertyCount = c.property_counts[i]!;
    if (propertyCount < 0 || propertyAt + 2 * propertyCount > propertyRefs.length) {
      throw malformed('properties too short');
    }
    const properties: Record<string, string> = {};
    for (let p = 0; p < propertyCount; p++) {
      const name = str(propertyRefs, propertyAt++);
      properties[name] = str(propertyRefs, propertyAt++);
    }
    out[i] = {
      message: {
        topic: str(c.topics, i),
        body,
        tag: str(c.tags, i),
        keys,
        properties,
        message_group: str(c.message_groups, i),
        delivery_timestamp_ms: c.delivery_timestamps_ms[i]!,
        delay_level: c.delay_levels[i]!,
        transactional: c.transactional[i]!,
        message_id: str(c.message_ids, i),
        born_timestamp_ms: c.born_timestamps_ms[i]!,
        born_host: str(c.born_hosts, i),
        producer_group: str(c.producer_groups, i),
        traceparent: str(c.traceparents, i),
        tracestate: str(c.tracestates, i),
      },
      queue_id: c.queue_ids[i]!,
      queue_offset: c.queue_offsets[i]!,
      physical_offset: c.physical_offsets[i]!,
      store_timestamp_ms: c.store_timestamps_ms[i]!,
      store_host: str(c.store_hosts, i),
      offset_message_id: str(c.offset_message_ids, i),
      delivery_attempt: c.delivery_attempts[i]!,
      receipt_handle: str(c.receipt_handles, i),
      reconsume_times: c.reconsume_times[i]!,
      broker_name: str(c.broker_names, i),
    };
  }
  if (bodyAt !== bodies.length) throw malformed('bodies left over');
  if (keyAt !== keyRefs.length) throw malformed('keys left over');
  if (propertyAt !== propertyRefs.length) throw malformed('properties left over');
  return out;
}

/** A batch answer that carries its messages either way (PopMessagesResponse). */
export interface MessagesAnswer {
  messages?: StoredMessage[];
  compact?: CompactMessages | null;
}

/** A pop answer's messages, whichever form it came in. */
export function messagesOf(res: {
  messages: StoredMessage__Output[];
  compact: CompactMessages__Output | null;
}): StoredMessage__Output[] {
  return res.compact ? expandMessages(res.compact) : res.messages;
}

/** Each message's body size in bytes, whichever form the answer is in (no expansion). */
export function bodyLengthsOf(res: MessagesAnswer): number[] {
  if (res.compact) return res.compact.body_lengths ?? [];
  return (res.messages ?? []).map((m) => m.message?.body?.length ?? 0);
}

/**
 * SendMessages entries as CompactMessages (SendMessagesRequest.compact_entries):
 * the message columns and queue_ids, the stored-message columns left at their
 * defaults. Undefined when the batch is empty or some entry does not fit (see
 * compactMessages): send `entries` then.
 */
export function compactSendEntries(
  entries: readonly SendEntry[],
): CompactMessages__Output | undefined {
  if (entries.length === 0) return undefined;
  const messages = new Array<StoredMessage>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    messages[i] = { message: e.message, queue_id: e.queue_id };
  }
  return compactMessages(messages);
}

/**
 * A SendMessages request's entries, whichever form they came in. Expands
 * compact_entries into `entries` in place, once, so every later reader of the
 * request (handler, tracing, metrics) sees the same entries. Columns that do
 * not agree are the caller's error: BAD_REQUEST.
 */
export function sendEntriesOf(req: SendMessagesRequest__Output): SendEntry__Output[] {
  const compact = req.compact_entries;
  if (compact) {
    let expanded: StoredMessage__Output[];
    try {
      expanded = expandMessages(compact);
    } catch (err) {
      if (err instanceof SluiceError && err.code === Code.INTERNAL_ERROR) {
        throw errors.badRequest(`compact_entries: ${err.message}`);
      }
      throw err;
    }
    const entries = new Array<SendEntry__Output>(expanded.length);
    for (let i = 0; i < expanded.length; i++) {
      const s = expanded[i]!;
      entries[i] = { message: s.message, queue_id: s.queue_id };
    }
    req.entries = entries;
    req.compact_entries = null;
  }
  return req.entries;
}
