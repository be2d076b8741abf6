import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startRetention } from '../../engine/executor/retention.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { openSqliteStore } from '../../engine/store/sqlite/sqlite-store.js';
import type { StateStore } from '../../engine/store/state-store.js';
import { runCli } from '../support/cli.js';

const day = 86_400_000;

/** Accepts one event received at `at` and runs its single step to `status` at `at + 1`. */
async function finishedRun(store: StateStore, key: string, at: number, status: 'succeeded' | 'dead'): Promise<string> {
  const [accepted] = await store.acceptEvents([{ integration: 'books', eventKey: key, source: 'manual', payload: { key }, receivedAt: at, revision: 'r1', stepCount: 1 }]);
  await store.claimRuns({ owner: 'w', now: at, leaseMs: 60_000, capacity: new Map([['books', 10]]) });
  const run =
    status === 'succeeded'
      ? ({ status: 'succeeded' } as const)
      : ({ status: 'dead', errorCode: 'PB_HTTP_CLIENT_ERROR', errorMessage: 'refused', errorStep: 'record' } as const);
  const written = await store.recordStep({
    runId: accepted!.runId,
    owner: 'w',
    now: at + 1,
    stepIndex: 0,
    stepId: 'record',
    attempt: { startedAt: at, durationMs: 1, outcome: status === 'succeeded' ? 'succeeded' : 'dead' },
    step: { status: status === 'succeeded' ? 'succeeded' : 'dead' },
    run,
  });
  expect(written).toBe(true);
  return accepted!.runId;
}

describe('retention', () => {
  it('deletes finished runs older than the retention at start, keeping recent and unfinished ones', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 24));
    const store = await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'pb-retention-')), 'state.db'));
    try {
      const now = clock.now();
      const oldSucceeded = await finishedRun(store, 'old-ok', now - 40 * day, 'succeeded');
      const oldDead = await finishedRun(store, 'old-dead', now - 31 * day, 'dead');
      const recent = await finishedRun(store, 'recent', now - 2 * day, 'succeeded');
      const [waiting] = await store.acceptEvents([{ integration: 'books', eventKey: 'waiting', source: 'manual', payload: {}, receivedAt: now - 60 * day, revision: 'r1' }]);
      const logger = new MemoryLogger();
      const stop = startRetention({ store, retentionMs: 30 * day, clock, logger });
      await stop();
      expect(await store.getRun(oldSucceeded)).toBeUndefined();
      expect(await store.getRun(oldDead)).toBeUndefined();
      expect(await store.getRun(recent)).toBeDefined();
      expect((await store.getRun(waiting!.runId))?.status).toBe('queued');
      expect(logger.lines.map((line) => line.fields.deleted)).toEqual([2]);
    } finally {
      await store.close();
    }
  });

  it('refuses a retention under a minute on the command line', async () => {
    const result = await runCli(['work', '--retention', '5s']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--retention must be a duration of at least 1m');
  });
});
