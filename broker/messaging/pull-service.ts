/**
 * Offset-based pull with long polling, for replay and broadcast readers and
 * RocketMQ-style push consumers. The consumer owns its position; a pull may
 * also commit an offset:
 *  - clustering (default): offsets per group, shared by the group's consumers
 *    (each queue is read by one of them, as the client rebalances);
 *  - broadcasting (`broadcast` + `client_id`): offsets per consumer instance,
 *    so every consumer of the group reads every message.
 * A pull that finds nothing waits until a message lands on the topic (the
 * ArrivalNotifier wakes it on the store's dispatch), or max_wait_ms.
 */
import { Code, errors } from '../../common/errors.js';
import type { PullMessagesRequest__Output } from '../../common/generated/sluice/v1/PullMessagesRequest.js';
import type { PullMessagesResponse } from '../../common/generated/sluice/v1/PullMessagesResponse.js';
import { checkGroupName, checkTopicName, isReadable } from '../../common/names.js';
import type { BrokerContext } from './broker-context.js';
import { toStoredMessage } from './message-codec.js';
import { MAX_POLL_WAIT_MS, MAX_POP_BATCH } from './pop-service.js';
import { parseTagFilter } from './tag-filter.js';

export const DEFAULT_PULL_BATCH = 32;

export class PullService {
  constructor(private readonly ctx: BrokerContext) {}

  async pull(
    req: PullMessagesRequest__Output,
    signal?: AbortSignal,
  ): Promise<PullMessagesResponse> {
    const topic = checkTopicName(req.topic);
    const config = this.ctx.topics.get(topic);
    if (!config) throw errors.topicNotFound(topic);
    if (!isReadable(config.perm) || !isReadable(this.ctx.perm())) {
      throw errors.noPermission(`topic '${topic}' is not readable`);
    }
    if (req.queue_id < 0 || req.queue_id >= config.read_queue_nums) {
      throw errors.badRequest(`queue ${req.queue_id} does not exist for topic '${topic}'`);
    }
    const filter = parseTagFilter(req.filter?.expression);
    const max = Math.min(Math.max(1, req.max_messages || DEFAULT_PULL_BATCH), MAX_POP_BATCH);
    const group = req.consumer_group ? checkGroupName(req.consumer_group) : '';
    if (req.broadcast) {
      if (!group || !req.client_id) {
        throw errors.badRequest('a broadcasting pull names its consumer_group and client_id');
      }
      const g = await this.ctx.groups.require(group);
      if (!g.consume_broadcast_enable) {
        throw errors.forbidden(`group '${group}' does not allow broadcasting consumption`);
      }
    } else if (group && (req.commit_offset >= 0 || req.from_stored_offset)) {
      const g = await this.ctx.groups.require(group);
      if (!g.consume_enable) throw errors.forbidden(`group '${group}' may not consume`);
    }
    const q = req.queue_id;
    const stored = () =>
      req.broadcast
        ? this.ctx.offsets.getForClient(group, req.client_id, topic, q)
        : this.ctx.offsets.get(group, topic, q);
    if (group && req.commit_offset >= 0) {
      // A commit acknowledges what was consumed: it is on disk before the answer.
      if (req.broadcast) {
        this.ctx.offsets.commitForClient(group, req.client_id, topic, q, req.commit_offset);
      } else {
        this.ctx.offsets.commit(group, topic, q, req.commit_offset);
      }
      await this.ctx.offsets.flush();
    }
    let offset = req.offset;
    if (req.from_stored_offset) {
      if (!group) throw errors.badRequest('from_stored_offset needs a consumer_group');
      offset = stored() ?? this.ctx.store.minOffset(topic, q);
    }
    if (offset < 0) throw errors.illegalOffset(`offset ${offset} is negative`);
    const deadline = this.ctx.clock() + Math.min(Math.max(0, req.max_wait_ms), MAX_POLL_WAIT_MS);
    for (;;) {
      // Taken before the read: an arrival during the read wakes the wait below at once.
      const mark = this.ctx.notifier.mark([topic]);
      const read = await this.ctx.store.read(topic, q, offset, max, filter);
      const now = this.ctx.clock();
      const found = read.records.length > 0;
      // Past the end (e.g. a stale offset): answer at once; next_offset says where the end is.
      if (found || now >= deadline || signal?.aborted || offset > read.maxOffset) {
        const name = this.ctx.options.brokerName;
        const last = read.records.at(-1);
        return {
          status: found
            ? { code: Code.OK, message: 'OK' }
            : { code: Code.MESSAGE_NOT_FOUND, message: 'no new message' },
          messages: read.records.map((r) => toStoredMessage(r, name)),
          next_offset: read.nextOffset,
          min_offset: read.minOffset,
          max_offset: read.maxOffset,
          // Read/write separation (broker/ha/slave-read-advice.ts): a consumer far
          // behind is sent to a slave, otherwise to the master.
          suggest_which_broker_id:
            this.ctx.replication?.suggestBrokerId(group, last ? last.physicalOffset : -1) ?? 0,
        };
      }
      // Filtered-out entries were skipped: continue after them next time round.
      offset = Math.max(offset, read.nextOffset);
      await this.ctx.notifier.wait([topic], deadline - now, signal, mark);
    }
  }
}
