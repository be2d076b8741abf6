#!/usr/bin/env node
// The SQLite state store's cost per event: accept, claim and three step records, as a worker
// with `batch` runs in flight makes them (the calls of one round land in the same event loop
// turn and share a commit, as concurrent webhook requests and step results do in the engine).
//
//   npx tsc -p tsconfig.json && node bench/store-cost.mjs [events=20000] [batch=50]
//
// Prints wall-clock and CPU microseconds per event, and the split between the operations. The
// database is a real file in the system's temporary folder; accepted events are fsynced.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { openSqliteStore } = await import(pathToFileURL(join(root, 'dist', 'store', 'sqlite', 'sqlite-store.js')).href);

const events = Number(process.argv[2] ?? 20_000);
const batch = Number(process.argv[3] ?? 50);
const dir = mkdtempSync(join(tmpdir(), 'pb-store-cost-'));
try {
  const store = await openSqliteStore(join(dir, 'state.db'));
  const payload = { id: 'evt_x', type: 'payment_intent.succeeded', data: { object: { id: 'pi_1', amount: 2000, currency: 'usd', customer: 'cus_1' } } };
  const capacity = new Map([['orders', batch]]);
  const split = { accept: 0n, claim: 0n, steps: 0n };
  let now = Date.UTC(2026, 0, 1);
  let finished = 0;
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let done = 0; done < events; done += batch) {
    let mark = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: batch }, (_, index) =>
        store.acceptEvents([{ integration: 'orders', eventKey: `evt_${done + index}`, type: 't', source: 'webhook', payload, receivedAt: now, revision: 'r1' }]),
      ),
    );
    split.accept += process.hrtime.bigint() - mark;
    mark = process.hrtime.bigint();
    const claimed = await store.claimRuns({ owner: 'bench', now, leaseMs: 30_000, capacity });
    split.claim += process.hrtime.bigint() - mark;
    mark = process.hrtime.bigint();
    for (let step = 0; step < 3; step += 1) {
      const written = await Promise.all(
        claimed.map((claim) =>
          store.recordStep({
            runId: claim.run.id,
            owner: 'bench',
            now,
            stepIndex: step,
            stepId: `s${step}`,
            attempt: { startedAt: now, durationMs: 1.5, outcome: 'succeeded', request: { method: 'POST', url: 'http://127.0.0.1/x', body: { a: 1 } }, response: { status: 200, body: { id: 'x' } }, status: 200 },
            step: { status: 'succeeded', output: { id: 'x' } },
            run: step < 2 ? { status: 'running', nextStep: step + 1 } : { status: 'succeeded' },
          }),
        ),
      );
      if (written.includes(false)) throw new Error('a lease was lost');
    }
    finished += claimed.length;
    split.steps += process.hrtime.bigint() - mark;
    now += 1;
  }
  const wallUs = Number(process.hrtime.bigint() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  await store.close();
  const perEvent = (ns) => Number((Number(ns) / 1000 / events).toFixed(1));
  console.log(
    JSON.stringify({
      events,
      batch,
      finished,
      wallUsPerEvent: Number((wallUs / events).toFixed(1)),
      cpuUsPerEvent: Number(((cpu.user + cpu.system) / events).toFixed(1)),
      acceptUs: perEvent(split.accept),
      claimUs: perEvent(split.claim),
      threeStepsUs: perEvent(split.steps),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
