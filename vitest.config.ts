import { defineConfig } from 'vitest/config';

// Integration tests start real processes; they are slow to boot and share two
// cores, so files run with limited parallelism and generous timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    allowOnly: false,
    reporters: ['default'],
  },
});
