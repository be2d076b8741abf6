#!/usr/bin/env node
// Throughput of the engine's outbound HTTP client against bare undici, on one machine, in one
// run. Build first (`npx tsc -p tsconfig.json`), then `node bench/http-client.mjs
// [--requests N] [--rounds N] [--concurrency N]`; prints JSON { bareRps, engineRps, ratio, … }.
//
// The server runs in a child process, so its CPU does not share the client's event loop. Both
// sides send the same GET over keep-alive connections with the same number of calls in flight
// and read the whole body. The engine side also signs every call (a bearer Authorization header
// by default; pass `sign` to plug in a real signer). Rounds alternate bare / engine after a
// warm-up of each, and the median of each side is reported: ratio = engineRps ÷ bareRps.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);
/** A phase taking longer than this stops early and is measured on what it completed. */
const PHASE_LIMIT_MS = 8_000;
/** The whole run is abandoned after this long. */
const RUN_LIMIT_MS = 55_000;
// A typical small JSON answer from a provider API.
const PAYLOAD = JSON.stringify({
  id: 'ch_3Nabc',
  object: 'charge',
  amount: 2000,
  currency: 'usd',
  status: 'succeeded',
  metadata: { order: '6735' },
  created: 1767225600,
});

/** The child: a keep-alive node:http server on 127.0.0.1:0 that reports its port. */
function serve() {
  const body = Buffer.from(PAYLOAD);
  const server = createServer((req, res) => {
    // Drain the request body (none here) before answering, as a real server would.
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
}

function startServer() {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['--server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error('the bench server did not start within 10 s'));
    }, 10_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve({ port: message.port, stop: () => child.kill() });
    });
    child.once('error', reject);
  });
}

/** Runs `call` `total` times with `concurrency` in flight; returns calls per second. */
async function measure(call, total, concurrency) {
  let started = 0;
  let done = 0;
  const begin = performance.now();
  const stopAt = begin + PHASE_LIMIT_MS;
  async function worker() {
    while (started < total && performance.now() < stopAt) {
      started += 1;
      await call();
      done += 1;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (done * 1000) / (performance.now() - begin);
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * Measures both clients against one local server.
 * @param {{ requests?: number, rounds?: number, concurrency?: number,
 *   sign?: (request: import('../dist/http/request.js').OutboundRequest) => Promise<import('../dist/http/request.js').OutboundRequest> }} options
 *   requests per round (default 20,000), rounds per side (default 3), calls in flight (default
 *   16), and the signer applied to every engine call (default: adds a bearer Authorization).
 * @returns {Promise<{ bareRps: number, engineRps: number, ratio: number, rounds: { bare: number[], engine: number[] }, requests: number, concurrency: number }>}
 */
export async function runHttpClientBench({ requests = 20_000, rounds = 3, concurrency = 16, sign } = {}) {
  const { Agent, request } = await import('undici');
  const { HttpClient } = await import('../dist/http/client.js');
  const runDeadline = setTimeout(() => {
    process.stderr.write(`http-client bench: still running after ${RUN_LIMIT_MS} ms; giving up\n`);
    process.exit(1);
  }, RUN_LIMIT_MS);
  runDeadline.unref();

  const server = await startServer();
  const origin = `http://127.0.0.1:${server.port}`;
  const href = `${origin}/v1/charges/ch_3Nabc`;
  const agent = new Agent({ connections: 32, keepAliveTimeout: 4_000, pipelining: 1 });
  const client = new HttpClient({ allowHttpHosts: ['127.0.0.1'], addressPolicy: { allow: ['127.0.0.1/32'] } });
  const token = randomBytes(24).toString('base64url');
  const bearer = async (unsigned) => ({ ...unsigned, headers: { ...unsigned.headers, authorization: `Bearer ${token}` } });
  const signer = sign ?? bearer;
  const unsigned = { method: 'GET', url: new URL(href), headers: { accept: 'application/json' } };

  const bareCall = async () => {
    const { statusCode, body } = await request(href, {
      dispatcher: agent,
      headers: { accept: 'application/json', 'accept-encoding': 'gzip, deflate, br' },
    });
    await body.arrayBuffer();
    if (statusCode !== 200) throw new Error(`bare undici got ${statusCode}`);
  };
  const engineCall = async () => {
    const response = await client.send(await signer(unsigned));
    if (response.status !== 200) throw new Error(`engine client got ${response.status}`);
  };

  try {
    const warmup = Math.min(2_000, requests);
    await measure(bareCall, warmup, concurrency);
    await measure(engineCall, warmup, concurrency);
    const bare = [];
    const engine = [];
    for (let round = 0; round < rounds; round += 1) {
      // Alternate which side goes first, so neither always runs on a warmer machine.
      if (round % 2 === 0) {
        bare.push(await measure(bareCall, requests, concurrency));
        engine.push(await measure(engineCall, requests, concurrency));
      } else {
        engine.push(await measure(engineCall, requests, concurrency));
        bare.push(await measure(bareCall, requests, concurrency));
      }
    }
    const bareRps = median(bare);
    const engineRps = median(engine);
    const round1 = (n) => Math.round(n);
    return {
      bareRps: round1(bareRps),
      engineRps: round1(engineRps),
      ratio: Math.round((engineRps / bareRps) * 1000) / 1000,
      rounds: { bare: bare.map(round1), engine: engine.map(round1) },
      requests,
      concurrency,
    };
  } finally {
    clearTimeout(runDeadline);
    await Promise.all([agent.close(), client.close()]);
    server.stop();
  }
}

/**
 * The engine's own signer for `kind` (`bearer` or `sigv4`), built by createSigner exactly as a
 * connection builds it, with credentials generated here; signing is part of what is measured.
 */
async function engineSigner(kind) {
  const { createSigner } = await import('../dist/http/auth/create-signer.js');
  let signer;
  if (kind === 'bearer') {
    signer = createSigner({ type: 'bearer' }, { type: 'bearer', token: randomBytes(24).toString('base64url') });
  } else if (kind === 'sigv4') {
    signer = createSigner(
      { type: 'awsSigV4', service: 'sqs' },
      { type: 'awsSigV4', accessKeyId: `AKIDBENCH${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64'), region: 'eu-west-1' },
    );
  } else {
    process.stderr.write(`--auth must be bearer or sigv4, not "${kind}"\n`);
    process.exit(2);
  }
  return (request) => signer.sign(request);
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  if (process.argv.includes('--server')) {
    serve();
  } else {
    const { values } = parseArgs({
      options: { requests: { type: 'string' }, rounds: { type: 'string' }, concurrency: { type: 'string' }, auth: { type: 'string', default: 'bearer' } },
    });
    const options = { sign: await engineSigner(values.auth) };
    for (const name of ['requests', 'rounds', 'concurrency']) {
      if (values[name] === undefined) continue;
      const n = Number(values[name]);
      if (!Number.isInteger(n) || n < 1) {
        process.stderr.write(`--${name} must be a positive integer\n`);
        process.exit(2);
      }
      options[name] = n;
    }
    const result = await runHttpClientBench(options);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}
