/**
 * Resource name rules, as RocketMQ checks them: topics and groups match
 * `^[%|a-zA-Z0-9_-]+$` and are at most 127 characters.
 */
import { errors } from './errors.js';

export const MAX_RESOURCE_NAME_LENGTH = 127;
const NAME_PATTERN = /^[%|a-zA-Z0-9_-]+$/;

export const RETRY_TOPIC_PREFIX = '%RETRY%';
export const DLQ_TOPIC_PREFIX = '%DLQ%';

export function retryTopicOf(group: string): string {
  return `${RETRY_TOPIC_PREFIX}${group}`;
}

export function dlqTopicOf(group: string): string {
  return `${DLQ_TOPIC_PREFIX}${group}`;
}

function problem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'must not be empty';
  if (name.length > MAX_RESOURCE_NAME_LENGTH) {
    return `must be at most ${MAX_RESOURCE_NAME_LENGTH} characters`;
  }
  if (!NAME_PATTERN.test(name)) return 'may contain only letters, digits, %, |, _ and -';
  return undefined;
}

/** Throws ILLEGAL_TOPIC when the name breaks the rules. */
export function checkTopicName(topic: string): string {
  const why = problem(topic);
  if (why) throw errors.illegalTopic(String(topic), why);
  return topic;
}

/** Throws ILLEGAL_CONSUMER_GROUP when the name breaks the rules. */
export function checkGroupName(group: string): string {
  const why = problem(group);
  if (why) throw errors.illegalGroup(String(group), why);
  return group;
}

/** Permission bits, as RocketMQ. */
export const Perm = { READ: 4, WRITE: 2, INHERIT: 1, READ_WRITE: 6 } as const;

export function isWritable(perm: number): boolean {
  return (perm & Perm.WRITE) === Perm.WRITE;
}

export function isReadable(perm: number): boolean {
  return (perm & Perm.READ) === Perm.READ;
}
