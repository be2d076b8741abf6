import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, type Clock } from '../../engine/lib/clock.js';
import type { ClaimedRun, NewEvent, StateStore, StepResult } from '../../engine/store/state-store.js';

/**
 * Opens a store on the database that `dir` names: the same `dir` must reach the same database
 * (the suite reopens it and opens it twice at once), a new `dir` a new, empty one. `clock` only
 * stamps bookkeeping such as applied migrations; every time the contract checks is passed in.
 */
export type OpenStateStore = (dir: string, clock?: Clock) => Promise<StateStore>;

const t0 = Date.UTC(2026, 0, 1);
const leaseMs = 30_000;

/** An event of integration `orders` received at `t0 + n` with key `evt_<n>`, unless overridden. */
function event(n: number, overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    integration: 'orders',
    eventKey: `evt_${n}`,
    type: 'order.created',
    source: 'webhook',
    payload: { n, customer: { id: `cus_${n}` } },
    receivedAt: t0 + n,
    revision: 'rev_1',
    ...overrides,
  };
}

function capacity(entries: Record<string, number>): ReadonlyMap<string, number> {
  return new Map(Object.entries(entries));
}

type StepChange = Pick<StepResult, 'step' | 'run'> & { readonly attempt?: Partial<StepResult['attempt']> };

/** A StepResult for step `index` (id `s<index>`) of `runId` at `now`, succeeded unless told otherwise. */
function stepResult(runId: string, owner: string, now: number, index: number, change: StepChange): StepResult {
  return {
    runId,
    owner,
    now,
    stepIndex: index,
    stepId: `s${index}`,
    attempt: { startedAt: now - 5, durationMs: 5, outcome: 'succeeded', ...change.attempt },
    step: change.step,
    run: change.run,
  };
}

function ids(claimed: readonly ClaimedRun[]): string[] {
  return claimed.map((claim) => claim.run.id);
}

/**
 * The behaviour every StateStore must have, run against real databases. `name` titles the suite;
 * `open` is called with a fresh temporary folder per test (removed afterwards).
 */
export function describeStateStoreContract(name: string, open: OpenStateStore): void {
  describe(`StateStore contract: ${name}`, () => {
    let dir: string;
    const opened: StateStore[] = [];

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'pb-store-'));
    });

    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function openStore(): Promise<StateStore> {
      const store = await open(dir, new ManualClock(t0));
      opened.push(store);
      return store;
    }

    /** Accepts events numbered `from` to `to` (inclusive) and returns their run ids in order. */
    async function acceptRange(store: StateStore, from: number, to: number, overrides: Partial<NewEvent> = {}): Promise<string[]> {
      const events: NewEvent[] = [];
      for (let n = from; n <= to; n += 1) events.push(event(n, overrides));
      return (await store.acceptEvents(events)).map((accepted) => accepted.runId);
    }

    describe('accepting events', () => {
      it('creates a queued run per event, available at its receipt, with the payload stored', async () => {
        const store = await openStore();
        const [accepted] = await store.acceptEvents([event(1, { orderKey: 'cus_1' })]);
        expect(accepted?.accepted).toBe(true);
        const run = await store.getRun(accepted!.runId);
        expect(run).toMatchObject({
          id: accepted!.runId,
          integration: 'orders',
          eventKey: 'evt_1',
          eventType: 'order.created',
          source: 'webhook',
          status: 'queued',
          revision: 'rev_1',
          orderKey: 'cus_1',
          receivedAt: t0 + 1,
          availableAt: t0 + 1,
          nextStep: 0,
          replays: 0,
          finishedAt: undefined,
          errorCode: undefined,
          leaseOwner: undefined,
          leaseExpiresAt: undefined,
        });
        expect(run?.id).toMatch(/^run_[0-9a-z]{26}$/);
        expect(await store.getPayload(accepted!.runId)).toEqual({ n: 1, customer: { id: 'cus_1' } });
        expect(await store.getSteps(accepted!.runId)).toEqual([]);
        expect(await store.getAttempts(accepted!.runId)).toEqual([]);
        expect(await store.getRun('run_unknown')).toBeUndefined();
        expect(await store.getPayload('run_unknown')).toBeUndefined();
      });

      it("keeps the integration's step count given at acceptance, and none when it was not given", async () => {
        const store = await openStore();
        const [counted, uncounted] = await store.acceptEvents([event(1, { stepCount: 3 }), event(2)]);
        expect((await store.getRun(counted!.runId))?.stepCount).toBe(3);
        expect((await store.getRun(uncounted!.runId))?.stepCount).toBeUndefined();
      });

      it('answers a duplicate (integration, eventKey) with the existing run, in a later call or the same one', async () => {
        const store = await openStore();
        const [first] = await store.acceptEvents([event(1)]);
        const again = await store.acceptEvents([event(1, { payload: { changed: true } }), event(2), event(2)]);
        expect(again.map((accepted) => accepted.accepted)).toEqual([false, true, false]);
        expect(again[0]?.runId).toBe(first?.runId);
        expect(again[2]?.runId).toBe(again[1]?.runId);
        // The first payload is kept: a redelivery does not rewrite history.
        expect(await store.getPayload(first!.runId)).toEqual({ n: 1, customer: { id: 'cus_1' } });
        // The same key in another integration is another event.
        const [other] = await store.acceptEvents([event(1, { integration: 'refunds' })]);
        expect(other?.accepted).toBe(true);
        expect(other?.runId).not.toBe(first?.runId);
        expect((await store.listRuns({})).length).toBe(3);
      });

      it('accepts many events in one call, in order, with increasing seq', async () => {
        const store = await openStore();
        const runIds = await acceptRange(store, 1, 500);
        expect(new Set(runIds).size).toBe(500);
        const runs = await store.listRuns({ limit: 1000 });
        expect(runs.length).toBe(500);
        // Newest first: seq falls as the event number falls.
        const seqs = runs.map((run) => run.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
        expect(runs.map((run) => run.eventKey)).toEqual(Array.from({ length: 500 }, (_, index) => `evt_${500 - index}`));
      });

      it('accepts concurrent calls, each answered with its own runs', async () => {
        const store = await openStore();
        const calls = Array.from({ length: 40 }, (_, index) => store.acceptEvents([event(index), event(index + 1000)]));
        calls.push(store.acceptEvents([event(5)]));
        const answers = await Promise.all(calls);
        expect(answers.slice(0, 40).every((answer) => answer.length === 2 && answer.every((accepted) => accepted.accepted))).toBe(true);
        expect(answers[40]).toEqual([{ accepted: false, runId: answers[5]![0]!.runId }]);
        expect((await store.countRuns()).reduce((sum, count) => sum + count.count, 0)).toBe(80);
        expect(await store.acceptEvents([])).toEqual([]);
      });

      it('keeps seq increasing after the newest runs are purged', async () => {
        const store = await openStore();
        const [runId] = await acceptRange(store, 1, 1);
        const highest = (await store.getRun(runId!))!.seq;
        const [claimed] = await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs, capacity: capacity({ orders: 1 }) });
        await store.recordStep(stepResult(claimed!.run.id, 'w1', t0 + 20, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }));
        expect(await store.purgeRuns(t0 + 1_000)).toBe(1);
        const [next] = await acceptRange(store, 2, 2);
        expect((await store.getRun(next!))!.seq).toBeGreaterThan(highest);
      });
    });

    describe('claiming runs', () => {
      it('claims the oldest runs first, at most the capacity of each listed integration', async () => {
        const store = await openStore();
        const orders = await acceptRange(store, 1, 5);
        const refunds = await acceptRange(store, 6, 8, { integration: 'refunds' });
        await acceptRange(store, 9, 9, { integration: 'unlisted' });
        const now = t0 + 100;
        const claimed = await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 2, refunds: 5, idle: 3, none: 0 }) });
        expect(ids(claimed).sort()).toEqual([...orders.slice(0, 2), ...refunds].sort());
        for (const claim of claimed) {
          expect(claim.run).toMatchObject({ status: 'running', leaseOwner: 'w1', leaseExpiresAt: now + leaseMs, updatedAt: now });
          expect(claim.resumedAfterLoss).toBe(false);
          expect(claim.steps).toEqual([]);
          expect(claim.payload).toEqual({ n: Number(claim.run.eventKey.slice(4)), customer: { id: `cus_${claim.run.eventKey.slice(4)}` } });
        }
        // Held runs are not claimed again while their lease lasts; the next oldest are.
        const next = await store.claimRuns({ owner: 'w2', now: now + 1, leaseMs, capacity: capacity({ orders: 10, refunds: 10 }) });
        expect(ids(next)).toEqual(orders.slice(2));
        expect(await store.claimRuns({ owner: 'w2', now: now + 2, leaseMs, capacity: capacity({ orders: 10, refunds: 10 }) })).toEqual([]);
      });

      it('stores times with a fraction of a millisecond as they are (jittered delays are not whole)', async () => {
        const store = await openStore();
        const [run] = await store.acceptEvents([event(1)]);
        await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs: 60_000, capacity: capacity({ orders: 1 }) });
        await store.recordStep(
          stepResult(run!.runId, 'w1', t0 + 20, 0, {
            attempt: { startedAt: t0 + 12.5, durationMs: 7.25, outcome: 'failed', retryAt: t0 + 1_234.5 },
            step: { status: 'pending' },
            run: { status: 'retrying', availableAt: t0 + 1_234.5 },
          }),
        );
        expect((await store.getAttempts(run!.runId))[0]).toMatchObject({ startedAt: t0 + 12.5, durationMs: 7.25, retryAt: t0 + 1_234.5 });
        expect(await store.claimRuns({ owner: 'w1', now: t0 + 1_234, leaseMs: 60_000, capacity: capacity({ orders: 1 }) })).toEqual([]);
        expect((await store.claimRuns({ owner: 'w1', now: t0 + 1_235, leaseMs: 60_000, capacity: capacity({ orders: 1 }) })).length).toBe(1);
      });

      it('claims a queued run only once its availableAt has come', async () => {
        const store = await openStore();
        const [runId] = await acceptRange(store, 50, 50);
        expect(await store.claimRuns({ owner: 'w1', now: t0 + 49, leaseMs, capacity: capacity({ orders: 1 }) })).toEqual([]);
        expect(ids(await store.claimRuns({ owner: 'w1', now: t0 + 50, leaseMs, capacity: capacity({ orders: 1 }) }))).toEqual([runId]);
      });

      it('claims a run with an order key only when no earlier run of the key is unfinished', async () => {
        const store = await openStore();
        const [a1, a2, b1, free, a3] = (
          await store.acceptEvents([
            event(1, { orderKey: 'a' }),
            event(2, { orderKey: 'a' }),
            event(3, { orderKey: 'b' }),
            event(4),
            event(5, { orderKey: 'a' }),
          ])
        ).map((accepted) => accepted.runId);
        // The same key in another integration is another sequence.
        const [otherA] = await acceptRange(store, 6, 6, { integration: 'refunds', orderKey: 'a' });
        let now = t0 + 100;
        const first = await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10, refunds: 10 }) });
        expect(ids(first).sort()).toEqual([a1, b1, free, otherA].sort());

        // a1 retrying (unfinished) still holds a2 back, even once a1 is due again and claimed.
        now += 10;
        await store.recordStep(stepResult(a1!, 'w1', now, 0, { attempt: { outcome: 'failed' }, step: { status: 'pending' }, run: { status: 'retrying', availableAt: now + 50 } }));
        expect(await store.claimRuns({ owner: 'w1', now: now + 10, leaseMs, capacity: capacity({ orders: 10 }) })).toEqual([]);
        expect(ids(await store.claimRuns({ owner: 'w1', now: now + 50, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([a1]);

        // a1 succeeds: a2 goes, and a3 still waits behind a2.
        now += 100;
        await store.recordStep(stepResult(a1!, 'w1', now, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }));
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([a2]);

        // a2 dies: a dead run does not block, so a3 goes.
        now += 10;
        await store.recordStep(
          stepResult(a2!, 'w1', now, 0, {
            attempt: { outcome: 'dead' },
            step: { status: 'dead' },
            run: { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'refused', errorStep: 's0' },
          }),
        );
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([a3]);
      });

      it('holds later runs of a key behind a replayed earlier one', async () => {
        const store = await openStore();
        const [a1, a2, a3] = (await store.acceptEvents([event(1, { orderKey: 'a' }), event(2, { orderKey: 'a' }), event(3, { orderKey: 'a' })])).map(
          (accepted) => accepted.runId,
        );
        let now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) });
        await store.recordStep(
          stepResult(a1!, 'w1', now, 0, {
            attempt: { outcome: 'dead' },
            step: { status: 'dead' },
            run: { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'refused', errorStep: 's0' },
          }),
        );
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([a2]);
        // a1 is replayed while a2 runs: a3 now waits behind both, and a1 (first of the key) may go.
        now += 10;
        expect(await store.replayDead([a1!], now)).toEqual([a1]);
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([a1]);
        await store.recordStep(stepResult(a2!, 'w1', now, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }));
        expect(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) })).toEqual([]);
        await store.recordStep(stepResult(a1!, 'w1', now, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }));
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([a3]);
      });

      it('claims a retrying run again only from its availableAt, with its steps', async () => {
        const store = await openStore();
        const [runId] = await acceptRange(store, 1, 1);
        let now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 1 }) });
        await store.recordStep(stepResult(runId!, 'w1', now, 0, { step: { status: 'succeeded', output: { id: 'ch_1' } }, run: { status: 'running', nextStep: 1 } }));
        now += 10;
        const retryAt = now + 1_000;
        expect(
          await store.recordStep(
            stepResult(runId!, 'w1', now, 1, {
              attempt: { outcome: 'failed', status: 503, errorCode: 'PB_HTTP_SERVER_ERROR', errorMessage: 'unavailable', retryAt },
              step: { status: 'pending' },
              run: { status: 'retrying', availableAt: retryAt },
            }),
          ),
        ).toBe(true);
        expect(await store.getRun(runId!)).toMatchObject({ status: 'retrying', availableAt: retryAt, leaseOwner: undefined, leaseExpiresAt: undefined, nextStep: 1 });
        expect(await store.claimRuns({ owner: 'w2', now: retryAt - 1, leaseMs, capacity: capacity({ orders: 1 }) })).toEqual([]);
        const [claim] = await store.claimRuns({ owner: 'w2', now: retryAt, leaseMs, capacity: capacity({ orders: 1 }) });
        expect(claim?.run).toMatchObject({ id: runId, status: 'running', leaseOwner: 'w2', nextStep: 1 });
        expect(claim?.resumedAfterLoss).toBe(false);
        expect(claim?.steps).toMatchObject([
          { index: 0, stepId: 's0', status: 'succeeded', output: { id: 'ch_1' }, attempts: 1 },
          { index: 1, stepId: 's1', status: 'pending', output: undefined, attempts: 1, firstAttemptAt: now - 5 },
        ]);
      });

      it('reclaims a run whose lease expired, reporting resumedAfterLoss, and locks the old owner out', async () => {
        const store = await openStore();
        const [runId] = await acceptRange(store, 1, 1);
        const now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs: 1_000, capacity: capacity({ orders: 1 }) });
        expect(await store.claimRuns({ owner: 'w2', now: now + 999, leaseMs, capacity: capacity({ orders: 1 }) })).toEqual([]);
        const [claim] = await store.claimRuns({ owner: 'w2', now: now + 1_000, leaseMs, capacity: capacity({ orders: 1 }) });
        expect(claim?.run).toMatchObject({ id: runId, leaseOwner: 'w2', leaseExpiresAt: now + 1_000 + leaseMs });
        expect(claim?.resumedAfterLoss).toBe(true);

        const before = await store.getRun(runId!);
        expect(await store.recordStep(stepResult(runId!, 'w1', now + 1_001, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }))).toBe(false);
        expect(await store.recordInterrupted(runId!, 'w1', 0, 's0', now + 1_001)).toBe(false);
        expect(await store.deferRun(runId!, 'w1', now + 5_000, now + 1_001)).toBe(false);
        expect(await store.getRun(runId!)).toEqual(before);
        expect(await store.getSteps(runId!)).toEqual([]);
        expect(await store.getAttempts(runId!)).toEqual([]);

        expect(await store.recordInterrupted(runId!, 'w2', 0, 's0', now + 1_002)).toBe(true);
        expect(await store.getAttempts(runId!)).toMatchObject([{ stepIndex: 0, stepId: 's0', attempt: 1, outcome: 'interrupted', startedAt: now + 1_002 }]);
        expect(await store.getSteps(runId!)).toMatchObject([{ index: 0, status: 'pending', attempts: 1, firstAttemptAt: now + 1_002 }]);
      });

      it('never hands one run to two stores on the same database', async () => {
        const first = await openStore();
        const second = await openStore();
        const all = await acceptRange(first, 1, 300);
        const taken = new Map<string, string>();
        let now = t0 + 1_000;
        for (let round = 0; round < 400 && taken.size < all.length; round += 1) {
          now += 1;
          const [a, b] = await Promise.all([
            first.claimRuns({ owner: 'first', now, leaseMs, capacity: capacity({ orders: 1 + (round % 4) }) }),
            second.claimRuns({ owner: 'second', now, leaseMs, capacity: capacity({ orders: 1 + ((round + 2) % 5) }) }),
          ]);
          for (const [owner, claimed] of [['first', a], ['second', b]] as const) {
            for (const claim of claimed) {
              expect(taken.get(claim.run.id), `${claim.run.id} claimed by ${owner} and ${taken.get(claim.run.id)}`).toBeUndefined();
              taken.set(claim.run.id, owner);
            }
          }
        }
        expect([...taken.keys()].sort()).toEqual([...all].sort());
        expect(new Set(taken.values())).toEqual(new Set(['first', 'second']));
      });
    });

    describe('pending ordering keys', () => {
      const finished = (runId: string, owner: string, now: number): StepResult =>
        stepResult(runId, owner, now, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } });

      it('accepts a run with its key pending: queued, never claimed, listed oldest first, keyed in arrival order', async () => {
        const store = await openStore();
        const [e1, e2, free] = (await store.acceptEvents([event(1, { keyPending: true }), event(2, { keyPending: true }), event(3)])).map((accepted) => accepted.runId);
        const [r4] = await acceptRange(store, 4, 4, { integration: 'refunds', keyPending: true });
        expect(await store.getRun(e1!)).toMatchObject({ status: 'queued', keyPending: true, orderKey: undefined, availableAt: t0 + 1 });
        expect((await store.getRun(free!))?.keyPending).toBe(false);
        // Keying is due at once: the oldest pending run wakes a worker.
        expect(await store.nextWakeAt()).toBe(t0 + 1);

        let now = t0 + 100;
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10, refunds: 10 }) }))).toEqual([free]);
        expect(await store.pendingOrderKeys(['orders'], 10)).toEqual([
          { runId: e1, integration: 'orders', seq: (await store.getRun(e1!))!.seq, payload: { n: 1, customer: { id: 'cus_1' } } },
          { runId: e2, integration: 'orders', seq: (await store.getRun(e2!))!.seq, payload: { n: 2, customer: { id: 'cus_2' } } },
        ]);
        expect((await store.pendingOrderKeys(['orders'], 1)).map((run) => run.runId)).toEqual([e1]);
        expect((await store.pendingOrderKeys(['orders', 'refunds', 'unknown'], 10)).map((run) => run.runId)).toEqual([e1, e2, r4]);
        expect(await store.pendingOrderKeys([], 10)).toEqual([]);

        // e2 cannot be keyed before e1, whose key is still pending (whatever key e1 will get).
        expect(await store.assignOrderKeys([{ runId: e2!, orderKey: 'a' }])).toEqual([]);
        expect((await store.getRun(e2!))?.keyPending).toBe(true);
        // Another integration is another sequence: refunds is keyed while orders waits.
        expect(await store.assignOrderKeys([{ runId: r4!, orderKey: undefined }])).toEqual([r4]);
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10, refunds: 10 }) }))).toEqual([r4]);

        // Given in any order, the assignments are applied in arrival order: e2 waits behind e1.
        expect(await store.assignOrderKeys([{ runId: e2!, orderKey: 'a' }, { runId: e1!, orderKey: 'a' }])).toEqual([e1, e2]);
        expect(await store.getRun(e2!)).toMatchObject({ keyPending: false, orderKey: 'a', status: 'queued' });
        expect(await store.pendingOrderKeys(['orders', 'refunds'], 10)).toEqual([]);
        // Assigned once: a second worker's assignment is ignored.
        expect(await store.assignOrderKeys([{ runId: e1!, orderKey: 'b' }])).toEqual([]);
        expect((await store.getRun(e1!))?.orderKey).toBe('a');
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([e1]);
        expect(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) })).toEqual([]);
        now += 10;
        await store.recordStep(finished(e1!, 'w1', now));
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([e2]);
      });

      it('keys a pending run behind an earlier unfinished run of its key, and lets a key-less one go', async () => {
        const store = await openStore();
        const [keyed] = await acceptRange(store, 1, 1, { orderKey: 'a' });
        const [p2, p3, p4] = await acceptRange(store, 2, 4, { keyPending: true });
        expect(await store.assignOrderKeys([{ runId: p2!, orderKey: 'a' }, { runId: p3!, orderKey: undefined }, { runId: p4!, orderKey: 'b' }])).toEqual([p2, p3, p4]);
        const now = t0 + 100;
        expect(ids(await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([keyed, p3, p4]);
        await store.recordStep(finished(keyed!, 'w1', now + 1));
        expect(ids(await store.claimRuns({ owner: 'w1', now: now + 1, leaseMs, capacity: capacity({ orders: 10 }) }))).toEqual([p2]);
      });

      it('refuses an event that has both an order key and a pending key', async () => {
        const store = await openStore();
        await expect(store.acceptEvents([event(1, { orderKey: 'a', keyPending: true })])).rejects.toThrow(RangeError);
        expect(await store.listRuns({})).toEqual([]);
      });

      it('keys runs in arrival order while two stores accept and key them at once', async () => {
        const first = await openStore();
        const second = await openStore();
        let accepting = true;
        // 90 events of one key arrive through both stores at once, while both decide keys.
        const accepted = Promise.all(
          Array.from({ length: 30 }, (_, call) =>
            (call % 2 === 0 ? first : second).acceptEvents([0, 1, 2].map((part) => event(call * 3 + part + 1, { keyPending: true }))),
          ),
        ).finally(() => {
          accepting = false;
        });
        const keyer = async (store: StateStore, batch: number): Promise<number> => {
          let assigned = 0;
          for (let round = 0; round < 2_000; round += 1) {
            const pending = await store.pendingOrderKeys(['orders'], batch);
            if (pending.length === 0 && !accepting) return assigned;
            assigned += (await store.assignOrderKeys(pending.map((run) => ({ runId: run.runId, orderKey: 'cus_1' })))).length;
            await new Promise((resolve) => setImmediate(resolve));
          }
          throw new Error('keying did not finish');
        };
        const [runs, byFirst, bySecond] = await Promise.all([accepted, keyer(first, 4), keyer(second, 7)]);
        expect(new Set(runs.flat().map((run) => run.runId)).size).toBe(90);
        expect(byFirst + bySecond).toBe(90);
        // One run of the key at a time, in arrival order.
        const seqs: number[] = [];
        let now = t0 + 1_000;
        for (let round = 0; round < 90; round += 1) {
          const claimed = await (round % 2 === 0 ? first : second).claimRuns({ owner: 'w', now, leaseMs, capacity: capacity({ orders: 10 }) });
          expect(claimed.length, `round ${round}`).toBe(1);
          seqs.push(claimed[0]!.run.seq);
          now += 1;
          expect(await (round % 2 === 0 ? second : first).recordStep(finished(claimed[0]!.run.id, 'w', now))).toBe(true);
        }
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      }, 60_000);
    });

    describe('recording steps', () => {
      it('walks a run through its steps to success, numbering attempts and keeping outputs', async () => {
        const store = await openStore();
        const [runId] = await acceptRange(store, 1, 1);
        let now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 1 }) });
        now += 10;
        expect(
          await store.recordStep(
            stepResult(runId!, 'w1', now, 0, {
              attempt: { request: { method: 'POST', url: 'https://api.example.test/v1/charges', body: { amount: 100 } }, response: { status: 200, body: { id: 'ch_1' } }, status: 200 },
              step: { status: 'succeeded', output: { id: 'ch_1' } },
              run: { status: 'running', nextStep: 1 },
            }),
          ),
        ).toBe(true);
        expect(await store.getRun(runId!)).toMatchObject({ status: 'running', nextStep: 1, leaseOwner: 'w1', updatedAt: now });
        now += 10;
        await store.recordStep(
          stepResult(runId!, 'w1', now, 1, { attempt: { outcome: 'skipped' }, step: { status: 'skipped' }, run: { status: 'running', nextStep: 2 } }),
        );
        now += 10;
        await store.recordStep(
          stepResult(runId!, 'w1', now, 2, {
            attempt: { outcome: 'failed', status: 500, errorCode: 'PB_HTTP_SERVER_ERROR', errorMessage: 'boom', retryAt: now },
            step: { status: 'pending' },
            run: { status: 'running', nextStep: 2 },
          }),
        );
        now += 10;
        await store.recordStep(stepResult(runId!, 'w1', now, 2, { step: { status: 'succeeded', output: null }, run: { status: 'succeeded' } }));

        expect(await store.getRun(runId!)).toMatchObject({
          status: 'succeeded',
          finishedAt: now,
          updatedAt: now,
          nextStep: 3,
          leaseOwner: undefined,
          leaseExpiresAt: undefined,
          errorCode: undefined,
        });
        expect(await store.getSteps(runId!)).toEqual([
          { runId, index: 0, stepId: 's0', status: 'succeeded', output: { id: 'ch_1' }, attempts: 1, firstAttemptAt: t0 + 105, updatedAt: t0 + 110 },
          { runId, index: 1, stepId: 's1', status: 'skipped', output: undefined, attempts: 1, firstAttemptAt: t0 + 115, updatedAt: t0 + 120 },
          { runId, index: 2, stepId: 's2', status: 'succeeded', output: null, attempts: 2, firstAttemptAt: t0 + 125, updatedAt: t0 + 140 },
        ]);
        const attempts = await store.getAttempts(runId!);
        expect(attempts.map((attempt) => [attempt.stepIndex, attempt.attempt, attempt.outcome])).toEqual([
          [0, 1, 'succeeded'],
          [1, 1, 'skipped'],
          [2, 1, 'failed'],
          [2, 2, 'succeeded'],
        ]);
        expect(attempts[0]).toMatchObject({
          runId,
          stepId: 's0',
          startedAt: t0 + 105,
          durationMs: 5,
          request: { method: 'POST', url: 'https://api.example.test/v1/charges', body: { amount: 100 } },
          response: { status: 200, body: { id: 'ch_1' } },
          status: 200,
          errorCode: undefined,
          retryAt: undefined,
        });
        expect(attempts[2]).toMatchObject({ status: 500, errorCode: 'PB_HTTP_SERVER_ERROR', errorMessage: 'boom', retryAt: t0 + 130, request: undefined });
        expect(attempts.map((attempt) => attempt.id)).toEqual([...attempts.map((attempt) => attempt.id)].sort((a, b) => a - b));
        // Finished: nothing more to claim, and the run no longer holds a lease.
        expect(await store.claimRuns({ owner: 'w2', now: now + leaseMs * 2, leaseMs, capacity: capacity({ orders: 5 }) })).toEqual([]);
        expect(await store.leaseOwners(now)).toEqual([]);
      });

      it('writes nothing and answers false for a worker that does not hold the lease', async () => {
        const store = await openStore();
        const [runId, waiting] = await acceptRange(store, 1, 2);
        const now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 1 }) });
        const before = await store.getRun(runId!);
        expect(await store.recordStep(stepResult(runId!, 'intruder', now + 1, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }))).toBe(false);
        expect(await store.recordInterrupted(runId!, 'intruder', 0, 's0', now + 1)).toBe(false);
        expect(await store.deferRun(runId!, 'intruder', now + 10, now + 1)).toBe(false);
        // A queued run has no lease at all.
        expect(await store.recordStep(stepResult(waiting!, 'w1', now + 1, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }))).toBe(false);
        expect(await store.getRun(runId!)).toEqual(before);
        expect(await store.getSteps(runId!)).toEqual([]);
        expect(await store.getAttempts(runId!)).toEqual([]);
        expect((await store.getRun(waiting!))?.status).toBe('queued');
        expect(await store.getAttempts(waiting!)).toEqual([]);
        expect(await store.recordStep(stepResult('run_unknown', 'w1', now + 1, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }))).toBe(false);
      });

      it('makes a dead letter with the reason, and lists it', async () => {
        const store = await openStore();
        const [runId, other] = await acceptRange(store, 1, 2);
        const now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 2 }) });
        await store.recordStep(
          stepResult(runId!, 'w1', now, 0, {
            attempt: { outcome: 'dead', status: 402, errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'card declined' },
            step: { status: 'dead' },
            run: { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'card declined', errorStep: 's0' },
          }),
        );
        expect(await store.getRun(runId!)).toMatchObject({
          status: 'dead',
          finishedAt: now,
          errorCode: 'PB_PROVIDER_ERROR',
          errorMessage: 'card declined',
          errorStep: 's0',
          leaseOwner: undefined,
          nextStep: 0,
        });
        expect((await store.listRuns({ status: 'dead' })).map((run) => run.id)).toEqual([runId]);
        expect((await store.listRuns({ status: 'running' })).map((run) => run.id)).toEqual([other]);
      });
    });

    describe('giving runs back', () => {
      it('defers a run as queued without attempts, as retrying with them, until availableAt', async () => {
        const store = await openStore();
        const [fresh, failing] = await acceptRange(store, 1, 2);
        let now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 2 }) });
        await store.recordStep(stepResult(failing!, 'w1', now, 0, { attempt: { outcome: 'failed' }, step: { status: 'pending' }, run: { status: 'running', nextStep: 0 } }));
        now += 10;
        expect(await store.deferRun(fresh!, 'w1', now + 500, now)).toBe(true);
        expect(await store.deferRun(failing!, 'w1', now + 500, now)).toBe(true);
        expect(await store.getRun(fresh!)).toMatchObject({ status: 'queued', availableAt: now + 500, leaseOwner: undefined, updatedAt: now });
        expect(await store.getRun(failing!)).toMatchObject({ status: 'retrying', availableAt: now + 500, leaseOwner: undefined });
        expect(await store.getAttempts(fresh!)).toEqual([]);
        expect(await store.claimRuns({ owner: 'w2', now: now + 499, leaseMs, capacity: capacity({ orders: 2 }) })).toEqual([]);
        const again = await store.claimRuns({ owner: 'w2', now: now + 500, leaseMs, capacity: capacity({ orders: 2 }) });
        expect(ids(again)).toEqual([fresh, failing]);
        expect(again.every((claim) => !claim.resumedAfterLoss)).toBe(true);
      });

      it('renews and lists leases per owner', async () => {
        const store = await openStore();
        await acceptRange(store, 1, 3);
        const now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs: 1_000, capacity: capacity({ orders: 2 }) });
        await store.claimRuns({ owner: 'w2', now, leaseMs: 500, capacity: capacity({ orders: 1 }) });
        expect(await store.leaseOwners(now)).toEqual(['w1', 'w2']);
        expect(await store.leaseOwners(now + 500)).toEqual(['w1']);
        expect(await store.renewLeases('w1', now + 5_000)).toBe(2);
        expect(await store.renewLeases('nobody', now + 5_000)).toBe(0);
        expect(await store.leaseOwners(now + 4_999)).toEqual(['w1']);
        // w2's lease ran out; w1's renewed ones are not claimable until their new expiry.
        const reclaimed = await store.claimRuns({ owner: 'w3', now: now + 4_999, leaseMs, capacity: capacity({ orders: 5 }) });
        expect(reclaimed.map((claim) => [claim.run.eventKey, claim.resumedAfterLoss])).toEqual([['evt_3', true]]);
        for (const run of await store.listRuns({ status: 'running' })) {
          if (run.leaseOwner === 'w1') expect(run.leaseExpiresAt).toBe(now + 5_000);
        }
      });

      it('releases a lost worker\'s runs for a resumed claim, and a departing worker\'s for a fresh one', async () => {
        const store = await openStore();
        const [lostRun, keptRun, mid] = await acceptRange(store, 1, 3);
        const now = t0 + 100;
        await store.claimRuns({ owner: 'lost', now, leaseMs, capacity: capacity({ orders: 1 }) });
        await store.claimRuns({ owner: 'leaving', now, leaseMs, capacity: capacity({ orders: 2 }) });
        await store.recordStep(stepResult(mid!, 'leaving', now, 0, { attempt: { outcome: 'failed' }, step: { status: 'pending' }, run: { status: 'running', nextStep: 0 } }));
        expect(await store.releaseLeases('lost', now + 1, true)).toBe(1);
        expect(await store.releaseLeases('leaving', now + 1, false)).toBe(2);
        expect(await store.releaseLeases('leaving', now + 1, false)).toBe(0);
        expect(await store.leaseOwners(now + 1)).toEqual([]);
        expect(await store.getRun(keptRun!)).toMatchObject({ status: 'queued', leaseOwner: undefined, availableAt: now + 1 });
        expect(await store.getRun(mid!)).toMatchObject({ status: 'retrying', leaseOwner: undefined });
        const claimed = await store.claimRuns({ owner: 'w2', now: now + 1, leaseMs, capacity: capacity({ orders: 5 }) });
        expect(claimed.map((claim) => [claim.run.id, claim.resumedAfterLoss])).toEqual([
          [lostRun, true],
          [keptRun, false],
          [mid, false],
        ]);
      });

      it('says when the next run is due or the next lease runs out', async () => {
        const store = await openStore();
        expect(await store.nextWakeAt()).toBeUndefined();
        await acceptRange(store, 500, 500);
        await acceptRange(store, 300, 300);
        expect(await store.nextWakeAt()).toBe(t0 + 300);
        await store.claimRuns({ owner: 'w1', now: t0 + 400, leaseMs: 50, capacity: capacity({ orders: 1 }) });
        expect(await store.nextWakeAt()).toBe(t0 + 450);
        const claimed = await store.claimRuns({ owner: 'w1', now: t0 + 600, leaseMs, capacity: capacity({ orders: 5 }) });
        expect(claimed.map((claim) => claim.run.eventKey)).toEqual(['evt_500', 'evt_300']);
        expect(await store.nextWakeAt()).toBe(t0 + 600 + leaseMs);
        // Finished runs wake nobody.
        for (const claim of claimed) {
          await store.recordStep(stepResult(claim.run.id, 'w1', t0 + 700, 0, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }));
        }
        expect(await store.nextWakeAt()).toBeUndefined();
      });
    });

    describe('dead letters', () => {
      it('replays a dead run from its dead step, keeping succeeded steps and numbering attempts on', async () => {
        const store = await openStore();
        const [runId, alive] = await acceptRange(store, 1, 2);
        let now = t0 + 100;
        await store.claimRuns({ owner: 'w1', now, leaseMs, capacity: capacity({ orders: 2 }) });
        await store.recordStep(stepResult(runId!, 'w1', now, 0, { step: { status: 'succeeded', output: { id: 'cus_9' } }, run: { status: 'running', nextStep: 1 } }));
        await store.recordStep(stepResult(runId!, 'w1', now + 1, 1, { attempt: { outcome: 'failed' }, step: { status: 'pending' }, run: { status: 'running', nextStep: 1 } }));
        await store.recordStep(
          stepResult(runId!, 'w1', now + 2, 1, {
            attempt: { outcome: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'no' },
            step: { status: 'dead' },
            run: { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'no', errorStep: 's1' },
          }),
        );
        now += 1_000;
        expect(await store.replayDead([runId!, alive!, runId!, 'run_unknown'], now)).toEqual([runId]);
        expect(await store.getRun(runId!)).toMatchObject({
          status: 'queued',
          availableAt: now,
          updatedAt: now,
          replays: 1,
          nextStep: 1,
          finishedAt: undefined,
          errorCode: undefined,
          errorMessage: undefined,
          errorStep: undefined,
        });
        expect((await store.getRun(alive!))?.status).toBe('running');
        expect(await store.getSteps(runId!)).toMatchObject([
          { index: 0, status: 'succeeded', output: { id: 'cus_9' }, attempts: 1 },
          { index: 1, status: 'pending', output: undefined, attempts: 0, firstAttemptAt: undefined },
        ]);
        // A second replay of a run that is no longer dead does nothing.
        expect(await store.replayDead([runId!], now)).toEqual([]);

        const [claim] = await store.claimRuns({ owner: 'w2', now, leaseMs, capacity: capacity({ orders: 5 }) });
        expect(claim?.run).toMatchObject({ id: runId, replays: 1, nextStep: 1 });
        expect(claim?.steps.map((step) => [step.index, step.status, step.attempts])).toEqual([
          [0, 'succeeded', 1],
          [1, 'pending', 0],
        ]);
        await store.recordStep(stepResult(runId!, 'w2', now + 5, 1, { step: { status: 'succeeded' }, run: { status: 'succeeded' } }));
        expect((await store.getSteps(runId!))[1]).toMatchObject({ attempts: 1, firstAttemptAt: now });
        expect((await store.getAttempts(runId!)).map((attempt) => [attempt.stepIndex, attempt.attempt, attempt.outcome])).toEqual([
          [0, 1, 'succeeded'],
          [1, 1, 'failed'],
          [1, 2, 'dead'],
          [1, 3, 'succeeded'],
        ]);
        expect(await store.getRun(runId!)).toMatchObject({ status: 'succeeded', replays: 1 });
      });
    });

    describe('retention', () => {
      it('purges only finished runs that finished before the cut-off, with everything they hold', async () => {
        const store = await openStore();
        const [oldDone, oldDead, recentDone, stillRunning, otherDone] = await acceptRange(store, 1, 5);
        const [refund] = await acceptRange(store, 6, 6, { integration: 'refunds' });
        await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs: leaseMs * 1_000, capacity: capacity({ orders: 5, refunds: 1 }) });
        const finish = async (runId: string, now: number, dead = false): Promise<void> => {
          await store.recordStep(
            stepResult(runId, 'w1', now, 0, dead
              ? { attempt: { outcome: 'dead' }, step: { status: 'dead' }, run: { status: 'dead', errorCode: 'PB_PROVIDER_ERROR', errorMessage: 'no', errorStep: 's0' } }
              : { step: { status: 'succeeded', output: { ok: true } }, run: { status: 'succeeded' } }),
          );
        };
        await finish(oldDone!, t0 + 1_000);
        await finish(oldDead!, t0 + 1_500, true);
        await finish(recentDone!, t0 + 5_000);
        await finish(otherDone!, t0 + 1_000);
        await finish(refund!, t0 + 1_000);
        await store.recordStep(stepResult(stillRunning!, 'w1', t0 + 20, 0, { step: { status: 'succeeded' }, run: { status: 'running', nextStep: 1 } }));

        expect(await store.purgeRuns(t0 + 1_000)).toBe(0);
        expect(await store.purgeRuns(t0 + 2_000, 'refunds')).toBe(1);
        expect(await store.getRun(refund!)).toBeUndefined();
        expect(await store.purgeRuns(t0 + 2_000)).toBe(3);
        for (const gone of [oldDone!, oldDead!, otherDone!]) {
          expect(await store.getRun(gone)).toBeUndefined();
          expect(await store.getPayload(gone)).toBeUndefined();
          expect(await store.getSteps(gone)).toEqual([]);
          expect(await store.getAttempts(gone)).toEqual([]);
        }
        expect((await store.listRuns({})).map((run) => run.id).sort()).toEqual([recentDone, stillRunning].sort());
        expect((await store.getSteps(stillRunning!)).length).toBe(1);
        expect(await store.getPayload(recentDone!)).toEqual({ n: 3, customer: { id: 'cus_3' } });
        // The purged events are forgotten with their runs: a redelivery is a new event.
        expect((await store.acceptEvents([event(1)]))[0]?.accepted).toBe(true);
      });
    });

    describe('listing and counting', () => {
      it('lists runs newest first with filters, a default limit of 50 and paging by seq', async () => {
        const store = await openStore();
        await acceptRange(store, 1, 60);
        await acceptRange(store, 61, 70, { integration: 'refunds' });
        await store.claimRuns({ owner: 'w1', now: t0 + 100, leaseMs, capacity: capacity({ refunds: 3 }) });
        const page = await store.listRuns({});
        expect(page.length).toBe(50);
        expect(page[0]?.eventKey).toBe('evt_70');
        const next = await store.listRuns({ beforeSeq: page[49]!.seq, limit: 100 });
        expect(next.map((run) => run.eventKey)).toEqual(Array.from({ length: 20 }, (_, index) => `evt_${20 - index}`));
        expect((await store.listRuns({ integration: 'refunds', limit: 1000 })).length).toBe(10);
        expect((await store.listRuns({ integration: 'refunds', status: 'running' })).map((run) => run.eventKey)).toEqual(['evt_63', 'evt_62', 'evt_61']);
        expect((await store.listRuns({ status: 'queued', since: t0 + 65 })).map((run) => run.eventKey)).toEqual([
          'evt_70',
          'evt_69',
          'evt_68',
          'evt_67',
          'evt_66',
          'evt_65',
        ]);
        expect((await store.listRuns({ integration: 'orders', since: t0 + 59, beforeSeq: page[0]!.seq })).map((run) => run.eventKey)).toEqual(['evt_60', 'evt_59']);
        expect((await store.listRuns({ limit: 5_000 })).length).toBe(70);
        expect(await store.listRuns({ integration: 'nothing' })).toEqual([]);
      });

      it('counts runs by integration and status', async () => {
        const store = await openStore();
        expect(await store.countRuns()).toEqual([]);
        await acceptRange(store, 1, 4);
        await acceptRange(store, 5, 5, { integration: 'refunds' });
        await store.claimRuns({ owner: 'w1', now: t0 + 100, leaseMs, capacity: capacity({ orders: 1 }) });
        const counts = [...(await store.countRuns())].sort((a, b) => `${a.integration}/${a.status}`.localeCompare(`${b.integration}/${b.status}`));
        expect(counts).toEqual([
          { integration: 'orders', status: 'queued', count: 3 },
          { integration: 'orders', status: 'running', count: 1 },
          { integration: 'refunds', status: 'queued', count: 1 },
        ]);
      });
    });

    describe('cursors and revisions', () => {
      it('keeps one poll cursor per integration', async () => {
        const store = await openStore();
        expect(await store.getCursor('orders')).toBeUndefined();
        await store.setCursor('orders', 'page-2', t0);
        await store.setCursor('refunds', '{"since":"2026-01-01"}', t0);
        await store.setCursor('orders', 'page-3', t0 + 1);
        expect(await store.getCursor('orders')).toBe('page-3');
        expect(await store.getCursor('refunds')).toBe('{"since":"2026-01-01"}');
      });

      it('records revisions idempotently and answers the latest applied', async () => {
        const store = await openStore();
        expect(await store.latestRevision()).toBeUndefined();
        await store.recordRevision({ id: 'rev_a', appliedAt: t0, integrations: ['orders'] });
        await store.recordRevision({ id: 'rev_b', appliedAt: t0 + 10, integrations: ['orders', 'refunds'] });
        await store.recordRevision({ id: 'rev_b', appliedAt: t0 + 10, integrations: ['orders', 'refunds'] });
        expect(await store.latestRevision()).toEqual({ id: 'rev_b', appliedAt: t0 + 10, integrations: ['orders', 'refunds'] });
        // Rolling back to an earlier revision makes it the latest again.
        await store.recordRevision({ id: 'rev_a', appliedAt: t0 + 20, integrations: ['orders'] });
        expect(await store.latestRevision()).toEqual({ id: 'rev_a', appliedAt: t0 + 20, integrations: ['orders'] });
      });
    });

    describe('trigger leases', () => {
      const triggerLeaseMs = 120_000;

      it('takes a free lease, renews it for its holder, refuses it to another until it runs out, then hands it over', async () => {
        const store = await openStore();
        expect(await store.acquireTriggerLease('orders', 'daemon-a', t0, triggerLeaseMs)).toBe(true);
        expect(await store.acquireTriggerLease('orders', 'daemon-b', t0 + 1, triggerLeaseMs)).toBe(false);
        // Another integration's lease is its own.
        expect(await store.acquireTriggerLease('refunds', 'daemon-b', t0 + 1, triggerLeaseMs)).toBe(true);
        // Renewed at t0 + 100 s: now held until t0 + 220 s, not t0 + 120 s.
        expect(await store.acquireTriggerLease('orders', 'daemon-a', t0 + 100_000, triggerLeaseMs)).toBe(true);
        expect(await store.acquireTriggerLease('orders', 'daemon-b', t0 + triggerLeaseMs, triggerLeaseMs)).toBe(false);
        expect(await store.acquireTriggerLease('orders', 'daemon-b', t0 + 220_000 - 1, triggerLeaseMs)).toBe(false);
        // Run out (a holder that died): taken over, and the old holder is now refused.
        expect(await store.acquireTriggerLease('orders', 'daemon-b', t0 + 220_000, triggerLeaseMs)).toBe(true);
        expect(await store.acquireTriggerLease('orders', 'daemon-a', t0 + 220_001, triggerLeaseMs)).toBe(false);
        // A holder whose lease ran out while nobody took it keeps it.
        expect(await store.acquireTriggerLease('refunds', 'daemon-b', t0 + 10 * triggerLeaseMs, triggerLeaseMs)).toBe(true);
        await expect(store.acquireTriggerLease('orders', 'daemon-a', t0, 0)).rejects.toThrow(RangeError);
      });

      it('releases only its own lease, and a released lease is free at once', async () => {
        const store = await openStore();
        expect(await store.acquireTriggerLease('orders', 'daemon-a', t0, triggerLeaseMs)).toBe(true);
        await store.releaseTriggerLease('orders', 'daemon-b');
        await store.releaseTriggerLease('refunds', 'daemon-a');
        expect(await store.acquireTriggerLease('orders', 'daemon-b', t0 + 1, triggerLeaseMs)).toBe(false);
        await store.releaseTriggerLease('orders', 'daemon-a');
        expect(await store.acquireTriggerLease('orders', 'daemon-b', t0 + 2, triggerLeaseMs)).toBe(true);
        // The old holder, taken over, releasing late: the new holder keeps it.
        await store.releaseTriggerLease('orders', 'daemon-a');
        expect(await store.acquireTriggerLease('orders', 'daemon-a', t0 + 3, triggerLeaseMs)).toBe(false);
      });

      it('gives the lease to exactly one of two stores on the same database racing for it', async () => {
        const first = await openStore();
        const second = await openStore();
        const winners: string[] = [];
        for (let round = 0; round < 50; round += 1) {
          // Even rounds race to insert a new integration's lease, odd ones to take over one that ran out.
          const integration = round % 2 === 0 ? `new_${round}` : 'shared';
          const now = t0 + round * triggerLeaseMs;
          const contenders = round % 4 < 2 ? [[first, 'first'], [second, 'second']] as const : [[second, 'second'], [first, 'first']] as const;
          const held = await Promise.all(contenders.map(([store, owner]) => store.acquireTriggerLease(integration, owner, now, triggerLeaseMs)));
          expect(held.filter(Boolean), `round ${round}: ${JSON.stringify(held)}`).toHaveLength(1);
          const winner = contenders[held.indexOf(true)]![1];
          winners.push(winner);
          // The loser stays refused while the winner's lease runs.
          const loser = contenders.find(([, owner]) => owner !== winner)!;
          expect(await loser[0].acquireTriggerLease(integration, loser[1], now + triggerLeaseMs - 1, triggerLeaseMs)).toBe(false);
        }
        expect(winners).toHaveLength(50);
      });
    });

    describe('reopening', () => {
      it('finds everything again after close and reopen, and still deduplicates', async () => {
        const store = await openStore();
        const [runId] = await acceptRange(store, 1, 1);
        await store.claimRuns({ owner: 'w1', now: t0 + 10, leaseMs, capacity: capacity({ orders: 1 }) });
        await store.recordStep(stepResult(runId!, 'w1', t0 + 20, 0, { step: { status: 'succeeded', output: { id: 'x' } }, run: { status: 'running', nextStep: 1 } }));
        await store.setCursor('orders', 'c1', t0);
        await store.recordRevision({ id: 'rev_1', appliedAt: t0, integrations: ['orders'] });
        const before = await store.getRun(runId!);
        await store.close();
        await store.close();

        const reopened = await openStore();
        expect(await reopened.getRun(runId!)).toEqual(before);
        expect(await reopened.getSteps(runId!)).toMatchObject([{ status: 'succeeded', output: { id: 'x' } }]);
        expect(await reopened.getCursor('orders')).toBe('c1');
        expect((await reopened.latestRevision())?.id).toBe('rev_1');
        expect(await reopened.acceptEvents([event(1)])).toEqual([{ accepted: false, runId }]);
        // The lease survived the restart, so the run resumes only once it runs out.
        expect(await reopened.claimRuns({ owner: 'w2', now: t0 + 20, leaseMs, capacity: capacity({ orders: 1 }) })).toEqual([]);
        const [claim] = await reopened.claimRuns({ owner: 'w2', now: t0 + 10 + leaseMs, leaseMs, capacity: capacity({ orders: 1 }) });
        expect(claim?.resumedAfterLoss).toBe(true);
      });
    });
  });
}
