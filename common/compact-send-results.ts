/**
 * SendMessages results as parallel packed arrays (CompactSendResults in
 * proto/sluice/v1/broker.proto), for callers that ask with compact_results.
 *
 * Why: a batch of 128 SendResults is 128 nested messages with a Status, two
 * 32-character hex ids and three int64s each; protobufjs spends ~190 µs
 * encoding and ~80 µs decoding them, about ten times what the same data
 * costs as a handful of packed arrays and one concatenated string. The
 * gateway's batched sends pay both ends of that on every RPC.
 *
 * The compact form holds exactly what the SendResults hold: compactSendResults
 * answers undefined for any batch it could not give back unchanged (the
 * broker then answers `results`), and expandSendResults rebuilds the very
 * objects a `results` answer decodes to (defaults filled in, as the loader
 * gives them).
 */
import { compactSendEntries } from './compact-messages.js';
import { Code, errors } from './errors.js';
import type {
  CompactSendResults,
  CompactSendResults__Output,
} from './generated/sluice/v1/CompactSendResults.js';
import type { SendEntry } from './generated/sluice/v1/SendEntry.js';
import type { SendMessagesRequest } from './generated/sluice/v1/SendMessagesRequest.js';
import type {
  SendMessagesResponse,
  SendMessagesResponse__Output,
} from './generated/sluice/v1/SendMessagesResponse.js';
import type { SendResult, SendResult__Output } from './generated/sluice/v1/SendResult.js';
import type { Status__Output } from './generated/sluice/v1/Status.js';
import { offsetMessageIdWithPrefix } from './offset-message-id.js';

/** Hex digits of the physical offset at the end of an offset message id. */
const OFFSET_HEX_DIGITS = 16;

/**
 * The compact form of a batch's results, or undefined when some result does
 * not fit it (an OK status with another message, an offset message id that
 * is not the store host + physical offset, a transaction id that is not the
 * offset message id, an unstored entry with ids or offsets).
 */
export function compactSendResults(
  results: readonly SendResult[],
): CompactSendResults__Output | undefined {
  const n = results.length;
  const codes = new Array<number>(n);
  const queueIds = new Array<number>(n);
  const queueOffsets = new Array<number>(n);
  const physicalOffsets = new Array<number>(n);
  const lengths = new Array<number>(n);
  const statuses: Status__Output[] = [];
  const halves: number[] = [];
  let messageIds = '';
  let prefix: string | undefined;
  for (let i = 0; i < n; i++) {
    const r = results[i]!;
    const s = r.status;
    if (!s) return undefined;
    const code = s.code ?? 0;
    if (code === Code.OK) {
      if (s.message !== 'OK' || s.reason) return undefined;
    } else {
      statuses.push({ code, message: s.message ?? '', reason: s.reason ?? '' });
    }
    codes[i] = code;
    const messageId = r.message_id ?? '';
    const offsetId = r.offset_message_id ?? '';
    const queueOffset = Number(r.queue_offset ?? 0);
    const physical = Number(r.physical_offset ?? 0);
    if (offsetId === '') {
      // Not stored: the result is its status alone.
      if (messageId || r.queue_id || queueOffset || physical || r.transaction_id) return undefined;
      queueIds[i] = -1;
      queueOffsets[i] = 0;
      physicalOffsets[i] = 0;
      lengths[i] = 0;
      continue;
    }
    const queueId = r.queue_id ?? 0;
    if (queueId < 0) return undefined;
    prefix ??= offsetId.slice(0, -OFFSET_HEX_DIGITS);
    if (offsetId !== offsetMessageIdWithPrefix(prefix, physical)) return undefined;
    if (r.transaction_id) {
      if (r.transaction_id !== offsetId) return undefined;
      halves.push(i);
    }
    queueIds[i] = queueId;
    queueOffsets[i] = queueOffset;
    physicalOffsets[i] = physical;
    messageIds += messageId;
    lengths[i] = messageId.length;
  }
  return {
    codes,
    queue_ids: queueIds,
    queue_offsets: queueOffsets,
    physical_offsets: physicalOffsets,
    statuses,
    message_ids: messageIds,
    message_id_lengths: lengths,
    offset_message_id_prefix: prefix ?? '',
    half_entries: halves,
  };
}

function malformed(why: string): Error {
  return errors.internal(`malformed compact send results: ${why}`);
}

/**
 * The SendResults a compact answer stands for, in entry order, as a
 * `results` answer decodes to. Throws INTERNAL_ERROR when the arrays do not
 * agree (a broker bug, never a client's).
 */
export function expandSendResults(c: CompactSendResults): SendResult__Output[] {
  const codes = c.codes ?? [];
  const queueIds = c.queue_ids ?? [];
  const queueOffsets = c.queue_offsets ?? [];
  const physicalOffsets = c.physical_offsets ?? [];
  const lengths = c.message_id_lengths ?? [];
  const statuses = c.statuses ?? [];
  const halves = c.half_entries ?? [];
  const ids = c.message_ids ?? '';
  const prefix = c.offset_message_id_prefix ?? '';
  const n = codes.length;
  if (
    queueIds.length !== n ||
    queueOffsets.length !== n ||
    physicalOffsets.length !== n ||
    lengths.length !== n
  ) {
    throw malformed('arrays of different lengths');
  }
  const out = new Array<SendResult__Output>(n);
  let at = 0;
  let nextStatus = 0;
  let nextHalf = 0;
  for (let i = 0; i < n; i++) {
    const code = codes[i]!;
    let status: Status__Output;
    if (code === Code.OK) status = { code, message: 'OK', reason: '' };
    else {
      const s = statuses[nextStatus++];
      if (!s || (s.code ?? 0) !== code) throw malformed(`no status for entry ${i}`);
      status = { code, message: s.message ?? '', reason: s.reason ?? '' };
    }
    const queueId = queueIds[i]!;
    const length = lengths[i]!;
    if (queueId < 0) {
      if (length !== 0 || halves[nextHalf] === i) throw malformed(`unstored entry ${i} has ids`);
      out[i] = {
        status,
        message_id: '',
        offset_message_id: '',
        queue_id: 0,
        queue_offset: 0,
        physical_offset: 0,
        transaction_id: '',
      };
      continue;
    }
    const physical = Number(physicalOffsets[i]);
    const offsetId = offsetMessageIdWithPrefix(prefix, physical);
    const half = halves[nextHalf] === i;
    if (half) nextHalf++;
    out[i] = {
      status,
      message_id: ids.substring(at, at + length),
      offset_message_id: offsetId,
      queue_id: queueId,
      queue_offset: Number(queueOffsets[i]),
      physical_offset: physical,
      transaction_id: half ? offsetId : '',
    };
    at += length;
  }
  if (at !== ids.length) throw malformed('message ids do not add up');
  if (nextStatus !== statuses.length) throw malformed('statuses left over');
  if (nextHalf !== halves.length) throw malformed('half entries out of order');
  return out;
}

/** A SendMessages answer's results, whichever form it came in. */
export function sendResultsOf(res: SendMessagesResponse): SendResult[] {
  return res.compact ? expandSendResults(res.compact) : (res.results ?? []);
}

/** Each entry's status code of a SendMessages answer, whichever form it came in (no expansion). */
export function sendResultCodes(res: SendMessagesResponse): number[] {
  if (res.compact) return res.compact.codes ?? [];
  return (res.results ?? []).map((r) => r.status?.code ?? Code.OK);
}

/**
 * Batches smaller than this go as `entries`: 24 one-element columns cost more
 * than a few nested messages. Measured here with the loader's serializers
 * (1 KiB bodies, encode + decode per call): 1 entry 6 µs full vs 12 µs
 * compact, 4 entries 11 vs 14, 16 entries 40 vs 29, 100 entries 313 vs 169.
 */
export const COMPACT_SEND_ENTRIES_FROM = 8;

/**
 * One SendMessages call in the cheapest form both ends understand: entries as
 * compact_entries, results asked as compact_results, answered as SendResults
 * (either form). A broker that predates compact_entries sees no entries,
 * stores nothing and answers no results: the batch then goes again as
 * `entries` (so the first call cannot have stored any of it).
 */
export async function sendEntries(
  rpc: (req: SendMessagesRequest) => Promise<SendMessagesResponse__Output>,
  entries: SendEntry[],
): Promise<SendResult__Output[]> {
  const compact =
    entries.length >= COMPACT_SEND_ENTRIES_FROM ? compactSendEntries(entries) : undefined;
  if (compact) {
    const res = await rpc({ compact_entries: compact, compact_results: true });
    const results = res.compact ? expandSendResults(res.compact) : res.results;
    if (results.length > 0) return results;
  }
  const res = await rpc({ entries, compact_results: true });
  return res.compact ? expandSendResults(res.compact) : res.results;
}
