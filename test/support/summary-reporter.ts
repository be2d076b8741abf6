import type { Reporter, TestModule, TestRunEndReason } from 'vitest/node';

/**
 * Closing line of a test run, alone on its line, for CI logs and scripts:
 * `12 passed, 1 failed` and, when some were skipped or todo, `, 3 skipped`.
 *
 * Failures that belong to no test still count, one each, so a failing run never
 * reports `0 failed`: a test file that could not be loaded, a `beforeAll`/`afterAll`
 * hook that threw (errors on a module or suite), and each unhandled error.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<unknown>,
    _reason: TestRunEndReason,
  ): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const testModule of testModules) {
      if (testModule.errors().length > 0) failed += 1;
      for (const suite of testModule.children.allSuites()) {
        if (suite.errors().length > 0) failed += 1;
      }
      for (const test of testModule.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failed += 1;
        else if (state === 'skipped') skipped += 1;
      }
    }
    const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
    process.stdout.write(`\n${line}\n`);
  }
}
