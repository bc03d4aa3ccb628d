/**
 * Which broker a FIFO message group goes to: a stable hash of the group over
 * the writable brokers sorted by name, identical in every process and across
 * restarts, so every gateway replica (REST and gRPC) sends a group to the same
 * broker, which pins it to one of its queues.
 */
import { createHash } from 'node:crypto';

/** Slot of `group` among `slots` brokers (sorted by name). */
export function groupSlot(group: string, slots: number): number {
  return createHash('md5').update(group).digest().readUInt32BE(0) % slots;
}
