/**
 * Offset-based pull with long polling, for replay and broadcast readers and
 * RocketMQ-style push consumers. The consumer owns its position; a pull may
 * also commit the group's offset.
 */
import { Code, errors } from '../../common/errors.js';
import type { PullMessagesRequest__Output } from '../../common/generated/sluice/v1/PullMessagesRequest.js';
import type { PullMessagesResponse } from '../../common/generated/sluice/v1/PullMessagesResponse.js';
import { checkTopicName, isReadable } from '../../common/names.js';
import type { BrokerContext } from './broker-context.js';
import { toStoredMessage } from './message-codec.js';
import { MAX_POLL_WAIT_MS, MAX_POP_BATCH } from './pop-service.js';
import { parseTagFilter } from './tag-filter.js';

export class PullService {
  constructor(private readonly ctx: BrokerContext) {}

  async pull(req: PullMessagesRequest__Output, signal?: AbortSignal): Promise<PullMessagesResponse> {
    const topic = checkTopicName(req.topic);
    const config = this.ctx.topics.get(topic);
    if (!config) throw errors.topicNotFound(topic);
    if (!isReadable(config.perm)) throw errors.noPermission(`topic '${topic}' is not readable`);
    if (req.queue_id < 0 || req.queue_id >= config.read_queue_nums) {
      throw errors.badRequest(`queue ${req.queue_id} does not exist for topic '${topic}'`);
    }
    if (req.offset < 0) throw errors.illegalOffset(`offset ${req.offset} is negative`);
    const filter = parseTagFilter(req.filter?.expression);
    const max = Math.min(Math.max(1, req.max_messages || 32), MAX_POP_BATCH);
    if (req.consumer_group && req.commit_offset >= 0) {
      this.ctx.offsets.commit(req.consumer_group, topic, req.queue_id, req.commit_offset);
    }
    const deadline = this.ctx.clock() + Math.min(Math.max(0, req.max_wait_ms), MAX_POLL_WAIT_MS);
    for (;;) {
      const read = await this.ctx.store.read(topic, req.queue_id, req.offset, max, filter);
      const now = this.ctx.clock();
      if (read.records.length > 0 || now >= deadline || signal?.aborted) {
        const name = this.ctx.options.brokerName;
        return {
          status: {
            code: read.records.length > 0 ? Code.OK : Code.MESSAGE_NOT_FOUND,
            message: read.records.length > 0 ? 'OK' : 'no new message',
          },
          messages: read.records.map((r) => toStoredMessage(r, name)),
          next_offset: read.nextOffset,
          min_offset: read.minOffset,
          max_offset: read.maxOffset,
          suggest_which_broker_id: 0,
        };
      }
      await this.ctx.notifier.wait([topic], deadline - now, signal);
    }
  }
}
