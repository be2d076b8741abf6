import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ledgerIntegration, startTestEngine, waitForRuns } from './harness.js';
import { Sink } from './sink.js';

// Hostile mappings inside a running engine: an endlessly recursive function (not in tail position,
// which JSONata would turn into a loop that the time limit stops instead) and a string that
// doubles itself each fail their own runs with a clear code, while a well-behaved integration
// in the same engine keeps running to completion.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function audit(expression: string): string {
  return `    - id: audit
      call: ledger.audit.write
      with: { ref: "{{ event.id }}", detail: "${expression}" }`;
}

describe('hostile expressions in a running engine', () => {
  it('stops recursion and huge strings with their codes; the other integration runs every event', async () => {
    const sink = await new Sink().start();
    cleanups.push(() => sink.close());
    const engine = await startTestEngine({
      integrations: {
        recursive: ledgerIntegration({ name: 'recursive', origin: sink.origin, steps: audit('{{ ($f := function($x){ 1 + $f($x + 1) }; $f(1)) }}') }),
        doubling: ledgerIntegration({ name: 'doubling', origin: sink.origin, steps: audit("{{ $reduce([1..40], function($acc, $v){ $acc & $acc }, 'xxxxxxxxxx') }}") }),
        steady: ledgerIntegration({ name: 'steady', origin: sink.origin, steps: audit("{{ 'ok ' & event.id }}") }),
      },
      env: { LEDGER_TOKEN: `ldg_test_${randomBytes(8).toString('hex')}`, LEDGER_WEBHOOK_SECRET: 'whsec_test_expr' },
      executor: { pollIntervalMs: 10 },
    });
    cleanups.push(() => engine.close());
    const events = (integration: string, count: number) => Array.from({ length: count }, (_, index) => ({ integration, eventKey: `${integration}-${index}`, payload: { id: `${integration}-${index}` } }));
    // Hostile and steady events interleaved, so they compete for the same event loop.
    const all = [...events('recursive', 5), ...events('doubling', 5), ...events('steady', 40)];
    await engine.executor.submit(all.sort((a, b) => a.eventKey.localeCompare(b.eventKey)));
    const started = Date.now();
    engine.executor.start();
    await waitForRuns(engine, 50, 20_000);

    const dead = await engine.store.listRuns({ status: 'dead', limit: 100 });
    expect(dead.filter((run) => run.integration === 'recursive').map((run) => run.errorCode)).toEqual(Array(5).fill('PB_MAPPING_TOO_DEEP'));
    expect(dead.filter((run) => run.integration === 'doubling').map((run) => run.errorCode)).toEqual(Array(5).fill('PB_MAPPING_TOO_LARGE'));
    // The message says where: the step's input.
    expect(dead[0]!.errorMessage).toMatch(/with\.detail/);
    expect(dead).toHaveLength(10);
    const steady = await engine.store.listRuns({ integration: 'steady', status: 'succeeded', limit: 100 });
    expect(steady).toHaveLength(40);
    expect(sink.deliveries.map((delivery) => JSON.parse(delivery.body) as { ref: string }).every((body) => body.ref.startsWith('steady-'))).toBe(true);
    expect(sink.deliveries).toHaveLength(40);
    // Each hostile evaluation is cut short: all 50 runs settle in well under the suite's patience.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
