import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAdminAuthSettings } from '../engine/daemon/admin/auth.js';
import { main, type CliIO } from '../engine/cli/main.js';
import { Progress } from '../engine/cli/progress.js';
import { replayBatchSize } from '../engine/cli/runs-command.js';
import { ManualClock } from '../engine/lib/clock.js';
import { openSqliteStore, type SqliteStore } from '../engine/store/sqlite/sqlite-store.js';
import type { RunRow } from '../engine/store/state-store.js';
import { makeTempDir, runCli } from './support/cli.js';
import { buildRunsFixture, fixtureEvent, fixtureOwner, fixtureRequest, fixtureStatus, fixtureStep, hourMs, minuteMs, startAdminServer, type AdminServer, type RunsFixture } from './daemon/admin-fixture.js';

// `patchbay runs …` against real SQLite state files built through the store API, the way the
// executor writes them: accepted events, claimed runs, recorded attempts with their (already
// redacted) requests and responses.


interface Captured {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process with captured output; `stderrTTY` makes standard error look like a terminal. */
async function run(argv: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; stderrTTY?: boolean } = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), ...(options.stderrTTY ? { isTTY: true, columns: 80 } : {}) } as CliIO['stderr'],
    env: options.env ?? {},
    cwd: options.cwd ?? makeTempDir('runs-cwd'),
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const event = fixtureEvent;
const request = fixtureRequest;
const step = fixtureStep;
const owner = fixtureOwner;
/** The shared runs fixture, without step counts: the STEPS column shows the steps reached. */
const buildFixture = () => buildRunsFixture({ stepCounts: false });

/** Opens the fixture's state file to check what a command did, and closes it. */
async function inspect<T>(path: string, body: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = await openSqliteStore(path);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

/** The run ids of a `runs list` table, in printed order. */
function tableIds(stdout: string): string[] {
  return stdout
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s+/)[0]!)
    .filter((cell) => cell.startsWith('run_'));
}

describe('patchbay runs list', () => {
  it('lists every run newest first, with status, UTC time, steps done/reached, attempts and the error', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'list', '--state', f.path]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^ID\s+INTEGRATION\s+STATUS\s+RECEIVED\s+STEPS\s+ATTEMPTS\s+ERROR$/);
    expect(tableIds(result.stdout)).toEqual([f.queued, f.deadBilling, f.retrying, f.dead, f.succeeded, f.oldSucceeded]);
    const line = (id: string) => result.stdout.split('\n').find((l) => l.startsWith(id))!.split(/\s{2,}/);
    expect(line(f.dead)).toEqual([f.dead, 'orders', 'dead', new Date(f.base - 30 * minuteMs).toISOString(), '1/2', '3', 'PB_PROVIDER_ERROR (notify)']);
    expect(line(f.succeeded)).toEqual([f.succeeded, 'orders', 'succeeded', new Date(f.base - 2 * hourMs).toISOString(), '2/2', '2']);
    expect(line(f.retrying)).toEqual([f.retrying, 'orders', 'retrying', new Date(f.base - 20 * minuteMs).toISOString(), '0/1', '1']);
    expect(line(f.queued)).toEqual([f.queued, 'billing', 'queued', new Date(f.base - minuteMs).toISOString(), '0/0', '0']);
  });

  it('filters by integration, status, --since (duration and ISO time) and --limit', async () => {
    const f = await buildFixture();
    const ids = async (...args: string[]) => {
      const result = await run(['runs', 'list', '--state', f.path, ...args]);
      expect(result.code).toBe(0);
      return tableIds(result.stdout);
    };
    expect(await ids('--integration', 'orders')).toEqual([f.retrying, f.dead, f.succeeded]);
    expect(await ids('--status', 'dead')).toEqual([f.deadBilling, f.dead]);
    expect(await ids('--status', 'dead', '--integration', 'billing')).toEqual([f.deadBilling]);
    expect(await ids('--since', '1h')).toEqual([f.queued, f.deadBilling, f.retrying, f.dead]);
    expect(await ids('--since', '15m')).toEqual([f.queued, f.deadBilling]);
    expect(await ids('--since', new Date(f.base - 150 * minuteMs).toISOString())).toEqual([f.queued, f.deadBilling, f.retrying, f.dead, f.succeeded]);
    // A date-time without an offset is read as UTC, like every time the command prints.
    expect(await ids('--since', new Date(f.base - 150 * minuteMs).toISOString().slice(0, 19))).toEqual([f.queued, f.deadBilling, f.retrying, f.dead, f.succeeded]);
    const limited = await run(['runs', 'list', '--state', f.path, '--limit', '2']);
    expect(tableIds(limited.stdout)).toEqual([f.queued, f.deadBilling]);
    expect(limited.stdout).toContain('the newest 2 shown');
  });

  it('prints stored runs as JSON with every key present', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'list', '--state', f.path, '--format', 'json', '--status', 'dead']);
    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout) as RunRow[];
    expect(rows.map((r) => r.id)).toEqual([f.deadBilling, f.dead]);
    expect(rows[1]).toMatchObject({ integration: 'orders', eventKey: 'evt_dead', eventType: 'order.created', status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorStep: 'notify', replays: 0, receivedAt: f.base - 30 * minuteMs });
    // Absent values are null, not missing keys.
    expect(rows[1]).toHaveProperty('leaseOwner', null);
  });

  it('refuses bad filters with exit 2 and a suggestion', async () => {
    const f = await buildFixture();
    const status = await run(['runs', 'list', '--state', f.path, '--status', 'daed']);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('did you mean "dead"?');
    const since = await run(['runs', 'list', '--state', f.path, '--since', 'yesterday']);
    expect(since.code).toBe(2);
    expect(since.stderr).toContain('--since must be a duration');
    const limit = await run(['runs', 'list', '--state', f.path, '--limit', '0']);
    expect(limit.code).toBe(2);
    const none = await run(['runs', 'list', '--state', f.path, '--integration', 'ordres']);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('did you mean "orders"?');
  });

  it('works as a real child process (bin/patchbay.js), finding the state file through PATCHBAY_STATE', async () => {
    const f = await buildFixture();
    const result = await runCli(['runs', 'list', '--integration', 'billing'], { cwd: makeTempDir('runs-child'), env: { PATCHBAY_STATE: f.path } });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(tableIds(result.stdout)).toEqual([f.queued, f.deadBilling, f.oldSucceeded]);
  });
});

describe('patchbay runs show', () => {
  it('shows the run, each step and every attempt with its stored request and response', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'show', f.dead, '--state', f.path]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain(`Run ${f.dead}\n`);
    expect(out).toMatch(/^ {2}status +dead$/m);
    expect(out).toMatch(/^ {2}integration +orders$/m);
    expect(out).toMatch(/^ {2}event +evt_dead \(order\.created\), from webhook$/m);
    expect(out).toMatch(/^ {2}revision +rev-1$/m);
    expect(out).toMatch(new RegExp(`^ {2}received +${new Date(f.base - 30 * minuteMs).toISOString()}$`, 'm'));
    expect(out).toMatch(new RegExp(`^ {2}finished +${new Date(f.base - 30 * minuteMs + 2000).toISOString()}$`, 'm'));
    expect(out).toMatch(/^ {2}replays +0$/m);
    expect(out).toContain('Step 1 "fetch": succeeded, 1 attempt\n');
    expect(out).toContain('Step 2 "notify": dead, 2 attempts\n');
    // Attempts in order under their steps.
    const fetchAt = out.indexOf('Step 1 "fetch"');
    const notifyAt = out.indexOf('Step 2 "notify"');
    const first = out.indexOf('  Attempt 1: succeeded');
    const failed = out.indexOf('  Attempt 1: failed');
    const died = out.indexOf('  Attempt 2: dead');
    expect(fetchAt).toBeLessThan(first);
    expect(first).toBeLessThan(notifyAt);
    expect(notifyAt).toBeLessThan(failed);
    expect(failed).toBeLessThan(died);
    const t = f.base - 30 * minuteMs;
    expect(out).toMatch(new RegExp(`^ {4}started +${new Date(t + 150).toISOString()}$`, 'm'));
    expect(out).toMatch(/^ {4}duration +503 ms$/m);
    expect(out).toMatch(/^ {4}status +503$/m);
    expect(out).toMatch(/^ {4}error +PB_HTTP_UNAVAILABLE: the provider answered 503$/m);
    expect(out).toMatch(new RegExp(`^ {4}retry at +${new Date(t + 1150).toISOString()}$`, 'm'));
    // Each stored request and response, pretty-printed as stored.
    const block = (value: unknown) => JSON.stringify(value, null, 2).split('\n').map((l) => `      ${l}`).join('\n');
    for (const text of ['fetch-dead', 'notify-1', 'notify-2']) expect(out).toContain(`    request\n${block(request(text))}\n`);
    expect(out).toContain(`    response\n${block({ status: 503, body: { error: 'busy' } })}\n`);
    expect(out).toContain(`    response\n${block({ status: 200, body: { id: 'n_3' } })}\n`);
    expect(out).toContain('"authorization": "[redacted]"');
    // The payload, as stored.
    expect(out).toContain(`  payload\n${JSON.stringify({ id: 'evt_dead', order: { total: 42 } }, null, 2).split('\n').map((l) => `    ${l}`).join('\n')}\n`);
    // Terminal escapes stored in a message or a body are shown escaped, never sent raw.
    expect(out).not.toMatch(/[\u001b\u009b]/);
    expect(out).toContain('rejected: \\u001b[2Jcleared');
    // JSON.stringify leaves C1 controls such as the 8-bit CSI raw; the command escapes them too.
    expect(out).toContain('bad \\u001b[31mred\\u001b[0m text \\u009b2J');
  });

  it('prints { run, steps, attempts, payload } as JSON', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'show', f.dead, '--state', f.path, '--format', 'json']);
    expect(result.code).toBe(0);
    const shown = JSON.parse(result.stdout) as { run: RunRow; steps: { stepId: string; status: string }[]; attempts: { attempt: number; outcome: string; request: unknown; response: unknown }[]; payload: unknown };
    expect(shown.run.id).toBe(f.dead);
    expect(shown.steps.map((s) => [s.stepId, s.status])).toEqual([['fetch', 'succeeded'], ['notify', 'dead']]);
    expect(shown.attempts.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'succeeded'], [1, 'failed'], [2, 'dead']]);
    expect(shown.attempts[1]!.request).toEqual(request('notify-1'));
    expect(shown.attempts[2]!.response).toEqual({ status: 422, body: { error: 'bad \u001b[31mred\u001b[0m text \u009b2J' } });
    expect(shown.payload).toEqual({ id: 'evt_dead', order: { total: 42 } });
  });

  it('answers an unknown id with exit 1, suggesting the run it is the start of', async () => {
    const f = await buildFixture();
    const unknown = await run(['runs', 'show', 'run_00000000000000000000000000', '--state', f.path]);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('PB_RUN_NOT_FOUND: no run "run_00000000000000000000000000"');
    // The id's start without "run_": too far from the whole id for an edit-distance match.
    const partial = await run(['runs', 'show', f.dead.slice(4, 18), '--state', f.path]);
    expect(partial.code).toBe(1);
    expect(partial.stderr).toContain(`did you mean "${f.dead}"?`);
    const typo = await run(['runs', 'show', `${f.dead.slice(0, -1)}!`, '--state', f.path]);
    expect(typo.stderr).toContain(`did you mean "${f.dead}"?`);
    const ambiguous = await run(['runs', 'show', 'run_', '--state', f.path]);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain('6 runs start with "run_": give more of the id');
    const json = await run(['runs', 'show', 'run_nope', '--state', f.path, '--format', 'json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'PB_RUN_NOT_FOUND' } });
  });
});

describe('patchbay runs retry', () => {
  it('replays one dead run: queued again, its succeeded step kept, the dead step reset', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'retry', f.dead, '--state', f.path]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Queued 1 run for replay');
    expect(result.stdout).toContain('patchbay work');
    await inspect(f.path, async (store) => {
      const replayed = (await store.getRun(f.dead))!;
      expect(replayed).toMatchObject({ status: 'queued', replays: 1, nextStep: 1, errorCode: undefined });
      const steps = await store.getSteps(f.dead);
      expect(steps.map((s) => [s.stepId, s.status, s.attempts])).toEqual([['fetch', 'succeeded', 1], ['notify', 'pending', 0]]);
      expect(steps[0]!.output).toEqual({ id: 'n_3' });
      // The history stays.
      expect(await store.getAttempts(f.dead)).toHaveLength(3);
      // The other dead run was not touched.
      expect((await store.getRun(f.deadBilling))!.status).toBe('dead');
    });
  });

  it('skips and reports runs that are not dead, and exits 1 when none could be replayed', async () => {
    const f = await buildFixture();
    const none = await run(['runs', 'retry', f.succeeded, 'run_missing', '--state', f.path]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`PB_RUN_NOT_DEAD: run ${f.succeeded} is succeeded, not dead: skipped`);
    expect(none.stderr).toContain('PB_RUN_NOT_FOUND: no run "run_missing"');
    expect(none.stdout).toContain('No run was queued');
    const some = await run(['runs', 'retry', f.retrying, f.deadBilling, '--state', f.path, '--format', 'json']);
    expect(some.code).toBe(0);
    expect(JSON.parse(some.stdout)).toEqual({ queued: 1, replayed: [f.deadBilling], skipped: [{ id: f.retrying, code: 'PB_RUN_NOT_DEAD', status: 'retrying', message: `run ${f.retrying} is retrying, not dead: skipped` }] });
    await inspect(f.path, async (store) => {
      expect((await store.getRun(f.succeeded))!.status).toBe('succeeded');
      expect((await store.getRun(f.retrying))!).toMatchObject({ status: 'retrying', replays: 0 });
      expect((await store.getRun(f.deadBilling))!).toMatchObject({ status: 'queued', replays: 1 });
    });
  });

  it('--dead needs --yes, then replays only dead runs (of --integration, when given)', async () => {
    const f = await buildFixture();
    const unconfirmed = await run(['runs', 'retry', '--dead', '--state', f.path]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('would replay 2 dead runs; run again with --yes');
    await inspect(f.path, async (store) => expect((await store.listRuns({ status: 'dead' })).map((r) => r.id)).toEqual([f.deadBilling, f.dead]));

    const billing = await run(['runs', 'retry', '--dead', '--integration', 'billing', '--yes', '--state', f.path]);
    expect(billing.code).toBe(0);
    expect(billing.stdout).toContain('Queued 1 run for replay');
    await inspect(f.path, async (store) => {
      expect((await store.getRun(f.deadBilling))!.status).toBe('queued');
      expect((await store.getRun(f.dead))!.status).toBe('dead');
    });

    const all = await run(['runs', 'retry', '--dead', '--yes', '--state', f.path, '--format', 'json']);
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual({ queued: 1, replayed: [f.dead], skipped: [] });
    await inspect(f.path, async (store) => {
      const byStatus = new Map((await store.listRuns({})).map((r) => [r.id, r.status]));
      expect(Object.fromEntries(byStatus)).toEqual({
        [f.queued]: 'queued',
        [f.deadBilling]: 'queued',
        [f.retrying]: 'retrying',
        [f.dead]: 'queued',
        [f.succeeded]: 'succeeded',
        [f.oldSucceeded]: 'succeeded',
      });
      // Succeeded steps are kept with their outputs.
      expect((await store.getSteps(f.succeeded)).map((s) => [s.status, s.output])).toEqual([['succeeded', { id: 'n_1' }], ['succeeded', { id: 'n_2' }]]);
      expect((await store.getSteps(f.dead))[0]).toMatchObject({ status: 'succeeded', output: { id: 'n_3' } });
    });

    const nothing = await run(['runs', 'retry', '--dead', '--yes', '--state', f.path]);
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toContain('No dead runs to replay');
  });

  it('refuses ids together with --dead, and no target at all', async () => {
    const f = await buildFixture();
    expect((await run(['runs', 'retry', f.dead, '--dead', '--yes', '--state', f.path])).code).toBe(2);
    expect((await run(['runs', 'retry', '--state', f.path])).code).toBe(2);
    expect((await run(['runs', 'retry', f.dead, '--integration', 'orders', '--state', f.path])).code).toBe(2);
    await inspect(f.path, async (store) => expect((await store.getRun(f.dead))!.status).toBe('dead'));
  });
});

describe('patchbay runs retry --dead with many runs', () => {
  const deadCount = 2 * replayBatchSize + 200;

  /** A state file with `deadCount` dead runs of integration bulk, plus one succeeded run. */
  async function buildMany(): Promise<{ path: string; succeeded: string }> {
    const path = join(makeTempDir('runs-many'), 'state.db');
    const now = Date.now() - hourMs;
    const store = await openSqliteStore(path);
    try {
      const accepted = await store.acceptEvents(Array.from({ length: deadCount + 1 }, (_, i) => event('bulk', `evt_${i}`, now + i)));
      const claimed = await store.claimRuns({ owner, now: now + deadCount + 1, leaseMs: hourMs, capacity: new Map([['bulk', deadCount + 1]]) });
      expect(claimed).toHaveLength(deadCount + 1);
      const [keep, ...rest] = accepted.map((a) => a.runId);
      expect(await store.recordStep(step(keep!, now + deadCount + 2, 0, 'push', { startedAt: now + deadCount + 2, durationMs: 1, outcome: 'succeeded' }, { status: 'succeeded', output: { ok: true } }, { status: 'succeeded' }))).toBe(true);
      for (const id of rest) {
        expect(await store.recordStep(step(id, now + deadCount + 2, 0, 'push', { startedAt: now + deadCount + 2, durationMs: 1, outcome: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'no' }, { status: 'dead' }, { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'no', errorStep: 'push' }))).toBe(true);
      }
      return { path, succeeded: keep! };
    } finally {
      await store.close();
    }
  }

  it('replays every batch and reports progress as plain lines when standard error is not a terminal', async () => {
    const many = await buildMany();
    const started = Date.now();
    const result = await run(['runs', 'retry', '--dead', '--yes', '--state', many.path]);
    const elapsedMs = Date.now() - started;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Queued ${deadCount} runs for replay`);
    const lines = result.stderr.trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(new RegExp(`^replayed \\d+ of ${deadCount}$`));
    expect(lines[lines.length - 1]).toBe(`replayed ${deadCount} of ${deadCount}`);
    // At most one line a second, plus the final one.
    expect(lines.length).toBeLessThanOrEqual(1 + Math.floor(elapsedMs / 1000) + 1);
    expect(result.stderr).not.toContain('\r');
    await inspect(many.path, async (store) => {
      const counts = await store.countRuns();
      expect(counts.map((c) => [c.status, c.count])).toEqual([['queued', deadCount], ['succeeded', 1]]);
      expect((await store.getRun(many.succeeded))!.replays).toBe(0);
    });
  });

  it('lists past the store\'s page size (1000) when --limit asks for more, newest first without repeats', async () => {
    const many = await buildMany();
    const result = await run(['runs', 'list', '--state', many.path, '--limit', String(deadCount - 50), '--format', 'json']);
    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout) as RunRow[];
    expect(rows).toHaveLength(deadCount - 50);
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    for (let i = 1; i < rows.length; i += 1) expect(rows[i]!.seq).toBeLessThan(rows[i - 1]!.seq);
  });

  it('draws a bar on a terminal', async () => {
    const many = await buildMany();
    const result = await run(['runs', 'retry', '--dead', '--yes', '--state', many.path], { stderrTTY: true });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('\r\u001b[K');
    expect(result.stderr).toMatch(new RegExp(`replayed \\[=+\\] ${deadCount}/${deadCount} 100%\\n$`));
    expect(result.stderr).not.toMatch(/^replayed \d+ of/m);
  });
});

describe('Progress', () => {
  function fakeStream(isTTY: boolean) {
    const writes: string[] = [];
    return { writes, stream: { write: (text: string) => writes.push(text), isTTY, columns: 60 } };
  }

  it('writes plain lines at most once per interval, none in the first, and always the final state', () => {
    const clock = new ManualClock(0);
    const { writes, stream } = fakeStream(false);
    const progress = new Progress({ stream, total: 10, verb: 'replayed', clock });
    progress.update(1);
    clock.advance(999);
    progress.update(2);
    expect(writes).toEqual([]);
    clock.advance(1);
    progress.update(3);
    expect(writes).toEqual(['replayed 3 of 10\n']);
    clock.advance(500);
    progress.update(4);
    progress.update(3);
    clock.advance(500);
    progress.update(5);
    // Never backwards: the stale 3 above did not lower the count.
    expect(writes).toEqual(['replayed 3 of 10\n', 'replayed 5 of 10\n']);
    progress.update(12);
    progress.finish();
    progress.finish();
    progress.update(20);
    // A count above the total raises it; finish writes once; later updates are ignored.
    expect(writes).toEqual(['replayed 3 of 10\n', 'replayed 5 of 10\n', 'replayed 12 of 12\n']);
  });

  it('does not repeat a final line that was just written', () => {
    const clock = new ManualClock(0);
    const { writes, stream } = fakeStream(false);
    const progress = new Progress({ stream, total: 2, verb: 'replayed', clock });
    clock.advance(1000);
    progress.update(2);
    progress.finish();
    expect(writes).toEqual(['replayed 2 of 2\n']);
  });

  it('on a terminal redraws one line in place within the width, and ends it with a newline', () => {
    const clock = new ManualClock(0);
    const { writes, stream } = fakeStream(true);
    const progress = new Progress({ stream, total: 4, verb: 'replayed', clock });
    progress.update(1);
    clock.advance(100);
    progress.update(2);
    progress.finish();
    const half = `\r\u001b[Kreplayed [${'='.repeat(19)}>${' '.repeat(18)}] 2/4  50%`;
    expect(writes).toEqual([
      `\r\u001b[Kreplayed [>${' '.repeat(37)}] 0/4   0%`,
      // The update at the same instant as the first draw was not drawn (at most one per 100 ms).
      half,
      half,
      '\n',
    ]);
    for (const write of writes) expect(write.replace('\r\u001b[K', '').length).toBeLessThan(60);
  });
});

describe('patchbay runs purge', () => {
  it('deletes finished runs older than the age, with their steps and attempts, and counts them', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'purge', '--older-than', '1h', '--state', f.path]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Deleted 2 finished runs older than 1h \(finished before \d{4}-\d\d-\d\dT[0-9:.]+Z\)\.\n$/);
    await inspect(f.path, async (store) => {
      expect(await store.getRun(f.succeeded)).toBeUndefined();
      expect(await store.getRun(f.oldSucceeded)).toBeUndefined();
      expect(await store.getAttempts(f.succeeded)).toEqual([]);
      expect(await store.getSteps(f.succeeded)).toEqual([]);
      expect((await store.listRuns({})).map((r) => r.id)).toEqual([f.queued, f.deadBilling, f.retrying, f.dead]);
    });
    const json = await run(['runs', 'purge', '--older-than', '1h', '--state', f.path, '--format', 'json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ deleted: 0 });
  });

  it('limits the purge to --integration', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'purge', '--older-than', '1h', '--integration', 'billing', '--state', f.path]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Deleted 1 finished run of integration "billing"');
    await inspect(f.path, async (store) => {
      expect(await store.getRun(f.oldSucceeded)).toBeUndefined();
      expect((await store.getRun(f.succeeded))!.status).toBe('succeeded');
    });
  });

  it('refuses an age under a minute unless --force, and never deletes unfinished runs', async () => {
    const f = await buildFixture();
    const refused = await run(['runs', 'purge', '--older-than', '0s', '--state', f.path]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--force');
    expect((await run(['runs', 'purge', '--state', f.path])).code).toBe(2);
    expect((await run(['runs', 'purge', '--older-than', 'soon', '--state', f.path])).code).toBe(2);
    await inspect(f.path, async (store) => expect(await store.listRuns({})).toHaveLength(6));
    const forced = await run(['runs', 'purge', '--older-than', '0s', '--force', '--state', f.path]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('Deleted 4 finished runs');
    await inspect(f.path, async (store) => expect((await store.listRuns({})).map((r) => r.id)).toEqual([f.queued, f.retrying]));
  });
});

describe('the state file', () => {
  it('is never created: a missing file is exit 2 with PB_STATE_MISSING for every command', async () => {
    const dir = makeTempDir('runs-missing');
    const path = join(dir, 'nested', 'state.db');
    for (const argv of [['list'], ['show', 'run_x'], ['retry', 'run_x'], ['purge', '--older-than', '1d']]) {
      const result = await run(['runs', ...argv, '--state', path], { cwd: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`PB_STATE_MISSING: no state file at ${path}; start the engine first or pass --state`);
    }
    // The default location, under the working directory.
    const byDefault = await run(['runs', 'list'], { cwd: dir });
    expect(byDefault.code).toBe(2);
    expect(byDefault.stderr).toContain(`no state file at ${join(dir, '.patchbay', 'state.db')}`);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('takes PATCHBAY_STATE when --state is not given', async () => {
    const f = await buildFixture();
    const result = await run(['runs', 'list', '--status', 'queued'], { env: { PATCHBAY_STATE: f.path } });
    expect(result.code).toBe(0);
    expect(tableIds(result.stdout)).toEqual([f.queued]);
  });

  it('reports a folder, or a file that is not a state database, as exit 2 and leaves the file alone', async () => {
    const dir = makeTempDir('runs-bad');
    const folder = await run(['runs', 'list', '--state', dir]);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain('is not a file');
    const path = join(dir, 'notes.txt');
    const text = 'not a database, just notes\n'.repeat(200);
    writeFileSync(path, text);
    const result = await run(['runs', 'list', '--state', path, '--format', 'json']);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stderr)).toMatchObject({ error: { code: 'PB_STATE_UNREADABLE' } });
    expect(readFileSync(path, 'utf8')).toBe(text);
  });
});

describe('patchbay runs (help and usage)', () => {
  it('prints help for each command, and exits 2 on an unknown one with a suggestion', async () => {
    for (const command of ['list', 'show', 'retry', 'purge']) {
      const help = await run(['runs', command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: patchbay runs ${command}`);
      expect(help.stdout).toContain('--format text|json');
    }
    const unknown = await run(['runs', 'lsit']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('did you mean "list"?');
    const top = await run(['rusn']);
    expect(top.stderr).toContain('did you mean "runs"?');
  });
});

describe('patchbay runs --server (against a running daemon)', () => {
  // The admin handler mounted on a real node:http server over the fixture's state file: every
  // command must print exactly what it prints when it reads the file itself.
  const adminToken = `adm_${randomBytes(24).toString('hex')}`;
  const readToken = `rd_${randomBytes(24).toString('hex')}`;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function serve(f: RunsFixture): Promise<AdminServer> {
    const store = await openSqliteStore(f.path);
    const server = await startAdminServer({ store, auth: parseAdminAuthSettings({ PATCHBAY_ADMIN_TOKEN: adminToken, PATCHBAY_ADMIN_READ_TOKEN: readToken }), status: () => fixtureStatus(f.base) });
    cleanups.push(() => store.close(), () => server.close());
    return server;
  }

  it('lists and shows runs exactly as from the state file, in text and JSON, with every filter', async () => {
    const f = await buildFixture();
    const server = await serve(f);
    const env = { PATCHBAY_ADMIN_READ_TOKEN: readToken };
    const variants = [
      ['runs', 'list'],
      ['runs', 'list', '--format', 'json'],
      ['runs', 'list', '--integration', 'orders', '--status', 'dead'],
      ['runs', 'list', '--since', '1h', '--limit', '2'],
      ['runs', 'list', '--integration', 'ordres'],
      ['runs', 'show', f.dead],
      ['runs', 'show', f.dead, '--format', 'json'],
      ['runs', 'show', f.queued],
      ['runs', 'show', f.dead.slice(0, -2)],
      ['runs', 'retry', '--dead'],
    ];
    for (const argv of variants) {
      const local = await run([...argv, '--state', f.path]);
      const remote = await run([...argv, '--server', server.url], { env });
      expect(remote, argv.join(' ')).toEqual(local);
    }
    // Sanity: the outputs compared are real ones.
    expect((await run(['runs', 'show', f.dead, '--server', server.url], { env })).stdout).toContain('PB_PROVIDER_ERROR in step "notify"');
    expect((await run(['runs', 'show', f.dead.slice(0, -2), '--server', server.url], { env })).code).toBe(1);
  });

  it('pages past 1000 runs through the API for a large --limit', async () => {
    const f = await buildFixture();
    const store = await openSqliteStore(f.path);
    await store.acceptEvents(Array.from({ length: 1100 }, (_, i) => event('bulk', `b${i}`, f.base - 5 * minuteMs)));
    await store.close();
    const server = await serve(f);
    const local = await run(['runs', 'list', '--limit', '1103', '--state', f.path]);
    const remote = await run(['runs', 'list', '--limit', '1103', '--server', server.url], { env: { PATCHBAY_ADMIN_TOKEN: adminToken } });
    expect(tableIds(remote.stdout)).toHaveLength(1103);
    expect(remote).toEqual(local);
  });

  it('replays dead letters through the daemon with the operate token; the read token is refused with exit 2', async () => {
    const f = await buildFixture();
    const server = await serve(f);
    const refused = await run(['runs', 'retry', f.dead, '--server', server.url], { env: { PATCHBAY_ADMIN_READ_TOKEN: readToken } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^patchbay runs retry: PB_ADMIN_FORBIDDEN: /);
    expect(await inspect(f.path, async (store) => (await store.getRun(f.dead))?.status)).toBe('dead');

    const env = { PATCHBAY_ADMIN_TOKEN: adminToken };
    const one = await run(['runs', 'retry', f.dead, f.succeeded, 'run_nope', '--server', server.url, '--format', 'json'], { env });
    expect(one.code).toBe(0);
    const body = JSON.parse(one.stdout) as { queued: number; replayed: string[]; skipped: { id: string; code: string; status: string | null }[] };
    expect(body.queued).toBe(1);
    expect(body.replayed).toEqual([f.dead]);
    expect(body.skipped.map((s) => [s.id, s.code, s.status])).toEqual([
      [f.succeeded, 'PB_RUN_NOT_DEAD', 'succeeded'],
      ['run_nope', 'PB_RUN_NOT_FOUND', null],
    ]);
    const ask = await run(['runs', 'retry', '--dead', '--integration', 'billing', '--server', server.url], { env });
    expect(ask.code).toBe(2);
    expect(ask.stderr).toContain('this would replay 1 dead run of integration "billing"');
    const all = await run(['runs', 'retry', '--dead', '--integration', 'billing', '--yes', '--server', server.url], { env });
    expect(all.code).toBe(0);
    expect(all.stdout).toBe('Queued 1 run for replay. Nothing runs yet: the daemon picks it up.\n');
    expect(await inspect(f.path, async (store) => (await store.getRun(f.deadBilling))?.status)).toBe('queued');
  });

  it('goes to the daemon through PATCHBAY_SERVER as a real child process; purge refuses --server', async () => {
    const f = await buildFixture();
    const server = await serve(f);
    const child = await runCli(['runs', 'list', '--status', 'dead'], { env: { PATCHBAY_SERVER: server.url, PATCHBAY_ADMIN_TOKEN: adminToken, PATCHBAY_STATE: undefined } });
    expect(child.stderr).toBe('');
    expect(child.code).toBe(0);
    expect(tableIds(child.stdout)).toEqual([f.deadBilling, f.dead]);
    const unauthenticated = await runCli(['runs', 'list'], { env: { PATCHBAY_SERVER: server.url, PATCHBAY_ADMIN_TOKEN: undefined, PATCHBAY_ADMIN_READ_TOKEN: undefined } });
    expect(unauthenticated.code).toBe(2);
    expect(unauthenticated.stderr).toContain('PB_ADMIN_UNAUTHENTICATED');
    const purge = await run(['runs', 'purge', '--older-than', '1d', '--server', server.url]);
    expect(purge.code).toBe(2);
    expect(purge.stderr).toContain('purge works on the state file only');
    const both = await run(['runs', 'list', '--server', server.url, '--state', f.path]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --server or --state, not both');
  });
});
