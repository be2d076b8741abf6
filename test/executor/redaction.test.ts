import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ledgerIntegration, startTestEngine } from './harness.js';
import { Sink } from './sink.js';

// Redaction at write time through the whole engine: what the event, the requests, the
// responses, the outputs, the dead-letter reasons and the logs keep of a card number, a Social
// Security number, a redacted address and a provider that echoes the API token back. The suite
// scan (test/support/suite-scan.ts) then reads the state file and the log bytes for each of them.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const card = '4242424242424242';
const spacedCard = '3782 822463 10005';
const ssn = '536-22-8416';
const street = '12 Rue des Lilas Apt 4';

describe('redaction at write time', () => {
  it('stores events, requests, outputs and reasons without secrets or personal data', async () => {
    const token = `ldg_test_${randomBytes(12).toString('hex')}`;
    // The provider echoes the Authorization header and the request body back; refuses one account.
    const sink = await new Sink((delivery) =>
      delivery.path === '/notify'
        ? { status: 400, body: JSON.stringify({ error: { code: 'bad_recipient', message: `rejected ${delivery.authorization ?? ''} for ${delivery.body}` } }) }
        : { status: 200, body: JSON.stringify({ id: 'obj_1', seen: delivery.authorization, echo: JSON.parse(delivery.body) as unknown }) },
    ).start();
    cleanups.push(() => sink.close());
    const steps = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}", memo: "{{ event.data.note }}" }
    - id: notify
      call: ledger.notify.send
      with: { to: "{{ event.data.account }}", text: "{{ 'card ' & event.data.card & ' ssn ' & event.data.ssn }}" }`;
    const engine = await startTestEngine({
      integrations: {
        payments: ledgerIntegration({ name: 'payments', origin: sink.origin, steps, policy: '    retry: { maxAttempts: 1 }', extra: '  redact:\n    - event.data.customer.address\n' }),
      },
      env: { LEDGER_TOKEN: token, LEDGER_WEBHOOK_SECRET: 'whsec_test_redaction' },
      personalData: [card, spacedCard, ssn, street],
    });
    cleanups.push(() => engine.close());

    const [accepted] = await engine.executor.submit([
      {
        integration: 'payments',
        eventKey: 'evt_pii',
        payload: { id: 'evt_pii', data: { account: 'acct_1', amount: 990, note: `paid with ${spacedCard}`, card, ssn, customer: { name: 'Ada', address: { line1: street } } } },
      },
    ]);
    await engine.executor.drain();
    const runId = accepted!.runId;

    // Events are redacted when accepted and steps read the stored event, so what a run sends is
    // the same on its first attempt and after a restart — and a card number never leaves.
    expect(JSON.parse(sink.deliveries[0]!.body)).toEqual({ account: 'acct_1', amount: 990, memo: 'paid with [redacted:card]' });

    const payload = (await engine.store.getPayload(runId)) as { data: Record<string, unknown> };
    expect(payload.data.card).toMatch(/^\[redacted/);
    expect(payload.data.ssn).toMatch(/^\[redacted/);
    expect(payload.data.note).toBe('paid with [redacted:card]');
    expect(payload.data.customer).toEqual({ name: 'Ada', address: '[redacted]' });
    expect(payload.data.account).toBe('acct_1');

    const steps2 = await engine.store.getSteps(runId);
    const output = steps2[0]!.output as { seen: string; echo: { memo: string } };
    expect(output.seen).toBe('Bearer [redacted]');
    expect(output.echo.memo).toBe('paid with [redacted:card]');

    const run = await engine.store.getRun(runId);
    expect(run?.status).toBe('dead');
    expect(run?.errorCode).toBe('PB_HTTP_CLIENT_ERROR');
    const stored = JSON.stringify({ payload, steps: steps2, attempts: await engine.store.getAttempts(runId), run });
    for (const value of [token, card, spacedCard, ssn, street]) expect(stored).not.toContain(value);
    // Step 2 read the stored event as well.
    expect(JSON.parse(sink.deliveries[1]!.body)).toEqual({ to: 'acct_1', text: 'card [redacted:card] ssn [redacted:ssn]' });
    expect(engine.logger.text()).not.toContain(token);
  });
});
