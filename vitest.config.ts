import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 30000,
    // Child processes rather than worker threads: tests spawn the CLI and the daemon,
    // open SQLite files and send signals, which is safer with one process per file.
    pool: 'forks',
    // After the whole suite, every kept state file and log is scanned for every secret used.
    globalSetup: ['./test/support/suite-scan.ts'],
  },
});
