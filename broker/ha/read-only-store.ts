/**
 * A slave's store as the messaging layer sees it: everything but
 * appendBatch. A slave's commitlog must be a byte-for-byte prefix of its
 * master's — one local append (a timer firing, a revive, a dead-letter move)
 * would put different bytes at offsets the master is about to send, and
 * replication could never continue. Only replication writes (appendRaw).
 */
import { errors } from '../../common/errors.js';
import type { MessageStore } from '../store/index.js';

/**
 * Wraps `store` so that appendBatch rejects with NOT_MASTER; every other
 * member is the store's own (bound once).
 *
 * @example
 *   const store = role === 'SLAVE' ? readOnlyStore(raw, 'broker-a') : raw;
 */
export function readOnlyStore(store: MessageStore, brokerName: string): MessageStore {
  const bound = new Map<PropertyKey, unknown>();
  const appendBatch: MessageStore['appendBatch'] = () =>
    Promise.reject(errors.notMaster(brokerName));
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'appendBatch') return appendBatch;
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let fn = bound.get(prop);
      if (!fn) {
        fn = (value as (...args: unknown[]) => unknown).bind(target);
        bound.set(prop, fn);
      }
      return fn;
    },
  });
}
