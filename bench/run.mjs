#!/usr/bin/env node
// Patchbay benchmarks. Run with `npm run bench` (builds first), or
// `node bench/run.mjs [--only name[,name…]]` against an existing build.
//
// Machines running this are shared and noisy, so every figure is reported next to a bare
// Node.js baseline measured in the same run, runs of the two are interleaved, and the
// ratio patchbay ÷ baseline is what to compare between machines and commits.
// Results: printed as a Markdown table, and written to bench/results/latest.{md,json}.
//
// To add a benchmark, write a function `(context) => Section` and list it in BENCHES.
// A Section is { title, rows: Row[], notes: string[], details: object } where a Row is
// { metric, unit, patchbay, baseline, ratio, aim } (numbers in `unit`; aim is text or '').
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseAllDocuments, parseDocument } from 'yaml';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI_PATH = join(REPO_ROOT, 'bin', 'patchbay.js');
const CPU_PROBE_URL = pathToFileURL(join(REPO_ROOT, 'bench', 'cpu-probe.mjs')).href;
const BASELINE_PARSE_PATH = join(REPO_ROOT, 'bench', 'baseline-parse.mjs');
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

/** A child still running after this long is killed and the benchmark fails. */
const CHILD_TIMEOUT_MS = 60_000;
/** Room for `--format json` output, which grows with the number of diagnostics. */
const CHILD_MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

const VALIDATE_MANIFESTS = 1000;
const VALIDATE_RUNS = 5;
const STARTUP_RUNS = 20;
const STARTUP_AIM_MS = 150;
const VALIDATE_AIM_CPU_MS = 1000;

/** Folders and files to remove on exit, including Ctrl-C. */
const pendingCleanups = new Set();
/** Children started so far; names each child's CPU file. */
let childCount = 0;

const EXAMPLES_RUNS = 10;

const BENCHES = [
  { name: 'validate', run: benchValidate },
  { name: 'examples', run: benchExamples },
  { name: 'startup', run: benchStartup },
  { name: 'http', run: benchHttp },
  { name: 'executor', run: benchExecutor },
  { name: 'ingest', run: benchIngest },
];

function main() {
  const names = selectBenches(process.argv.slice(2));
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      runCleanups();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('exit', runCleanups);

  const packageVersion = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version;
  const context = { packageVersion };
  const machine = describeMachine();
  const sections = [];
  for (const bench of BENCHES.filter((b) => names.includes(b.name))) {
    process.stderr.write(`bench: ${bench.name}…\n`);
    sections.push({ name: bench.name, ...bench.run(context) });
  }

  const report = { date: new Date().toISOString(), patchbayVersion: packageVersion, machine, sections };
  const markdown = renderMarkdown(report);
  process.stdout.write(markdown);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileAtomic(join(RESULTS_DIR, 'latest.md'), markdown);
  writeFileAtomic(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  process.stderr.write(`bench: wrote ${join('bench', 'results', 'latest.md')} and latest.json\n`);
}

/** Parses the command line into the names of the benchmarks to run; exits 2 on misuse. */
function selectBenches(argv) {
  const known = BENCHES.map((b) => b.name);
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { only: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    usage(error.message, known);
  }
  if (values.help) usage('', known, 0);
  if (!values.only) return known;
  const names = values.only.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0 || names.length === 0) usage(`unknown benchmark "${unknown.join(', ')}"`, known);
  return names;
}

function usage(problem, known, code = 2) {
  if (problem) process.stderr.write(`bench: ${problem}\n`);
  process.stderr.write(`usage: node bench/run.mjs [--only ${known.join('|')}[,…]]\n`);
  process.exit(code);
}

// ---------------------------------------------------------------------------------------
// http: requests per second through the engine's HTTP client with a real signer, beside bare
// undici to the same local server (bench/http-client.mjs runs both, interleaved, in a child).

const HTTP_REQUESTS = 20_000;
const HTTP_ROUNDS = 3;
const HTTP_AIM_RATIO = 0.8;

function benchHttp() {
  const rows = [];
  const details = {};
  for (const auth of ['bearer', 'sigv4']) {
    const child = spawnSync(process.execPath, [join(REPO_ROOT, 'bench', 'http-client.mjs'), '--auth', auth, '--requests', String(HTTP_REQUESTS), '--rounds', String(HTTP_ROUNDS)], {
      encoding: 'utf8',
      timeout: CHILD_TIMEOUT_MS * 2,
    });
    if (child.status !== 0) throw new Error(`bench/http-client.mjs --auth ${auth} failed: ${child.stderr || child.error?.message}`);
    const result = JSON.parse(child.stdout);
    details[auth] = result;
    rows.push({
      metric: `requests/s, ${auth === 'bearer' ? 'bearer token' : 'AWS SigV4'} signing (16 in flight)`,
      unit: 'req/s',
      patchbay: result.engineRps,
      baseline: result.bareRps,
      ratio: result.ratio,
      aim: `≥ ${HTTP_AIM_RATIO} × bare undici`,
    });
  }
  return {
    title: `HTTP client: ${HTTP_REQUESTS.toLocaleString('en-US')} GETs per round to a local server, ${HTTP_ROUNDS} interleaved rounds (median)`,
    rows,
    notes: [
      'Baseline: bare undici `request()` through a keep-alive Agent, no auth. Patchbay: HttpClient.send with the SSRF-guarded connector, per-phase timers and size limits, after the connection signer (createSigner) signs each request.',
      'The server runs in a child process so it does not share the measured event loop.',
    ],
    details,
  };
}

// ---------------------------------------------------------------------------------------
// executor: events/s through a three-step integration with the SQLite store, beside a bare
// undici + better-sqlite3 loop (bench/executor.mjs runs both, interleaved, each in its own child).

const EXECUTOR_EVENTS = 5_000;
const EXECUTOR_WARMUP = 1_000;
const EXECUTOR_ROUNDS = 5;
const EXECUTOR_IN_FLIGHT = 64;
const EXECUTOR_BATCH = 100;
const EXECUTOR_AIM_RATIO = 0.5;
const EXECUTOR_AIM_RATE = 2_000;
/** bench/executor.mjs gives up by itself after 110 s; this only catches a hung orchestrator. */
const EXECUTOR_TIMEOUT_MS = 120_000;

function benchExecutor() {
  const child = spawnSync(process.execPath, [join(REPO_ROOT, 'bench', 'executor.mjs'),
    '--events', String(EXECUTOR_EVENTS), '--warmup', String(EXECUTOR_WARMUP), '--rounds', String(EXECUTOR_ROUNDS),
    '--concurrency', String(EXECUTOR_IN_FLIGHT), '--batch', String(EXECUTOR_BATCH)], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: EXECUTOR_TIMEOUT_MS,
  });
  if (child.status !== 0) throw new Error(`bench/executor.mjs failed: ${child.stderr || child.error?.message}`);
  const result = JSON.parse(child.stdout);
  const { patchbay: p, baseline: b } = result;
  const rateMet = p.eventsPerSecond >= EXECUTOR_AIM_RATIO * b.eventsPerSecond && p.eventsPerSecond >= EXECUTOR_AIM_RATE;
  const n = EXECUTOR_EVENTS.toLocaleString('en-US');
  return {
    title: `executor: ${n} events per round through three steps to a local sink, SQLite store, ${EXECUTOR_ROUNDS} interleaved rounds (median)`,
    rows: [
      row(`executor: events/s, three steps + SQLite (${EXECUTOR_IN_FLIGHT} in flight)`, 'events/s', p.eventsPerSecond, b.eventsPerSecond,
        `≥ ${EXECUTOR_AIM_RATIO} × baseline and ≥ ${EXECUTOR_AIM_RATE.toLocaleString('en-US')}/s (${rateMet ? 'met' : 'missed'})`),
      row('executor: latency per event, p50', 'ms', p.p50Ms, b.p50Ms, ''),
      row('executor: latency per event, p99', 'ms', p.p99Ms, b.p99Ms, ''),
      row('executor: peak RSS of the measuring process', 'MiB', p.peakRssMiB, b.peakRssMiB, ''),
      row('executor: CPU per event (user + system)', 'µs', p.cpuUsPerEvent, b.cpuUsPerEvent, ''),
    ],
    notes: [
      `executor, patchbay: the engine in a child process, as the daemon builds it (validateManifests → buildExecutionPlan → ` +
        `openSqliteStore → Executor, poll interval 5 ms) on an integration of the \`ledger\` test provider with three steps ` +
        '(entries.create → notify.send → audit.write, each input mapped by JSONata from the event or the previous output and ' +
        `checked against the operation's schema), \`concurrency.limit: ${EXECUTOR_IN_FLIGHT}\`, a bearer token and an idempotency key per step. ` +
        `Events arrive through Executor.submit in batches of ${EXECUTOR_BATCH} (one fsynced commit each, synchronous = FULL) whenever ` +
        `fewer than ${2 * EXECUTOR_IN_FLIGHT} are waiting or running; every attempt is recorded with its redacted request and response ` +
        '(group commits, synchronous = NORMAL). A round counts only if the store holds every run as succeeded.',
      `executor, baseline: a child with ${EXECUTOR_IN_FLIGHT} async workers fed the same batches; per event three sequential undici ` +
        '`request()` POSTs with the same JSON bodies, bearer token and Idempotency-Key header (the same pool shape as the engine: ' +
        '32 keep-alive connections, no pipelining), each answer read as JSON, then one better-sqlite3 INSERT of the event in ' +
        'WAL with synchronous = NORMAL (autocommit, no fsync per commit): the cheapest setting a hand-written loop would use, ' +
        'with no retries, resume, redaction or audit trail.',
      `executor: rate is measured events ÷ time from the first submit to the last finished event, after ${EXECUTOR_WARMUP.toLocaleString('en-US')} ` +
        'untimed warm-up events in the same process; latency runs from the hand-over of an event\'s batch to its last committed ' +
        'write (queueing included); peak RSS is the child\'s getrusage high-water mark. The sink is a node:http server in its own ' +
        'child that counts calls, so each round is also checked for exactly three calls per event with distinct idempotency keys.',
    ],
    details: result,
  };
}

// ---------------------------------------------------------------------------------------
// ingest: Stripe-signed webhooks into `patchbay serve` (verify, durable commit, answer) under
// autocannon, beside bare node:http + better-sqlite3 servers (bench/ingest.mjs runs all three,
// each a fresh child per round, rounds interleaved).

const INGEST_DURATION_S = 10;
const INGEST_WARMUP_S = 3;
const INGEST_ROUNDS = 3;
const INGEST_CONNECTIONS = 32;
const INGEST_AIM_RATIO = 0.7;
/** bench/ingest.mjs gives up by itself after 300 s; this only catches a hung orchestrator. */
const INGEST_TIMEOUT_MS = 320_000;

function benchIngest() {
  const child = spawnSync(process.execPath, [join(REPO_ROOT, 'bench', 'ingest.mjs'),
    '--duration', String(INGEST_DURATION_S), '--warmup', String(INGEST_WARMUP_S), '--rounds', String(INGEST_ROUNDS),
    '--connections', String(INGEST_CONNECTIONS)], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: INGEST_TIMEOUT_MS,
    maxBuffer: CHILD_MAX_OUTPUT_BYTES,
  });
  if (child.status !== 0) throw new Error(`bench/ingest.mjs failed: ${child.stderr || child.error?.message}`);
  const result = JSON.parse(child.stdout);
  const { patchbay: p, baseline: b, batched: g } = result;
  const aimMet = p.requestsPerSecond >= INGEST_AIM_RATIO * b.requestsPerSecond;
  const executed = result.rounds.patchbay.map((r) => r.committed.runsByStatus.succeeded ?? 0);
  const committed = result.rounds.patchbay.map((r) => r.committed.rows.toLocaleString('en-US'));
  return {
    title: `webhook ingest: Stripe-signed deliveries for about ${INGEST_DURATION_S} s per round over ${INGEST_CONNECTIONS} connections, ${INGEST_ROUNDS} interleaved rounds (median)`,
    rows: [
      row(`ingest: requests/s, Stripe signature verified + durable commit (${INGEST_CONNECTIONS} connections)`, 'req/s', p.requestsPerSecond, b.requestsPerSecond,
        `≥ ${INGEST_AIM_RATIO} × bare server (${aimMet ? 'met' : 'missed'})`),
      row('ingest: latency per request, p50', 'ms', p.p50Ms, b.p50Ms, ''),
      row('ingest: latency per request, p99', 'ms', p.p99Ms, b.p99Ms, ''),
      row('ingest: requests/s vs a bare server with a group commit per event-loop turn', 'req/s', p.requestsPerSecond, g.requestsPerSecond, ''),
      row('ingest: latency p50 vs the group-committing bare server', 'ms', p.p50Ms, g.p50Ms, ''),
      row('ingest: latency p99 vs the group-committing bare server', 'ms', p.p99Ms, g.p99Ms, ''),
      row('ingest: server CPU per request (user + system) vs the group-committing bare server', 'µs', p.serverCpuUsPerRequest, g.serverCpuUsPerRequest, ''),
    ],
    notes: [
      'ingest, patchbay: `node bin/patchbay.js serve` as a child process (JSON logs at info, `--inbound-rate 1000000/s`) with one ' +
        'integration of the bundled `stripe` provider whose connection points at a local sink (`baseUrl`, `allowedHosts`, ' +
        '`allowPrivateAddresses`); each delivery is a ~1.2 KB `payment_intent.succeeded` event with a distinct id, signed with ' +
        '`Stripe-Signature: t=…,v1=…`. The daemon verifies the signature on the raw body, parses and redacts the event and commits ' +
        'the event and its run (WAL, synchronous = FULL for the commit that holds accepted events; its store group-commits writes made ' +
        'within 1 ms, up to 48 a commit) before answering 202.',
      'ingest, baseline: a bare node:http server that reads the body, JSON.parses it and INSERTs it with better-sqlite3 (WAL, ' +
        'synchronous = FULL), one autocommit transaction (one fsync) per request, then answers 202. Group-committing bare server: the ' +
        'same, but the requests parsed in one event-loop turn share one transaction and one fsync (setImmediate). Neither verifies a ' +
        'signature, redacts, nor runs anything.',
      `ingest: the daemon's executor runs the accepted events meanwhile in the same process: one cheap step (stripe ` +
        '`customers.retrieve`, a GET the sink answers at once), paced by the Stripe provider\'s rate limit of 100 calls/s, so most runs ' +
        `are still queued when a round ends (runs finished by the end of each round: ${executed.join(', ')}, of ${committed.join(', ')} accepted).`,
      `ingest: load from autocannon (programmatic API, ${INGEST_CONNECTIONS} keep-alive connections, no pipelining) in the ` +
        'orchestrating process, which shares the machine with the server under test (and the sink); bodies and signatures are the same ' +
        `for every side of a round, made before each measured phase (the warm-up's as the round's first warm-up asks for them). Every side and round is a fresh process and database: ${INGEST_WARMUP_S} s of ` +
        `untimed warm-up, then a fixed count of requests sized from the end of the warm-up's rate to last about ${INGEST_DURATION_S} s. ` +
        'Requests/s = 2xx answers ÷ time from the first request to the last answer; latencies from every answer. Each round is ' +
        'checked: every request answered 202 (no other status, error, timeout or duplicate), and the rows the measured phase committed ' +
        '(the daemon\'s runs, equal to its events, read from its state file after SIGTERM; the baseline\'s table) equal its 202s.',
    ],
    details: result,
  };
}

// ---------------------------------------------------------------------------------------
// validate: `patchbay validate` over 1,000 manifests vs. reading and parsing them bare.

function benchValidate() {
  const corpusDir = mkdtempSync(join(os.tmpdir(), 'patchbay-bench-'));
  pendingCleanups.add(corpusDir);
  try {
    const { templateSource, templateCount } = writeCorpus(corpusDir, VALIDATE_MANIFESTS);
    const patchbayArgs = [CLI_PATH, 'validate', corpusDir, '--format', 'json'];
    const baselineArgs = [BASELINE_PARSE_PATH, corpusDir];

    // Untimed first runs: warm the file cache, and refuse to time output that is wrong.
    const check = checkValidateOutput(runChild(patchbayArgs, { cpuProbe: true }));
    checkBaselineOutput(runChild(baselineArgs, { cpuProbe: true }));

    const { patchbay, baseline } = interleave(VALIDATE_RUNS, patchbayArgs, baselineArgs, 'patchbay validate');

    const cpu = { p: median(patchbay.map((r) => r.cpuMs)), b: median(baseline.map((r) => r.cpuMs)) };
    const wall = { p: median(patchbay.map((r) => r.wallMs)), b: median(baseline.map((r) => r.wallMs)) };
    const perSecond = (ms) => (VALIDATE_MANIFESTS * 1000) / ms;
    const n = VALIDATE_MANIFESTS.toLocaleString('en-US');
    const cpuAimMet = cpu.p < VALIDATE_AIM_CPU_MS;
    return {
      title: `validate ${n} manifests`,
      rows: [
        row(`validate ${n} manifests: CPU time (median of ${VALIDATE_RUNS})`, 'ms', cpu.p, cpu.b,
          `${n} manifests in well under 1 s of CPU (${cpuAimMet ? 'met' : 'missed'})`),
        row('validate: manifests/s of CPU', '/s', perSecond(cpu.p), perSecond(cpu.b), ''),
        row(`validate ${n} manifests: wall time (median of ${VALIDATE_RUNS})`, 'ms', wall.p, wall.b, ''),
        row('validate: manifests/s of wall time', '/s', perSecond(wall.p), perSecond(wall.b), ''),
      ],
      notes: [
        `patchbay: \`node bin/patchbay.js validate <dir> --format json\` over ${n} manifests, one a file, ` +
          `made from ${templateCount} ${templateSource} with renamed \`metadata.name\`` +
          (check.warnings > 0 ? ` (${check.warnings} warnings reported)` : '') + '.',
        'baseline: `node bench/baseline-parse.mjs <dir>`: start Node, read the same files, `yaml` parseDocument, no validation.',
        'CPU is user + system time of the child process (all its threads), read by bench/cpu-probe.mjs at exit.',
      ],
      details: {
        manifests: VALIDATE_MANIFESTS,
        templateSource,
        templateCount,
        summary: check.summary,
        samples: { patchbay: patchbay.map(stripOutput), baseline: baseline.map(stripOutput) },
      },
    };
  } finally {
    rmSync(corpusDir, { recursive: true, force: true });
    pendingCleanups.delete(corpusDir);
  }
}

/**
 * Writes `count` manifests, one a file, into `dir`: copies of the Integration documents of
 * the repository's integrations/*.yaml (read now, so the corpus follows the examples), or of
 * a built-in template when there are none, each renamed `bench-<n>-<original>` and with every `{{ }}` expression made unique by a comment.
 */
function writeCorpus(dir, count) {
  let templates = readExampleIntegrations();
  let templateSource = 'example integrations from integrations/';
  if (templates.length === 0) {
    templates = [parseDocument(BUILT_IN_TEMPLATE)];
    templateSource = 'built-in template (integrations/ has no examples yet)';
  }
  const width = String(count).length;
  for (let i = 0; i < count; i++) {
    const document = templates[i % templates.length].clone();
    const original = String(document.getIn(['metadata', 'name']));
    document.setIn(['metadata', 'name'], benchName(i + 1, original));
    const fileName = `bench-${String(i + 1).padStart(width, '0')}.yaml`;
    // A JSONata comment makes every expression's text unique, so the validator's expression
    // cache cannot turn 1,000 copies of six templates into six compilations.
    const text = document.toString({ lineWidth: 0 }).replaceAll('{{', `{{ /* ${i + 1} */`);
    writeFileSync(join(dir, fileName), text);
  }
  return { templateSource, templateCount: templates.length };
}

/**
 * The Integration documents of integrations/*.yaml and *.yml. A file that does not parse,
 * or that also holds other kinds (a custom Provider its integrations may need), is left out:
 * its documents could not be validated alone.
 */
function readExampleIntegrations() {
  const dir = join(REPO_ROOT, 'integrations');
  let names;
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  const templates = [];
  for (const name of names.filter((n) => /\.ya?ml$/.test(n)).sort()) {
    const documents = parseAllDocuments(readFileSync(join(dir, name), 'utf8'));
    const usable = documents.every((d) => d.errors.length === 0 && d.get('kind') === 'Integration'
      && typeof d.getIn(['metadata', 'name']) === 'string');
    if (usable) templates.push(...documents);
  }
  return templates;
}

/** `bench-<n>-<original>`, cut to a 63-character DNS label; `n` keeps names unique. */
function benchName(n, original) {
  return `bench-${n}-${original}`.slice(0, 63).replace(/-+$/, '');
}

function checkValidateOutput(result) {
  let report;
  try {
    report = JSON.parse(result.stdout);
  } catch {
    fail('patchbay validate --format json', result, 'stdout is not JSON');
  }
  const summary = report.summary ?? {};
  if (result.status !== 0 || summary.errors !== 0) {
    const firstProblems = (report.diagnostics ?? [])
      .filter((d) => d.severity === 'error')
      .slice(0, 5)
      .map((d) => `  ${d.file}:${d.line}:${d.column}: ${d.code}: ${d.message}`)
      .join('\n');
    fail('patchbay validate', result, `the generated corpus is not valid; first errors:\n${firstProblems}`);
  }
  if (summary.documents !== undefined && summary.documents !== VALIDATE_MANIFESTS) {
    fail('patchbay validate', result, `validated ${summary.documents} documents, expected ${VALIDATE_MANIFESTS}`);
  }
  return { summary, warnings: summary.warnings ?? 0 };
}

function checkBaselineOutput(result, expected = VALIDATE_MANIFESTS) {
  checkedExit(result, 'baseline-parse');
  const { documents } = JSON.parse(result.stdout);
  if (documents !== expected) {
    fail('baseline-parse', result, `parsed ${documents} documents, expected ${expected}`);
  }
}

// A valid `kind: Integration` (schemas/integration.schema.json) for when integrations/ is empty.
const BUILT_IN_TEMPLATE = `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: nightly-report
  description: Fetches yesterday's figures and posts a report, every night.
  labels:
    team: platform
spec:
  connections:
    api:
      provider: http
      baseUrl: https://api.example.com/v1
      allowedHosts: [api.example.com]
      auth:
        type: bearer
        token: { env: EXAMPLE_API_TOKEN }
  vars:
    channel: reports
  trigger:
    schedule:
      cron: "0 2 * * *"
      timezone: Europe/Paris
  steps:
    - id: fetchStats
      call: http.request
      with:
        method: GET
        path: /stats
    - id: postReport
      call: http.request
      if: "{{ steps.fetchStats.output.status = 200 }}"
      with:
        method: POST
        path: /reports
        body:
          channel: "{{ vars.channel }}"
          total: "{{ steps.fetchStats.output.body.total }}"
  policy:
    retry:
      maxAttempts: 3
    timeout:
      total: 10s
`;

// ---------------------------------------------------------------------------------------
// examples: the typical pull request — `patchbay validate integrations` over the bundled
// examples — where the fixed cost (start-up, catalogue) dominates.

function benchExamples() {
  const dir = join(REPO_ROOT, 'integrations');
  const patchbayArgs = [CLI_PATH, 'validate', dir, '--format', 'json'];
  const baselineArgs = [BASELINE_PARSE_PATH, dir];
  const count = readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).length;
  checkedExit(runChild(patchbayArgs, { cpuProbe: true }), 'patchbay validate integrations');
  checkBaselineOutput(runChild(baselineArgs, { cpuProbe: true }), count);
  const { patchbay, baseline } = interleave(EXAMPLES_RUNS, patchbayArgs, baselineArgs, 'patchbay validate integrations');
  return {
    title: 'validate the bundled examples',
    rows: [
      row(`validate the ${count} example integrations: wall time (median of ${EXAMPLES_RUNS})`, 'ms',
        median(patchbay.map((r) => r.wallMs)), median(baseline.map((r) => r.wallMs)), ''),
      row(`validate the ${count} example integrations: CPU time (median of ${EXAMPLES_RUNS})`, 'ms',
        median(patchbay.map((r) => r.cpuMs)), median(baseline.map((r) => r.cpuMs)), ''),
    ],
    notes: [
      'examples: `node bin/patchbay.js validate integrations --format json` (what a pull request runs) against ' +
        '`node bench/baseline-parse.mjs integrations`.',
    ],
    details: { runs: EXAMPLES_RUNS, files: count, samples: { patchbay: patchbay.map(stripOutput), baseline: baseline.map(stripOutput) } },
  };
}

// ---------------------------------------------------------------------------------------
// startup: `patchbay --version` vs. `node -e 0`.

function benchStartup({ packageVersion }) {
  const patchbayArgs = [CLI_PATH, '--version'];
  const baselineArgs = ['-e', '0'];

  const first = checkedExit(runChild(patchbayArgs), 'patchbay --version');
  if (!first.stdout.includes(packageVersion)) {
    fail('patchbay --version', first, `expected the version ${packageVersion} on stdout`);
  }
  checkedExit(runChild(baselineArgs), 'node -e 0');

  const patchbay = [];
  const baseline = [];
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const order = i % 2 === 0 ? ['p', 'b'] : ['b', 'p'];
    for (const which of order) {
      if (which === 'p') patchbay.push(checkedExit(runChild(patchbayArgs), 'patchbay --version').wallMs);
      else baseline.push(checkedExit(runChild(baselineArgs), 'node -e 0').wallMs);
    }
  }

  const medianMs = { p: median(patchbay), b: median(baseline) };
  return {
    title: 'cold start',
    rows: [
      row(`cold start: wall time, median of ${STARTUP_RUNS}`, 'ms', medianMs.p, medianMs.b,
        `cold start under ${STARTUP_AIM_MS} ms (${medianMs.p < STARTUP_AIM_MS ? 'met' : 'missed'})`),
      row(`cold start: wall time, p90 of ${STARTUP_RUNS}`, 'ms', percentile(patchbay, 90), percentile(baseline, 90), ''),
    ],
    notes: ['patchbay: `node bin/patchbay.js --version`; baseline: `node -e 0`; wall time from spawn to exit.'],
    details: { runs: STARTUP_RUNS, samplesMs: { patchbay, baseline } },
  };
}

// ---------------------------------------------------------------------------------------
// Measurement.

/**
 * Runs `node <args>` in the repository root and waits for it. Returns its exit status,
 * output, wall time in ms and, with `cpuProbe`, its CPU time (user + system) in ms.
 * Kills it with SIGKILL after CHILD_TIMEOUT_MS and throws.
 */
function runChild(args, { cpuProbe = false } = {}) {
  const env = { ...process.env, NO_COLOR: '1' };
  let cpuFile;
  const nodeArgs = [...args];
  if (cpuProbe) {
    childCount += 1;
    cpuFile = join(os.tmpdir(), `patchbay-bench-cpu-${process.pid}-${childCount}.json`);
    pendingCleanups.add(cpuFile);
    env.PATCHBAY_BENCH_CPU_FILE = cpuFile;
    nodeArgs.unshift('--import', CPU_PROBE_URL);
  }
  try {
    const startMs = performance.now();
    const child = spawnSync(process.execPath, nodeArgs, {
      cwd: REPO_ROOT,
      env,
      encoding: 'utf8',
      timeout: CHILD_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      maxBuffer: CHILD_MAX_OUTPUT_BYTES,
    });
    const wallMs = performance.now() - startMs;
    const result = { args, status: child.status, signal: child.signal, stdout: child.stdout, stderr: child.stderr, wallMs };
    if (child.error) {
      const reason = child.error.code === 'ETIMEDOUT' ? `killed after ${CHILD_TIMEOUT_MS / 1000} s` : child.error.message;
      fail(`node ${args.join(' ')}`, result, reason);
    }
    if (cpuProbe && child.status === 0) {
      const { userUs, systemUs } = JSON.parse(readFileSync(cpuFile, 'utf8'));
      result.cpuMs = (userUs + systemUs) / 1000;
    }
    return result;
  } finally {
    if (cpuFile) {
      rmSync(cpuFile, { force: true });
      pendingCleanups.delete(cpuFile);
    }
  }
}

/**
 * Runs patchbay and its baseline `runs` times each with the CPU probe, alternating which goes
 * first so that a slow drift of the machine hits both alike.
 */
function interleave(runs, patchbayArgs, baselineArgs, label) {
  const patchbay = [];
  const baseline = [];
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? ['p', 'b'] : ['b', 'p'];
    for (const which of order) {
      if (which === 'p') patchbay.push(checkedExit(runChild(patchbayArgs, { cpuProbe: true }), label));
      else baseline.push(checkedExit(runChild(baselineArgs, { cpuProbe: true }), 'baseline-parse'));
    }
  }
  return { patchbay, baseline };
}

function checkedExit(result, label) {
  if (result.status !== 0) fail(label, result, `exited with ${result.signal ?? `status ${result.status}`}`);
  return result;
}

function fail(label, result, reason) {
  const stderr = (result.stderr ?? '').trim().split('\n').slice(-20).join('\n');
  throw new Error(`bench: ${label}: ${reason}${stderr ? `\n--- stderr (last lines) ---\n${stderr}` : ''}`);
}

function stripOutput({ wallMs, cpuMs }) {
  return { wallMs: round(wallMs, 2), cpuMs: round(cpuMs, 2) };
}

function row(metric, unit, patchbay, baseline, aim) {
  return { metric, unit, patchbay, baseline, ratio: patchbay / baseline, aim };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile. */
function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

// ---------------------------------------------------------------------------------------
// Report.

function describeMachine() {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverage1m: round(os.loadavg()[0], 2),
  };
}

function renderMarkdown({ date, patchbayVersion, machine, sections }) {
  const lines = [
    '## Benchmarks',
    '',
    `patchbay ${patchbayVersion}, ${date}. Node ${machine.node} on ${machine.cpuModel}, ` +
      `${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}, load ${machine.loadAverage1m}.`,
    '',
    '| metric | patchbay | baseline | ratio | aim |',
    '|---|---:|---:|---:|---|',
  ];
  for (const section of sections) {
    for (const r of section.rows) {
      lines.push(`| ${r.metric} | ${formatValue(r.patchbay, r.unit)} | ${formatValue(r.baseline, r.unit)} | ` +
        `${r.ratio.toFixed(2)}× | ${r.aim} |`);
    }
  }
  lines.push('', 'Ratio is patchbay ÷ baseline, both measured in this run with interleaved runs: ' +
    'above 1 means patchbay takes longer (time rows) or does more per second (rate rows).', '');
  for (const section of sections) {
    for (const note of section.notes) lines.push(`- ${note}`);
  }
  lines.push('');
  return lines.join('\n');
}

function formatValue(value, unit) {
  if (unit === '/s') return `${Math.round(value).toLocaleString('en-US')}/s`;
  return `${value.toFixed(value < 100 ? 1 : 0)} ${unit}`;
}

function round(value, digits) {
  return value === undefined ? undefined : Number(value.toFixed(digits));
}

function writeFileAtomic(path, text) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function runCleanups() {
  for (const path of pendingCleanups) rmSync(path, { recursive: true, force: true });
  pendingCleanups.clear();
}

// Last, so that every constant above is initialised before the benchmarks use it.
try {
  main();
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
