/**
 * Broker settings every benchmark cluster starts from: RocketMQ's production
 * file sizes and heartbeat, not the small ones the test harness uses to keep
 * tests fast (a 60 KB consume-queue file rolls over every 3,000 messages and
 * would be measured instead of the broker). The commitlog segment is 256 MiB
 * rather than 1 GiB so a run's disk use stays modest.
 */
export const BENCH_BROKER_CONFIG = {
  mapedFileSizeCommitLog: 256 * 1024 * 1024,
  mapedFileSizeConsumeQueue: 300_000 * 20,
  registerBrokerInterval: 30_000,
  flushDiskType: 'ASYNC_FLUSH',
} as const;
