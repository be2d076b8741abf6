import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboundRequest } from '../../engine/http/request.js';
import { buildRequest, type CallTarget } from '../../engine/providers/request-builder.js';
import type { ProviderDocument } from '../../engine/types/provider.generated.js';
import { basePath, findSpecPath, type MatchableSpec } from '../support/spec-match.mjs';
import { loadBundledProviders } from './bundled.js';

/**
 * Every operation of every bundled provider that has an official API description is built from
 * its `example` by the real request builder and sent to a Prism mock of that description
 * (test/fixtures/specs, vendored by scripts/vendor-specs.mjs). Prism must answer 2xx without a
 * request violation: path, method, parameters, content type and body all match the provider's
 * own description. One deliberately broken request per provider proves Prism does refuse.
 */

const root = join(import.meta.dirname, '..', '..');
const specsDir = join(root, 'test', 'fixtures', 'specs');
const prismCli = join(root, 'node_modules', '@stoplight', 'prism-cli', 'dist', 'index.js');

interface SpecIndex {
  readonly openapi: Record<string, { readonly files: { readonly file: string }[] }>;
}

const index = JSON.parse(readFileSync(join(specsDir, 'index.json'), 'utf8')) as SpecIndex;
const providers = loadBundledProviders();

interface Planned {
  readonly operation: string;
  readonly file: string;
  readonly pathKey: string;
  /** The operation's base path with the description's server path removed: Prism serves bare `paths`. */
  readonly mockBasePath: string;
}

/** Maps each operation to the description path serving its method and full path. */
function plan(provider: ProviderDocument, files: string[]): { planned: Planned[]; unmatched: string[] } {
  const specs = files.map((file) => ({ file, spec: JSON.parse(readFileSync(join(specsDir, file), 'utf8')) as MatchableSpec }));
  const planned: Planned[] = [];
  const unmatched: string[] = [];
  for (const [name, operation] of Object.entries(provider.spec.operations)) {
    const found = findSpecPath(provider, operation, specs);
    if (found === undefined) {
      const fullPath = basePath(operation.baseUrl ?? provider.spec.baseUrl) + (operation.path ?? '');
      unmatched.push(`${name} (${(operation.method ?? 'POST').toUpperCase()} ${fullPath})`);
      continue;
    }
    const { file, pathKey, prefix, base } = found;
    planned.push({ operation: name, file, pathKey, mockBasePath: base.startsWith(prefix) ? base.slice(prefix.length) : base });
  }
  return { planned, unmatched };
}

/** Fake credentials of the provider's first auth scheme, as its description expects them. */
function addAuth(provider: ProviderDocument, built: OutboundRequest): OutboundRequest {
  const scheme = provider.spec.auth[0];
  const secret = `fake_${randomBytes(12).toString('hex')}`;
  const headers = { ...built.headers };
  const url = new URL(built.url);
  switch (scheme.type) {
    case 'basic':
      headers.authorization = `Basic ${Buffer.from(`user_${randomBytes(4).toString('hex')}:${secret}`).toString('base64')}`;
      break;
    case 'apiKey':
      if (scheme.in === 'query') url.searchParams.set(scheme.name ?? 'key', secret);
      else headers[(scheme.name ?? 'authorization').toLowerCase()] = `${scheme.prefix ?? ''}${secret}`;
      break;
    case 'none':
    case 'awsSigV4':
      break;
    default:
      headers[(scheme.header ?? 'Authorization').toLowerCase()] = `${scheme.prefix ?? 'Bearer '}${secret}`;
  }
  return { ...built, url, headers };
}

/** Variables a connection would set: each variable's first example, else its default. */
function exampleVariables(provider: ProviderDocument): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const [name, variable] of Object.entries(provider.spec.variables ?? {})) {
    const value = variable.examples?.[0] ?? variable.default;
    if (value !== undefined) variables[name] = value;
  }
  return variables;
}

interface Violation {
  readonly location?: unknown[];
  readonly severity?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
}

interface Answer {
  readonly status: number;
  readonly violations: Violation[];
  readonly body: string;
}

const isError = (violation: Violation) => violation.severity === 0 || /error/i.test(String(violation.severity));

async function send(built: OutboundRequest): Promise<Answer> {
  const response = await request(built.url, {
    method: built.method,
    headers: built.headers,
    ...(built.body === undefined ? {} : { body: built.body }),
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const body = await response.body.text();
  const header = response.headers['sl-violations'];
  const violations = typeof header === 'string' ? (JSON.parse(header) as Violation[]) : [];
  // A description that declares no error response makes Prism answer problem+json instead.
  if (String(response.headers['content-type'] ?? '').includes('problem+json')) {
    const problem = JSON.parse(body) as { validation?: Violation[] };
    violations.push(...(problem.validation ?? []).map((v) => ({ ...v, severity: v.severity ?? 'Error' })));
  }
  return { status: response.statusCode, violations, body };
}

interface RunningPrism {
  readonly origin: string;
  readonly log: () => string;
  stop(): Promise<void>;
}

/** Starts `prism mock <file>` on a free loopback port; resolves once it is listening. */
function startPrism(file: string, timeoutMs = 60_000): Promise<RunningPrism> {
  const child: ChildProcess = spawn(process.execPath, [prismCli, 'mock', join(specsDir, file), '-h', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const log = () => output.slice(-4000);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop().then(() => reject(new Error(`Prism did not start on ${file} in ${timeoutMs} ms:\n${log()}`)));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > 200_000) output = output.slice(-100_000);
      const listening = /Prism is listening on (http:\/\/127\.0\.0\.1:[0-9]+)/.exec(output);
      if (listening !== null) {
        clearTimeout(timer);
        resolve({ origin: listening[1]!, log, stop });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Prism exited (${code}) on ${file}:\n${log()}`));
    });
  });
}

/** One request per provider with a required field removed, which Prism must refuse. */
const broken: Record<string, { readonly operation: string; readonly drop: string }> = {
  stripe: { operation: 'paymentIntents.create', drop: 'amount' },
  twilio: { operation: 'messages.create', drop: 'To' },
  slack: { operation: 'chat.postMessage', drop: 'channel' },
  openai: { operation: 'chat.completions.create', drop: 'model' },
  github: { operation: 'issues.create', drop: 'title' },
  sendgrid: { operation: 'mail.send', drop: 'from' },
  googlemaps: { operation: 'directions', drop: 'origin' },
};

/** The built request without `field`, wherever the builder put it (query, JSON or form body). */
function withoutField(built: OutboundRequest, field: string): OutboundRequest {
  const url = new URL(built.url);
  url.searchParams.delete(field);
  let body = built.body;
  if (typeof body === 'string' && body !== '') {
    if (built.headers['content-type']?.startsWith('application/json')) {
      const value = JSON.parse(body) as Record<string, unknown>;
      delete value[field];
      body = JSON.stringify(value);
    } else {
      body = body
        .split('&')
        .filter((pair) => {
          const name = decodeURIComponent(pair.split('=')[0]!);
          return name !== field && !name.startsWith(`${field}[`);
        })
        .join('&');
    }
  }
  return body === undefined ? { ...built, url } : { ...built, url, body };
}

const plans = new Map<string, { planned: Planned[]; unmatched: string[] }>();
for (const [name, entry] of Object.entries(index.openapi)) {
  const provider = providers.get(name);
  if (provider !== undefined) plans.set(name, plan(provider, entry.files.map((file) => file.file)));
}

describe('bundled operations and their vendored descriptions', () => {
  it('every provider with a vendored description is in the catalogue', () => {
    expect(Object.keys(index.openapi).filter((name) => !providers.has(name))).toEqual([]);
  });

  it('every operation has an example to build its request from', () => {
    const missing = [...plans.keys()].flatMap((name) =>
      Object.entries(providers.get(name)!.spec.operations)
        .filter(([, operation]) => operation.example === undefined)
        .map(([operation]) => `${name}.${operation}`),
    );
    expect(missing).toEqual([]);
  });

  it('every operation maps to a path of its description (else run scripts/vendor-specs.mjs, or fix the path)', () => {
    const unmatched = [...plans].flatMap(([name, { unmatched }]) => unmatched.map((operation) => `${name}.${operation}`));
    expect(unmatched).toEqual([]);
  });
});

for (const [name, { planned }] of plans) {
  const provider = providers.get(name)!;
  const files = [...new Set(planned.map((entry) => entry.file))];
  for (const file of files) {
    const operations = planned.filter((entry) => entry.file === file);
    describe(`${name} against ${file}`, () => {
      let prism: RunningPrism | undefined;
      beforeAll(async () => {
        prism = await startPrism(file);
      }, 70_000);
      afterAll(async () => {
        await prism?.stop();
      });

      const build = (entry: Planned, inputs: Record<string, unknown>): OutboundRequest => {
        const target: CallTarget = { variables: exampleVariables(provider), overrideBaseUrl: `${prism!.origin}${entry.mockBasePath}` };
        return addAuth(provider, buildRequest(provider, entry.operation, inputs, target, { idempotencyKey: `test-${randomBytes(6).toString('hex')}` }));
      };

      it.each(operations.map((entry) => [entry.operation, entry] as const))('%s is accepted', async (_operation, entry) => {
        const example = provider.spec.operations[entry.operation]!.example as Record<string, unknown> | undefined;
        expect(example, `${name}.${entry.operation} has no example`).toBeDefined();
        const built = build(entry, example!);
        const answer = await send(built);
        const errors = answer.violations.filter(isError);
        expect({ status: answer.status, errors }, `${built.method} ${built.url.pathname}\n${prism!.log().slice(-1500)}`).toEqual({
          status: expect.toSatisfy((status: number) => status >= 200 && status < 300) as number,
          errors: [],
        });
      });

      const refusal = broken[name];
      const refusalEntry = refusal === undefined ? undefined : operations.find((entry) => entry.operation === refusal.operation);
      if (refusal !== undefined && refusalEntry !== undefined) {
        it(`refuses ${refusal.operation} without ${refusal.drop}`, async () => {
          const example = provider.spec.operations[refusal.operation]!.example as Record<string, unknown>;
          expect(example[refusal.drop], `the example of ${refusal.operation} sets ${refusal.drop}`).toBeDefined();
          const answer = await send(withoutField(build(refusalEntry, example), refusal.drop));
          expect(answer.status).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          const errors = answer.violations.filter(isError);
          expect(errors.length).toBeGreaterThan(0);
          expect(JSON.stringify(errors)).toContain(refusal.drop);
        });
      }
    });
  }
}

it('names a refusal case for every provider with a vendored description', () => {
  expect([...plans.keys()].filter((name) => broken[name] === undefined)).toEqual([]);
});
