import { defineConfig } from 'vitest/config';

// Test tiers by file suffix: *.unit.test.ts (no I/O), *.int.test.ts (real PostgreSQL and
// friends), *.e2e.test.ts (the whole system through the gateway, or the CLI as a process).
// One PostgreSQL server is started for the whole run by the global setup (or DATABASE_URL
// is used when given); every test file makes its own database on it.
export default defineConfig({
  test: {
    include: ['{packages,services,apps}/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
