/**
 * Internal topics and reader names of the broker. Internal topics live in the
 * commitlog like any other (so they are flushed, recovered and replicated with
 * it) but are not registered with the name servers and refuse client sends.
 */

/** Timer (delay) messages wait here until due; the consume queue tag code holds the due time. */
export const TIMER_TOPIC = 'rmq_sys_wheel_timer';
/** Half messages of transactions (RocketMQ's name), stored with the transaction bits cleared. */
export const TRANS_HALF_TOPIC = 'RMQ_SYS_TRANS_HALF_TOPIC';

/**
 * Consume-state "groups" of the broker's own readers. '#' cannot appear in a
 * client group name, so they never collide with one.
 */
export const TIMER_READER = '#timer';
export const TRANSACTION_READER = '#transaction';

export function isInternalReader(group: string): boolean {
  return group.startsWith('#');
}

/** Topics clients may not send to directly. */
export function isSystemTopic(topic: string): boolean {
  return topic.toLowerCase().startsWith('rmq_sys_');
}
