#!/usr/bin/env node
// End-to-end throughput of the executor: events accepted durably into the SQLite state store and
// run through a three-step integration against a local sink, beside a bare loop that makes the
// same three HTTP calls with undici and one SQLite insert per event. Build first (`npx tsc -p
// tsconfig.json`), then
//
//   node bench/executor.mjs [--events N] [--warmup N] [--rounds N] [--concurrency N] [--batch N]
//                           [--cpu-prof-dir DIR]
//
// prints JSON { patchbay, baseline, ratios, rounds, settings } on stdout (`npm run bench` runs it
// through bench/run.mjs). With --cpu-prof-dir, each child writes DIR/<side>-<round>.cpuprofile.
//
// Processes: this one only orchestrates. The sink (a keep-alive node:http server on 127.0.0.1:0)
// runs in a child of its own so it never shares the measured event loop, and every round of each
// side runs in a fresh child, so each side's peak RSS is its own and one side's garbage cannot
// slow the other. Rounds alternate which side goes first; medians over rounds are reported.
//
// Both sides see the same arrivals: events come in batches of `batch` (a webhook ingress under
// load, whose concurrent requests share one commit) as long as fewer than 2 × `concurrency` are
// waiting or running, and at most `concurrency` events are in flight. An event's latency runs from
// the moment its batch is handed over to the moment its last write is committed.
//
// Durability, as each side ships: patchbay keeps its defaults (WAL; a submitted batch's events
// and runs committed with synchronous = FULL, one fsync per batch, so an acknowledged event
// survives a power cut; each step's record (an attempt row with the redacted request and
// response, the step's output, the run's progress) in group commits with synchronous = NORMAL).
// The baseline uses WAL with synchronous = NORMAL and one autocommit INSERT per event after its
// three calls: no fsync per commit (SQLite's usual fast setting), no retries, no resume, no audit
// trail. It is the floor a hand-written loop would reach, not an equivalent of the engine.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median, percentile, positiveIntegers, round } from './stats.mjs';

const SELF = fileURLToPath(import.meta.url);
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(REPO_ROOT, 'dist');
const LEDGER_PROVIDERS = join(REPO_ROOT, 'test', 'fixtures', 'executor', 'providers');

/** The whole run (every round of both sides) is abandoned after this long. */
const RUN_LIMIT_MS = 110_000;
/** One side's child (start-up, warm-up, measured phase, checks) is killed after this long. */
const CHILD_LIMIT_MS = 40_000;
/** A phase still running after this long stops submitting and is measured on what finished. */
const PHASE_LIMIT_MS = 20_000;
/** How long the measured phase may take to finish the runs it has in flight at its limit. */
const DRAIN_LIMIT_MS = 5_000;

const INTEGRATION = 'bench-ledger';
const TOKEN_ENV = 'PATCHBAY_BENCH_LEDGER_TOKEN';
const WEBHOOK_SECRET_ENV = 'PATCHBAY_BENCH_LEDGER_WEBHOOK_SECRET';
/** The engine's HttpClient keeps this many connections per origin (engine/http/client.ts); the baseline's pool matches it. */
const CONNECTIONS_PER_ORIGIN = 32;

// The three steps, each mapping a field of the event or of the previous step's output.
const STEPS = `    - id: record
      call: ledger.entries.create
      with: { account: "{{ event.data.account }}", amount: "{{ event.data.amount }}" }
    - id: notify
      call: ledger.notify.send
      with: { to: "{{ event.data.account }}", text: "{{ 'entry ' & steps.record.output.id }}" }
    - id: audit
      call: ledger.audit.write
      with: { ref: "{{ event.id }}", detail: "{{ steps.notify.output.id }}" }`;

function integrationYaml(origin, concurrency) {
  const host = new URL(origin).host;
  return `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: ${INTEGRATION}
spec:
  connections:
    ledger:
      provider: ledger
      baseUrl: ${origin}
      allowedHosts: [ "${host}" ]
      allowPrivateAddresses: [ 127.0.0.1/32 ]
      auth: { type: bearer, token: { env: ${TOKEN_ENV} } }
      webhookSecrets: [ { env: ${WEBHOOK_SECRET_ENV} } ]
  trigger:
    webhook: { connection: ledger, events: [ "*" ] }
  steps:
${STEPS}
  policy:
    concurrency: { limit: ${concurrency} }
`;
}

/** The event number `index` of a phase: a small provider event with an id, like Stripe's. */
function makeEvent(prefix, index) {
  return { id: `evt_${prefix}_${index}`, type: 'entry.requested', data: { account: `acct_${index % 97}`, amount: index + 1 } };
}

// ---------------------------------------------------------------------------------------------
// The sink: answers every POST with a small JSON object after reading its body, and counts what
// it received so the orchestrator can check each side made exactly the calls it should.

function serveSink() {
  let stats = newStats();
  let counter = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      stats.requests += 1;
      const key = req.headers['idempotency-key'];
      if (typeof key === 'string') stats.keys.add(key);
      if (req.headers.authorization?.startsWith('Bearer ')) stats.withBearer += 1;
      counter += 1;
      const body = JSON.stringify({ id: `obj_${counter}`, object: 'entry', status: 'ok' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  process.on('message', (message) => {
    if (message?.type === 'stats') {
      const { keys, ...rest } = stats;
      process.send({ type: 'stats', stats: { ...rest, distinctKeys: keys.size } });
      stats = newStats();
    }
  });
  server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
}

function newStats() {
  return { requests: 0, withBearer: 0, keys: new Set() };
}

// ---------------------------------------------------------------------------------------------
// What both sides share: arrivals, completion tracking, latency and the phase's measurements.

/**
 * Feeds `events` to `submit` in batches of `batch`, whenever fewer than `backlogCap` events are
 * waiting or running, and waits for all of them to settle (submitting stops at the phase limit;
 * runs in flight then get DRAIN_LIMIT_MS more). `submit` resolves to one id per event;
 * `tracker.settle(id)` must be called when an event has finished. Resolves to the phase's
 * figures: events/s from the first submit to the last settle, latency percentiles from an event's
 * hand-over to its settle, and CPU per finished event.
 */
async function runPhase({ events, batch, backlogCap, submit, tracker, limitMs = PHASE_LIMIT_MS }) {
  tracker.reset();
  const cpuBefore = process.cpuUsage();
  const begin = performance.now();
  const stopSubmittingAt = begin + limitMs;
  const handedAt = new Map();
  let submitted = 0;
  while (submitted < events.length && performance.now() < stopSubmittingAt) {
    if (submitted - tracker.settledCount >= backlogCap) {
      await tracker.nextSettle(stopSubmittingAt);
      continue;
    }
    const slice = events.slice(submitted, submitted + batch);
    const at = performance.now();
    const ids = await submit(slice);
    for (const id of ids) handedAt.set(id, at);
    submitted += slice.length;
  }
  const drainUntil = performance.now() + DRAIN_LIMIT_MS;
  while (tracker.settledCount < submitted && performance.now() < drainUntil) await tracker.nextSettle(drainUntil);
  const end = tracker.settledCount > 0 ? tracker.lastSettleAt : performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  const latencies = [];
  for (const [id, at] of handedAt) {
    const settledAt = tracker.settledAt.get(id);
    if (settledAt !== undefined) latencies.push(settledAt - at);
  }
  latencies.sort((a, b) => a - b);
  const finished = latencies.length;
  return {
    events: events.length,
    submitted,
    finished,
    failed: tracker.failed,
    complete: finished === events.length && tracker.failed === 0,
    wallMs: round(end - begin, 1),
    eventsPerSecond: round((finished * 1000) / (end - begin), 0),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    maxMs: round(latencies[latencies.length - 1] ?? Number.NaN, 2),
    cpuUsPerEvent: round((cpu.user + cpu.system) / Math.max(1, finished), 1),
  };
}

/** Counts settled events by id and lets the producer wait for the next one. */
class SettleTracker {
  settledAt = new Map();
  settledCount = 0;
  failed = 0;
  lastSettleAt = 0;
  waiters = [];

  reset() {
    this.settledAt = new Map();
    this.settledCount = 0;
    this.failed = 0;
  }

  settle(id, ok = true) {
    const at = performance.now();
    if (ok) {
      this.settledAt.set(id, at);
    } else {
      this.failed += 1;
    }
    this.settledCount += 1;
    this.lastSettleAt = at;
    for (const done of this.waiters.splice(0)) done();
  }

  /** Resolves at the next settle, or at `untilMs` (performance time) at the latest. */
  nextSettle(untilMs) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, untilMs - performance.now()));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }
}

/** Resident set size now, in MiB. */
function rssMiB() {
  return round(process.memoryUsage().rss / 2 ** 20, 1);
}

/** Peak resident set size of this process so far, in MiB (the kernel's high-water mark). */
function peakRssMiB() {
  // maxRSS is in kibibytes.
  return round(process.resourceUsage().maxRSS / 1024, 1);
}

// ---------------------------------------------------------------------------------------------
// patchbay: the engine in this process, built the way the daemon builds it.

async function runPatchbay({ origin, dir, events, warmup, concurrency, batch }) {
  const { validateManifests } = await import(pathToFileURL(join(DIST, 'manifest', 'validate.js')).href);
  const { buildExecutionPlan } = await import(pathToFileURL(join(DIST, 'executor', 'plan.js')).href);
  const { Executor } = await import(pathToFileURL(join(DIST, 'executor', 'executor.js')).href);
  const { openSqliteStore } = await import(pathToFileURL(join(DIST, 'store', 'sqlite', 'sqlite-store.js')).href);
  const { SecretSet } = await import(pathToFileURL(join(DIST, 'lib', 'secrets.js')).href);

  mkdirSync(join(dir, 'integrations'), { recursive: true });
  writeFileSync(join(dir, 'integrations', `${INTEGRATION}.yaml`), integrationYaml(origin, concurrency));
  const validation = await validateManifests({ paths: [join(dir, 'integrations')], providerDirs: [LEDGER_PROVIDERS], bundledProviders: false, cwd: dir });
  const errors = validation.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`the bench integration does not validate:\n${errors.map((e) => `${e.code} ${e.message}`).join('\n')}`);
  const plan = await buildExecutionPlan({ integrations: validation.integrations, registry: validation.registry, secrets: new SecretSet({ env: process.env }) });
  if (plan.broken.size > 0) throw new Error(`the bench integration cannot run: ${[...plan.broken.values()].map((e) => e.message).join('; ')}`);
  const store = await openSqliteStore(join(dir, 'state.db'));
  const tracker = new SettleTracker();
  const outcomes = {};
  const executor = new Executor({
    store,
    plan,
    pollIntervalMs: 5,
    onRunSettled: ({ runId, outcome }) => {
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      // A run waiting on a retry timer or given back comes back later: it has not finished yet.
      if (outcome === 'succeeded' || outcome === 'dead' || outcome === 'lost') tracker.settle(runId, outcome === 'succeeded');
    },
  });
  const submit = async (slice) => {
    const accepted = await executor.submit(slice.map((event) => ({ integration: INTEGRATION, eventKey: event.id, type: event.type, source: 'webhook', payload: event })));
    return accepted.map((a) => a.runId);
  };
  const startRssMiB = rssMiB();
  executor.start();
  try {
    const backlogCap = 2 * concurrency;
    const warm = await runPhase({ events: Array.from({ length: warmup }, (_, i) => makeEvent('warm', i)), batch, backlogCap, submit, tracker });
    if (!warm.complete) throw new Error(`patchbay warm-up did not finish: ${JSON.stringify({ ...warm, outcomes })}`);
    const measured = await runPhase({ events: Array.from({ length: events }, (_, i) => makeEvent('run', i)), batch, backlogCap, submit, tracker });
    await executor.stop(DRAIN_LIMIT_MS);
    const counts = await store.countRuns();
    return { ...measured, peakRssMiB: peakRssMiB(), startRssMiB, outcomes, storeCounts: counts };
  } finally {
    await executor.stop(1_000);
    await plan.close();
    await store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// baseline: what a hand-written integration would do, with the same libraries.

async function runBaseline({ origin, dir, events, warmup, concurrency, batch }) {
  const { Agent, request } = await import('undici');
  const { default: Database } = await import('better-sqlite3');
  const token = process.env[TOKEN_ENV];
  // The same pool shape as the engine's HttpClient.
  const agent = new Agent({ connections: CONNECTIONS_PER_ORIGIN, keepAliveTimeout: 4_000, pipelining: 1 });
  mkdirSync(dir, { recursive: true });
  const db = new Database(join(dir, 'baseline.db'));
  // WAL with synchronous = NORMAL: each insert is its own transaction, appended to the WAL and
  // not fsynced (fsyncs happen at checkpoints), which is SQLite's usual fast durable setting.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, event_key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
    received_at INTEGER NOT NULL, finished_at INTEGER NOT NULL, outputs TEXT NOT NULL)`);
  const insert = db.prepare('INSERT INTO events (event_key, payload, received_at, finished_at, outputs) VALUES (?, ?, ?, ?, ?)');

  const post = async (path, body, idempotencyKey) => {
    const response = await request(`${origin}${path}`, {
      method: 'POST',
      dispatcher: agent,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: `Bearer ${token}`,
        'idempotency-key': idempotencyKey,
      },
      body: JSON.stringify(body),
    });
    const parsed = await response.body.json();
    if (response.statusCode !== 200) throw new Error(`baseline: ${path} answered ${response.statusCode}`);
    return parsed;
  };
  const keyOf = (event, step) => `${INTEGRATION}:${event.id}:${step}`;
  const runEvent = async ({ event, receivedAt }) => {
    const record = await post('/entries', { account: event.data.account, amount: event.data.amount }, keyOf(event, 'record'));
    const notify = await post('/notify', { to: event.data.account, text: `entry ${record.id}` }, keyOf(event, 'notify'));
    const audit = await post('/audit', { ref: event.id, detail: notify.id }, keyOf(event, 'audit'));
    insert.run(event.id, JSON.stringify(event), receivedAt, Date.now(), JSON.stringify([record.id, notify.id, audit.id]));
  };

  const tracker = new SettleTracker();
  const queue = [];
  const idleWorkers = [];
  const wakeWorkers = () => {
    for (const resume of idleWorkers.splice(0)) resume();
  };
  let stopped = false;
  const submit = async (slice) => {
    const receivedAt = Date.now();
    for (const event of slice) queue.push({ event, receivedAt });
    wakeWorkers();
    return slice.map((event) => event.id);
  };
  // `concurrency` workers take events from the queue, one at a time each.
  const worker = async () => {
    while (!stopped) {
      const next = queue.shift();
      if (next === undefined) {
        await new Promise((resolve) => idleWorkers.push(resolve));
        continue;
      }
      let ok = true;
      try {
        await runEvent(next);
      } catch (error) {
        ok = false;
        process.stderr.write(`baseline: event ${next.event.id} failed: ${error.message}\n`);
      }
      tracker.settle(next.event.id, ok);
    }
  };
  const startRssMiB = rssMiB();
  const workers = Array.from({ length: concurrency }, worker);
  try {
    const backlogCap = 2 * concurrency;
    const warm = await runPhase({ events: Array.from({ length: warmup }, (_, i) => makeEvent('warm', i)), batch, backlogCap, submit, tracker });
    if (!warm.complete) throw new Error(`baseline warm-up did not finish: ${JSON.stringify(warm)}`);
    const measured = await runPhase({ events: Array.from({ length: events }, (_, i) => makeEvent('run', i)), batch, backlogCap, submit, tracker });
    const rows = db.prepare('SELECT COUNT(*) FROM events').pluck().get();
    return { ...measured, peakRssMiB: peakRssMiB(), startRssMiB, rows };
  } finally {
    stopped = true;
    queue.length = 0;
    wakeWorkers();
    await Promise.race([Promise.allSettled(workers), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    await agent.close();
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

function startSink() {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['--sink'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error('the bench sink did not start within 10 s'));
    }, 10_000);
    child.once('error', reject);
    child.once('message', (message) => {
      clearTimeout(timer);
      const stats = () =>
        new Promise((resolveStats) => {
          child.once('message', (reply) => resolveStats(reply.stats));
          child.send({ type: 'stats' });
        });
      resolve({ origin: `http://127.0.0.1:${message.port}`, stats, stop: () => child.kill() });
    });
  });
}

/** Runs one side in a fresh child; resolves to the JSON it printed. */
function runSide(side, options, env) {
  return new Promise((resolve, reject) => {
    const args = ['--side', side, '--origin', options.origin, '--dir', options.dir];
    for (const name of ['events', 'warmup', 'concurrency', 'batch']) args.push(`--${name}`, String(options[name]));
    const child = fork(SELF, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: options.execArgv ?? [] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_LIMIT_MS);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        const why = signal === 'SIGKILL' ? `killed after ${CHILD_LIMIT_MS / 1000} s` : `exited with ${signal ?? `status ${code}`}`;
        reject(new Error(`bench/executor.mjs --side ${side} ${why}\n${stderr.trim().split('\n').slice(-20).join('\n')}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new Error(`bench/executor.mjs --side ${side} printed no JSON:\n${stdout.slice(0, 2000)}\n${stderr.slice(-2000)}`));
      }
    });
  });
}

/**
 * Measures both sides `rounds` times against one sink, alternating which goes first, each round
 * of each side in a fresh child process, and checks every round (all events finished, the sink saw
 * exactly three calls with a bearer token and a distinct idempotency key per event, the store or
 * the baseline's table holds every event); a round that fails a check rejects the whole run.
 * Temporary folders are removed before it settles. Gives up (exit 1) after RUN_LIMIT_MS.
 * @param {{ events?: number, warmup?: number, rounds?: number, concurrency?: number, batch?: number, cpuProfDir?: string }} options
 *   measured events per round (default 5,000) after `warmup` untimed ones (default 1,000), rounds
 *   per side (default 5), runs or calls in flight (default 64: the integration's
 *   `policy.concurrency.limit` and the baseline's workers), events per submitted batch (default
 *   100), and a folder for a `--cpu-prof` profile of each child (`<side>-<round>.cpuprofile`).
 * @returns the medians of each side, their ratios (patchbay ÷ baseline), every round, and the settings used.
 */
export async function runExecutorBench({ events = 5_000, warmup = 1_000, rounds = 5, concurrency = 64, batch = 100, cpuProfDir } = {}) {
  const root = mkdtempSync(join(os.tmpdir(), 'patchbay-bench-exec-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    // The children stop by themselves when their IPC channel closes with this process.
    process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
  }
  const runDeadline = setTimeout(() => {
    process.stderr.write(`executor bench: still running after ${RUN_LIMIT_MS / 1000} s; giving up\n`);
    process.exit(1);
  }, RUN_LIMIT_MS);
  runDeadline.unref();

  const sink = await startSink();
  // A token and a webhook secret made for this run, passed to the sides through their environment.
  const env = { ...process.env, [TOKEN_ENV]: `ldg_bench_${randomBytes(18).toString('hex')}`, [WEBHOOK_SECRET_ENV]: `whsec_bench_${randomBytes(12).toString('hex')}` };
  const samples = { patchbay: [], baseline: [] };
  try {
    for (let round = 0; round < rounds; round += 1) {
      const order = round % 2 === 0 ? ['patchbay', 'baseline'] : ['baseline', 'patchbay'];
      for (const side of order) {
        const dir = join(root, `${side}-${round}`);
        const execArgv = cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir, '--cpu-prof-name', `${side}-${round}.cpuprofile`];
        const result = await runSide(side, { origin: sink.origin, dir, events, warmup, concurrency, batch, execArgv }, env);
        const received = await sink.stats();
        checkSide(side, result, received, events + warmup);
        samples[side].push({ ...result, sink: { requests: received.requests, redeliveries: received.requests - received.distinctKeys } });
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    clearTimeout(runDeadline);
    sink.stop();
    cleanup();
  }
  const summary = (list) => ({
    eventsPerSecond: median(list.map((s) => s.eventsPerSecond)),
    p50Ms: median(list.map((s) => s.p50Ms)),
    p99Ms: median(list.map((s) => s.p99Ms)),
    peakRssMiB: median(list.map((s) => s.peakRssMiB)),
    startRssMiB: median(list.map((s) => s.startRssMiB)),
    cpuUsPerEvent: median(list.map((s) => s.cpuUsPerEvent)),
  });
  const patchbay = summary(samples.patchbay);
  const baseline = summary(samples.baseline);
  const ratios = Object.fromEntries(Object.keys(patchbay).map((k) => [k, round(patchbay[k] / baseline[k], 3)]));
  return {
    patchbay,
    baseline,
    ratios,
    rounds: samples,
    settings: { events, warmup, rounds, concurrency, batch, backlogCap: 2 * concurrency, connectionsPerOrigin: CONNECTIONS_PER_ORIGIN, tmpdir: os.tmpdir() },
  };
}

/** Refuses a round whose figures would not mean what they claim: unfinished events, missing or extra calls. */
function checkSide(side, result, received, totalEvents) {
  const problems = [];
  if (!result.complete) problems.push(`${result.finished} of ${result.events} measured events finished (${result.failed} failed)`);
  if (received.requests < 3 * totalEvents) problems.push(`the sink received ${received.requests} requests, expected ${3 * totalEvents}`);
  if (received.distinctKeys !== 3 * totalEvents) problems.push(`the sink saw ${received.distinctKeys} idempotency keys, expected ${3 * totalEvents}`);
  if (received.withBearer !== received.requests) problems.push(`${received.requests - received.withBearer} requests had no bearer token`);
  if (side === 'patchbay') {
    const succeeded = result.storeCounts.find((c) => c.status === 'succeeded')?.count ?? 0;
    if (succeeded !== totalEvents) problems.push(`the store holds ${succeeded} succeeded runs, expected ${totalEvents}: ${JSON.stringify(result.storeCounts)}`);
  } else if (result.rows !== totalEvents) {
    problems.push(`the baseline database holds ${result.rows} rows, expected ${totalEvents}`);
  }
  if (problems.length > 0) throw new Error(`executor bench, ${side}: ${problems.join('; ')}`);
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const { values } = parseArgs({
    options: {
      sink: { type: 'boolean' },
      side: { type: 'string' },
      origin: { type: 'string' },
      dir: { type: 'string' },
      events: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      'cpu-prof-dir': { type: 'string' },
    },
  });
  if (values.sink) {
    serveSink();
  } else if (values.side !== undefined) {
    // A side: stops by itself if the orchestrator goes away or the side overruns.
    process.on('disconnect', () => process.exit(1));
    setTimeout(() => {
      process.stderr.write(`executor bench: side ${values.side} still running after ${CHILD_LIMIT_MS / 1000} s\n`);
      process.exit(1);
    }, CHILD_LIMIT_MS).unref();
    const options = { origin: values.origin, dir: values.dir, events: 5_000, warmup: 1_000, concurrency: 64, batch: 100, ...positiveIntegers(values, ['events', 'warmup', 'concurrency', 'batch']) };
    const run = values.side === 'patchbay' ? runPatchbay : values.side === 'baseline' ? runBaseline : undefined;
    if (run === undefined) {
      process.stderr.write(`--side must be patchbay or baseline, not "${values.side}"\n`);
      process.exit(2);
    }
    const result = await run(options);
    // Leave without waiting for keep-alive sockets or the IPC channel, once the JSON is out.
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  } else {
    const options = positiveIntegers(values, ['events', 'warmup', 'rounds', 'concurrency', 'batch']);
    if (values['cpu-prof-dir'] !== undefined) options.cpuProfDir = values['cpu-prof-dir'];
    const result = await runExecutorBench(options);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}
