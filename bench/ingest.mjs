#!/usr/bin/env node
// Webhook ingest of the real daemon: `patchbay serve` as a child process receives signed Stripe
// deliveries from autocannon on loopback (verify the Stripe-Signature on the raw body, commit the
// event durably, answer 202), beside bare Node.js `http` servers that read the body, parse the
// JSON and insert it into SQLite with the same durability (WAL, synchronous = FULL), in the same
// run. Build first (`npx tsc -p tsconfig.json`), then
//
//   node bench/ingest.mjs [--duration S] [--warmup S] [--rounds N] [--connections N] [--cpu-prof-dir DIR]
//                         [--sides patchbay,baseline,batched]
//
// prints JSON { patchbay, baseline, batched, ratios, rounds, settings } on stdout (`npm run bench`
// runs it through bench/run.mjs). With --cpu-prof-dir the daemon writes DIR/patchbay-<round>.cpuprofile.
//
// Sides, each a fresh child process with a fresh database in every round:
// - patchbay: `node bin/patchbay.js serve` on one integration of the bundled `stripe` provider whose
//   connection points at a local sink (baseUrl, allowedHosts, allowPrivateAddresses). Its executor
//   runs the accepted events meanwhile, in the same process: one cheap step (customers.retrieve, a
//   GET the sink answers at once), paced by the provider's own rate limit (100 calls/s).
// - baseline: a bare node:http server, one INSERT in its own transaction per request, fsynced
//   (synchronous = FULL) before the answer.
// - batched: the same server, but the requests parsed within one event-loop turn share one
//   transaction and one fsync (what the daemon's store does with its group commit).
// Neither baseline verifies a signature or runs anything: that work is part of patchbay's cost.
//
// Load: autocannon in this process (it shares the machine with the server under test), the same
// connection count and the same signed bodies for every side of a round (event ids and the
// signature timestamp depend only on the round, phase and request number). A warm-up of `warmup`
// seconds comes first; its rows are counted once the requests cut off at its end have finished
// (at most one a connection more than its 2xx answers). The measured phase then sends a fixed
// number of requests, sized from the end of the warm-up's rate to last about `duration` seconds,
// so every one is answered and the rows it committed can be checked against its 2xx answers
// exactly. A round with a non-2xx answer, an error, a timeout, a duplicate or a row count that
// differs from the acknowledged requests fails the benchmark.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median, percentile, positiveIntegers, round } from './stats.mjs';

const SELF = fileURLToPath(import.meta.url);
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI_PATH = join(REPO_ROOT, 'bin', 'patchbay.js');

/** The whole run (every round of every side) is abandoned after this long. */
const RUN_LIMIT_MS = 300_000;
/** A child that has not printed its listening line by then fails the run. */
const START_LIMIT_MS = 20_000;
/** A child still running this long after SIGTERM is killed and the run fails. */
const STOP_LIMIT_MS = 15_000;
/** A phase may take this many times its planned duration (and at least 10 s more) before it is stopped and fails. */
const PHASE_OVERRUN = 3;

const INTEGRATION = 'bench-stripe-ingest';
const API_KEY_ENV = 'PATCHBAY_BENCH_STRIPE_API_KEY';
const WEBHOOK_SECRET_ENV = 'PATCHBAY_BENCH_STRIPE_WEBHOOK_SECRET';
const SIDES = ['patchbay', 'baseline', 'batched'];

/** Children running now, killed if the run gives up. */
const liveChildren = new Set();

function integrationYaml(sinkOrigin) {
  const host = new URL(sinkOrigin).host;
  return `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: ${INTEGRATION}
spec:
  connections:
    stripe:
      provider: stripe
      baseUrl: ${sinkOrigin}
      allowedHosts: [ "${host}" ]
      allowPrivateAddresses: [ 127.0.0.1/32 ]
      auth: { type: bearer, token: { env: ${API_KEY_ENV} } }
      webhookSecrets: [ { env: ${WEBHOOK_SECRET_ENV} } ]
  trigger:
    webhook: { connection: stripe, events: [ payment_intent.succeeded ] }
  steps:
    - id: customer
      call: stripe.customers.retrieve
      with: { customer: "{{ event.data.object.customer }}" }
`;
}

// ---------------------------------------------------------------------------------------------
// Signed deliveries: a Stripe `payment_intent.succeeded` event (about 1 KB) and its Stripe-Signature.

/**
 * The deliveries of one phase, the same for every side: `get(n)` is the n-th body (a Buffer, its
 * id `evt_<tag>_<n>`) and its Stripe-Signature (timestamp fixed for the phase). `prepare(count)`
 * signs them ahead of the phase, so the load generator only copies bytes while it is measured.
 */
class SignedDeliveries {
  constructor(tag, secret, timestampS) {
    this.tag = tag;
    this.secret = secret;
    this.timestampS = timestampS;
    this.items = [];
  }

  prepare(count) {
    while (this.items.length < count) this.items.push(this.sign(this.items.length));
  }

  get(n) {
    this.prepare(n + 1);
    return this.items[n];
  }

  sign(n) {
    const { tag, timestampS } = this;
    const body = Buffer.from(JSON.stringify({
      id: `evt_${tag}_${n}`,
      object: 'event',
      api_version: '2023-08-16',
      created: timestampS,
      data: {
        object: {
          id: `pi_${tag}_${n}`,
          object: 'payment_intent',
          amount: 1_000 + (n % 9_000),
          amount_received: 1_000 + (n % 9_000),
          capture_method: 'automatic',
          created: timestampS,
          currency: 'eur',
          customer: `cus_bench_${n % 500}`,
          description: `Order ${n}`,
          latest_charge: `ch_${tag}_${n}`,
          livemode: false,
          metadata: { order_id: `ord_${n}`, first_name: 'Jane', last_name: 'Doe', marketing_consent: 'true' },
          payment_method: `pm_${tag}_${n}`,
          payment_method_types: ['card'],
          receipt_email: `payer${n % 500}@example.com`,
          shipping: { name: 'Jane Doe', phone: '+15555550123', address: { line1: '123 Example Street', city: 'Springfield', state: 'IL', postal_code: '62701', country: 'US' } },
          status: 'succeeded',
        },
      },
      livemode: false,
      pending_webhooks: 1,
      request: { id: `req_${tag}_${n}`, idempotency_key: null },
      type: 'payment_intent.succeeded',
    }));
    const mac = createHmac('sha256', this.secret).update(`${timestampS}.`).update(body).digest('hex');
    return { body, signature: `t=${timestampS},v1=${mac}` };
  }
}

// ---------------------------------------------------------------------------------------------
// The sink the daemon's step calls: answers every request at once with a small Stripe customer.

function serveSink() {
  const answer = JSON.stringify({ id: 'cus_bench', object: 'customer', email: 'payer@example.com', name: 'Jane Doe', livemode: false, metadata: {} });
  let requests = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests += 1;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ msg: 'listening', port: server.address().port })}\n`));
  process.on('SIGTERM', () => {
    process.stderr.write(`sink: ${requests} requests\n`);
    process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// The bare baselines: node:http + JSON.parse + better-sqlite3, WAL, synchronous = FULL.

async function serveBaseline({ mode, db: file }) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // FULL: a commit fsyncs the WAL before it returns, as the daemon's store does for accepted events.
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, event_key TEXT NOT NULL UNIQUE, type TEXT,
    payload TEXT NOT NULL, received_at INTEGER NOT NULL)`);
  const insert = db.prepare('INSERT INTO events (event_key, type, payload, received_at) VALUES (?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING');
  const insertAll = db.transaction((items) => items.map((item) => insert.run(item.key, item.type, item.text, item.receivedAt).changes));

  const answer = (res, status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const respond = (res, changes) => answer(res, changes === 1 ? 202 : 200, { accepted: changes === 1 });
  // batched: the requests parsed in one event-loop turn, committed together after it.
  let pending = [];
  const flush = () => {
    const items = pending;
    pending = [];
    let results;
    try {
      results = insertAll(items);
    } catch (error) {
      for (const item of items) answer(item.res, 503, { error: String(error.message) });
      return;
    }
    items.forEach((item, index) => respond(item.res, results[index]));
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let event;
      try {
        event = JSON.parse(text);
      } catch {
        answer(res, 400, { error: 'malformed JSON' });
        return;
      }
      if (typeof event?.id !== 'string') {
        answer(res, 400, { error: 'no event id' });
        return;
      }
      const item = { key: event.id, type: typeof event.type === 'string' ? event.type : null, text, receivedAt: Date.now(), res };
      if (mode === 'batched') {
        pending.push(item);
        if (pending.length === 1) setImmediate(flush);
        return;
      }
      let changes;
      try {
        changes = insert.run(item.key, item.type, item.text, item.receivedAt).changes;
      } catch (error) {
        answer(res, 503, { error: String(error.message) });
        return;
      }
      respond(res, changes);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ msg: 'listening', port: server.address().port })}\n`));
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    db.close();
    process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// Children: started, waited for, stopped.

/**
 * Spawns `node <args>` and resolves once it prints a JSON line with "msg":"listening" and its
 * "port" on stdout (rejects with its output if it exits first or takes over START_LIMIT_MS).
 * `stop()` sends SIGTERM and resolves with the exit code once it exits (SIGKILL and a rejection
 * after STOP_LIMIT_MS).
 */
function startChild(label, args, { env = process.env, cwd = REPO_ROOT, execArgv = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...execArgv, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    let stdout = '';
    let stderr = '';
    let listening = false;
    const exited = new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
    const output = () => `--- stdout ---\n${stdout.slice(-3000)}\n--- stderr ---\n${stderr.slice(-3000)}`;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start within ${START_LIMIT_MS / 1000} s\n${output()}`));
    }, START_LIMIT_MS);
    child.once('error', reject);
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-20_000);
    });
    child.stdout.on('data', (chunk) => {
      // Kept short: the daemon logs a line now and then for as long as it runs.
      stdout = (stdout + chunk).slice(-20_000);
      if (listening) return;
      for (const line of stdout.split('\n')) {
        if (!line.includes('"msg":"listening"')) continue;
        listening = true;
        clearTimeout(timer);
        const { port } = JSON.parse(line);
        resolve({
          pid: child.pid,
          origin: `http://127.0.0.1:${port}`,
          output,
          stop: async () => {
            if (child.exitCode !== null || child.signalCode !== null) return exited;
            child.kill('SIGTERM');
            let killer;
            const limit = new Promise((resolveLimit) => {
              killer = setTimeout(() => {
                child.kill('SIGKILL');
                resolveLimit(undefined);
              }, STOP_LIMIT_MS);
            });
            const result = await Promise.race([exited, limit]);
            clearTimeout(killer);
            if (result === undefined) throw new Error(`${label} did not stop within ${STOP_LIMIT_MS / 1000} s of SIGTERM\n${output()}`);
            return result;
          },
          kill: () => child.kill('SIGKILL'),
        });
        return;
      }
    });
    exited.then(({ code, signal }) => {
      if (listening) return;
      clearTimeout(timer);
      reject(new Error(`${label} exited with ${signal ?? `status ${code}`} before listening\n${output()}`));
    });
  });
}

/** User + system CPU time of a process so far, in ms (Linux /proc; undefined elsewhere). */
function processCpuMs(pid) {
  const file = `/proc/${pid}/stat`;
  if (!existsSync(file)) return undefined;
  const stat = readFileSync(file, 'utf8');
  // Fields after the command name (which may hold spaces, inside parentheses); utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Clock ticks (USER_HZ), 100 on every Linux Node runs on.
  const ticksPerSecond = 100;
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

// ---------------------------------------------------------------------------------------------
// Load.

/**
 * Sends deliveries (`deliveries.get(n)` for n = 0, 1, …) over `connections` keep-alive
 * connections to `url`: exactly `amount` of them (each answered before this resolves), or as many
 * as fit in `durationS` seconds (those still in flight at the end are dropped unanswered). Resolves
 * to what came back: status counts, errors and timeouts, the rate of 2xx answers from the first
 * request to the last answer (and over the last third of that time), and latency percentiles
 * computed from every answer, and the CPU time the process `serverPid` used meanwhile. Stopped
 * (and marked `overran`) after `limitMs`.
 */
async function fire({ autocannon, url, amount, durationS, connections, deliveries, limitMs, serverPid }) {
  // Autocannon builds one request more per connection than it sends.
  if (amount !== undefined) deliveries.prepare(amount + connections);
  const serverCpuBefore = processCpuMs(serverPid);
  let next = 0;
  let generatorMs = 0;
  const latencies = [];
  const answeredAt = [];
  let lastAnswerAt = 0;
  const begin = performance.now();
  const cpuBefore = process.cpuUsage();
  let overran = false;
  const instance = autocannon({
    url,
    connections,
    pipelining: 1,
    ...(amount === undefined ? { duration: durationS } : { amount }),
    timeout: 10,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{
      setupRequest: (request) => {
        const at = performance.now();
        const { body, signature } = deliveries.get(next);
        next += 1;
        generatorMs += performance.now() - at;
        request.body = body;
        request.headers = { ...request.headers, 'stripe-signature': signature };
        return request;
      },
    }],
  });
  instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
    latencies.push(responseTimeMs);
    lastAnswerAt = performance.now();
    answeredAt.push(lastAnswerAt);
  });
  const timer = setTimeout(() => {
    overran = true;
    instance.stop();
  }, limitMs);
  const result = await instance;
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpuBefore);
  const serverCpuAfter = processCpuMs(serverPid);
  const elapsedMs = (lastAnswerAt || performance.now()) - begin;
  const lastThirdFrom = begin + (2 * elapsedMs) / 3;
  const lastThird = answeredAt.length - answeredAt.findIndex((at) => at >= lastThirdFrom);
  latencies.sort((a, b) => a - b);
  const ok = result['2xx'];
  return {
    amount,
    answered: latencies.length,
    statusCounts: Object.fromEntries(Object.entries(result.statusCodeStats).map(([status, { count }]) => [status, count])),
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    overran,
    built: next,
    elapsedMs: round(elapsedMs, 1),
    requestsPerSecond: round((ok * 1000) / elapsedMs, 0),
    // The rate over the last third of the time: the warm-up's tells how fast warm code goes.
    tailRequestsPerSecond: round((lastThird * 3000) / Math.max(1, elapsedMs), 0),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    maxMs: round(latencies[latencies.length - 1] ?? Number.NaN, 2),
    loadCpuPercent: round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 100, 0),
    serverCpuMs: serverCpuBefore === undefined || serverCpuAfter === undefined ? undefined : serverCpuAfter - serverCpuBefore,
    generatorUsPerRequest: round((generatorMs * 1000) / Math.max(1, next), 1),
  };
}

// ---------------------------------------------------------------------------------------------
// One side for one round.

async function runSideRound(side, roundIndex, deliveries, { root, sinkOrigin, env, connections, warmupS, durationS, autocannon, cpuProfDir }) {
  const dir = join(root, `${side}-${roundIndex}`);
  mkdirSync(dir, { recursive: true });
  let server;
  let dbFile;
  if (side === 'patchbay') {
    mkdirSync(join(dir, 'integrations'));
    mkdirSync(join(dir, 'providers'));
    writeFileSync(join(dir, 'integrations', `${INTEGRATION}.yaml`), integrationYaml(sinkOrigin));
    dbFile = join(dir, 'state.db');
    const execArgv = cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir, '--cpu-prof-name', `patchbay-${roundIndex}.cpuprofile`];
    server = await startChild('patchbay serve', [CLI_PATH, 'serve', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--log-level', 'info',
      '--inbound-rate', '1000000/s', '--state', dbFile, '--providers', join(dir, 'providers'), join(dir, 'integrations')], { env, cwd: dir, execArgv });
  } else {
    dbFile = join(dir, 'baseline.db');
    server = await startChild(`baseline (${side})`, [SELF, '--serve-baseline', '--mode', side === 'batched' ? 'batched' : 'single', '--db', dbFile], { cwd: dir });
  }
  const url = side === 'patchbay' ? `${server.origin}/hooks/${INTEGRATION}` : `${server.origin}/events`;
  let warm;
  let measured;
  let rowsAfterWarmup;
  try {
    warm = await fire({ autocannon, url, durationS: warmupS, connections, deliveries: deliveries.warm, limitMs: warmupS * 1000 + 10_000, serverPid: server.pid });
    checkPhase(side, roundIndex, 'warm-up', warm);
    // The requests cut off at the end of the warm-up may still be committed: let them finish, then count.
    await new Promise((resolve) => setTimeout(resolve, 500));
    rowsAfterWarmup = (await countCommitted(side, dbFile)).rows;
    if (rowsAfterWarmup < warm.ok || rowsAfterWarmup > warm.ok + connections) {
      throw new Error(`ingest bench, ${side} round ${roundIndex}: ${warm.ok} warm-up deliveries acknowledged but ${rowsAfterWarmup} committed (at most ${connections} more were in flight)`);
    }
    // Sized from the rate at the end of the warm-up, so the measured phase lasts about durationS.
    const amount = Math.max(connections * 10, Math.round((warm.tailRequestsPerSecond * durationS)));
    measured = await fire({
      autocannon, url, amount, connections,
      deliveries: deliveries.measured,
      limitMs: Math.max(PHASE_OVERRUN * durationS * 1000, durationS * 1000 + 10_000),
      serverPid: server.pid,
    });
    checkPhase(side, roundIndex, 'measured phase', measured);
  } catch (error) {
    server.kill();
    throw error;
  }
  const exit = await server.stop();
  if (exit.code !== 0) throw new Error(`ingest bench, ${side} round ${roundIndex}: the server exited with ${exit.signal ?? `status ${exit.code}`} after SIGTERM\n${server.output()}`);
  const committed = await countCommitted(side, dbFile);
  const duplicates = (warm.statusCounts['200'] ?? 0) + (measured.statusCounts['200'] ?? 0);
  if (committed.rows - rowsAfterWarmup !== measured.ok || duplicates !== 0) {
    throw new Error(`ingest bench, ${side} round ${roundIndex}: ${measured.ok} deliveries acknowledged in the measured phase ` +
      `(${duplicates} as duplicates in the round), ${committed.rows - rowsAfterWarmup} committed`);
  }
  rmSync(dir, { recursive: true, force: true });
  const { statusCounts: _warmCounts, ...warmSummary } = warm;
  const cpuMs = measured.serverCpuMs;
  return {
    ...measured,
    serverCpuUsPerRequest: cpuMs === undefined ? undefined : round((cpuMs * 1000) / measured.ok, 1),
    serverCpuPercent: cpuMs === undefined ? undefined : round((cpuMs / measured.elapsedMs) * 100, 0),
    committed: { ...committed, warmup: rowsAfterWarmup, measured: committed.rows - rowsAfterWarmup },
    warmup: warmSummary,
  };
}

/** Refuses a phase whose figures would not mean what they claim. */
function checkPhase(side, roundIndex, phase, result) {
  const problems = [];
  if (result.overran) problems.push(`stopped after its time limit with ${result.answered} answered`);
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx answers ${JSON.stringify(result.statusCounts)}`);
  if (result.errors > 0) problems.push(`${result.errors} errors (${result.timeouts} timeouts)`);
  if (result.amount !== undefined && result.ok !== result.amount) problems.push(`${result.ok} 2xx answers for ${result.amount} requests`);
  if (problems.length > 0) throw new Error(`ingest bench, ${side} round ${roundIndex}, ${phase}: ${problems.join('; ')}`);
}

/** Rows committed: the daemon's runs (by status) or the baseline's events, read with a read-only connection. */
async function countCommitted(side, dbFile) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    if (side !== 'patchbay') return { rows: db.prepare('SELECT COUNT(*) FROM events').pluck().get() };
    const byStatus = Object.fromEntries(db.prepare('SELECT status, COUNT(*) AS n FROM runs GROUP BY status').raw().all());
    const rows = Object.values(byStatus).reduce((sum, n) => sum + n, 0);
    const events = db.prepare('SELECT COUNT(*) FROM events').pluck().get();
    if (events !== rows) throw new Error(`ingest bench: the state file holds ${events} events but ${rows} runs`);
    return { rows, runsByStatus: byStatus };
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

/**
 * Measures the three sides `rounds` times each, rotating which goes first, each round of each side
 * against a fresh server process and database, and checks every phase (see the module comment); a
 * failed check rejects the whole run. Temporary folders are removed before it settles; gives up
 * (exit 1) after RUN_LIMIT_MS.
 * @param {{ durationS?: number, warmupS?: number, rounds?: number, connections?: number, cpuProfDir?: string, sides?: string[] }} options
 *   planned seconds of each measured phase (default 10), seconds of warm-up before it (default
 *   3), rounds per side (default 3), autocannon connections (default 32), and a folder for a
 *   `--cpu-prof` profile of each daemon, and the sides to measure (default all three; patchbay alone to profile it).
 * @returns the medians of each side, the ratios patchbay ÷ baseline and patchbay ÷ batched, every round, and the settings used.
 */
export async function runIngestBench({ durationS = 10, warmupS = 3, rounds = 3, connections = 32, cpuProfDir, sides = SIDES } = {}) {
  const { default: autocannon } = await import('autocannon');
  const root = mkdtempSync(join(os.tmpdir(), 'patchbay-bench-ingest-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      for (const child of liveChildren) child.kill('SIGKILL');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  const runDeadline = setTimeout(() => {
    process.stderr.write(`ingest bench: still running after ${RUN_LIMIT_MS / 1000} s; giving up\n`);
    for (const child of liveChildren) child.kill('SIGKILL');
    process.exit(1);
  }, RUN_LIMIT_MS);
  runDeadline.unref();

  const secret = `whsec_bench_${randomBytes(24).toString('hex')}`;
  const env = { ...process.env, NO_COLOR: '1', [API_KEY_ENV]: `sk_test_bench_${randomBytes(12).toString('hex')}`, [WEBHOOK_SECRET_ENV]: secret };
  const sink = await startChild('the sink', [SELF, '--sink']);
  const samples = Object.fromEntries(sides.map((side) => [side, []]));
  try {
    for (let round = 0; round < rounds; round += 1) {
      const order = sides.map((_, i) => sides[(i + round) % sides.length]);
      // Signed with the time the round starts: its last side still delivers well inside Stripe's 300 s tolerance.
      const timestampS = Math.floor(Date.now() / 1000);
      const deliveries = { warm: new SignedDeliveries(`r${round}w`, secret, timestampS), measured: new SignedDeliveries(`r${round}m`, secret, timestampS) };
      for (const side of order) {
        process.stderr.write(`ingest bench: round ${round + 1}/${rounds}, ${side}…\n`);
        samples[side].push(await runSideRound(side, round, deliveries, { root, sinkOrigin: sink.origin, env, connections, warmupS, durationS, autocannon, cpuProfDir }));
      }
    }
  } finally {
    clearTimeout(runDeadline);
    await sink.stop().catch(() => sink.kill());
    cleanup();
  }
  const summary = (list) => ({
    requestsPerSecond: median(list.map((s) => s.requestsPerSecond)),
    p50Ms: median(list.map((s) => s.p50Ms)),
    p99Ms: median(list.map((s) => s.p99Ms)),
    serverCpuUsPerRequest: list.every((s) => s.serverCpuUsPerRequest !== undefined) ? median(list.map((s) => s.serverCpuUsPerRequest)) : undefined,
    loadCpuPercent: median(list.map((s) => s.loadCpuPercent)),
  });
  const result = Object.fromEntries(sides.map((side) => [side, summary(samples[side])]));
  const ratio = (other) => result.patchbay === undefined || result[other] === undefined ? undefined
    : Object.fromEntries(Object.keys(result.patchbay).map((k) => [k, result[other][k] === undefined ? undefined : round(result.patchbay[k] / result[other][k], 3)]));
  return {
    ...result,
    ratios: { baseline: ratio('baseline'), batched: ratio('batched') },
    rounds: samples,
    settings: { durationS, warmupS, rounds, connections, pipelining: 1, tmpdir: os.tmpdir(), cores: os.availableParallelism?.() ?? os.cpus().length },
  };
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const { values } = parseArgs({
    options: {
      sink: { type: 'boolean' },
      'serve-baseline': { type: 'boolean' },
      mode: { type: 'string' },
      db: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      'cpu-prof-dir': { type: 'string' },
      sides: { type: 'string' },
    },
  });
  if (values.sink) {
    serveSink();
  } else if (values['serve-baseline']) {
    if (values.mode !== 'single' && values.mode !== 'batched') {
      process.stderr.write(`--mode must be single or batched, not "${values.mode}"\n`);
      process.exit(2);
    }
    await serveBaseline({ mode: values.mode, db: values.db });
  } else {
    const options = positiveIntegers(values, [['duration', 'durationS'], ['warmup', 'warmupS'], ['rounds', 'rounds'], ['connections', 'connections']]);
    if (values['cpu-prof-dir'] !== undefined) options.cpuProfDir = values['cpu-prof-dir'];
    if (values.sides !== undefined) {
      options.sides = values.sides.split(',').map((side) => side.trim());
      const unknown = options.sides.filter((side) => !SIDES.includes(side));
      if (unknown.length > 0 || options.sides.length === 0) {
        process.stderr.write(`--sides takes some of ${SIDES.join(', ')}, not "${values.sides}"\n`);
        process.exit(2);
      }
    }
    const result = await runIngestBench(options);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}
