/**
 * Span attribute names of the OpenTelemetry messaging semantic conventions
 * (plus RocketMQ's own), written once so every span spells them alike.
 * Values of `messaging.operation.type`: send (a producer hands a message
 * over), receive (a consumer takes it), settle (ack, change-invisible,
 * dead-letter, and a transaction's commit / rollback).
 */
export const MessagingAttr = {
  SYSTEM: 'messaging.system',
  DESTINATION: 'messaging.destination.name',
  PARTITION: 'messaging.destination.partition.id',
  OPERATION_TYPE: 'messaging.operation.type',
  OPERATION_NAME: 'messaging.operation.name',
  MESSAGE_ID: 'messaging.message.id',
  BODY_SIZE: 'messaging.message.body.size',
  BATCH_COUNT: 'messaging.batch.message_count',
  CONSUMER_GROUP: 'messaging.consumer.group.name',
  TAG: 'messaging.rocketmq.message.tag',
  KEYS: 'messaging.rocketmq.message.keys',
  MESSAGE_GROUP: 'messaging.rocketmq.message.group',
  DELIVERY_ATTEMPT: 'messaging.rocketmq.message.delivery_attempt',
  /** Not in the conventions: which broker stored or served the message. */
  BROKER: 'messaging.rocketmq.broker.name',
  /** Not in the conventions: the transaction a commit / rollback ends. */
  TRANSACTION_ID: 'messaging.rocketmq.transaction.id',
} as const;

export const MESSAGING_SYSTEM = 'rocketmq';

export type MessagingOperationType = 'send' | 'receive' | 'settle';
