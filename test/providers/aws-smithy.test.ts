import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OutboundRequest } from '../../engine/http/request.js';
import { buildRequest } from '../../engine/providers/request-builder.js';
import type { ProviderDocument, ProviderOperation } from '../../engine/types/provider.generated.js';
import { loadBundledProviders } from './bundled.js';

/**
 * AWS publishes no OpenAPI, so Prism cannot check its requests. Instead every `aws` operation
 * is built from its example by the real request builder and checked against the operation's
 * Smithy model (test/fixtures/specs/aws-*.json, vendored by scripts/vendor-specs.mjs):
 * - awsJson (SQS, EventBridge): POST /, `X-Amz-Target: <Service>.<Operation>`, the protocol's
 *   content type, a JSON body;
 * - awsQuery (SNS): POST /, a form body with `Action` and the service `Version`;
 * - restJson1 / restXml (SES v2, Lambda, S3): method and URI from `smithy.api#http`, labels,
 *   query parameters and headers bound as the members' traits say, the payload member as body;
 * and for all: every input the catalogue declares is a member of the operation's input, every
 * member Smithy requires is required by the catalogue, and JSON bodies match the member shapes
 * (names, types, nested required members).
 */

const specsDir = join(import.meta.dirname, '..', 'fixtures', 'specs');

interface Member {
  readonly target: string;
  readonly traits?: Record<string, unknown>;
}

interface Shape {
  readonly type: string;
  readonly input?: { readonly target: string };
  readonly members?: Record<string, Member>;
  readonly member?: Member;
  readonly key?: Member;
  readonly value?: Member;
  readonly traits?: Record<string, unknown>;
  readonly version?: string;
}

interface SmithyIndex {
  readonly models: Record<string, { readonly file: string }>;
  readonly operations: Record<string, { readonly service: string; readonly shape: string }>;
  readonly unmatched: string[];
}

const index = (JSON.parse(readFileSync(join(specsDir, 'index.json'), 'utf8')) as { smithy: SmithyIndex }).smithy;
const aws = loadBundledProviders().get('aws');

const models = new Map<string, Record<string, Shape>>();
function shapesOf(service: string): Record<string, Shape> {
  let shapes = models.get(service);
  if (shapes === undefined) {
    const file = index.models[service]?.file;
    if (file === undefined) throw new Error(`no vendored Smithy model for ${service}`);
    shapes = (JSON.parse(readFileSync(join(specsDir, file), 'utf8')) as { shapes: Record<string, Shape> }).shapes;
    models.set(service, shapes);
  }
  return shapes;
}

const preludeTypes: Record<string, string> = {
  'smithy.api#String': 'string',
  'smithy.api#Integer': 'integer',
  'smithy.api#Long': 'long',
  'smithy.api#Boolean': 'boolean',
  'smithy.api#PrimitiveBoolean': 'boolean',
  'smithy.api#PrimitiveInteger': 'integer',
  'smithy.api#PrimitiveLong': 'long',
  'smithy.api#Timestamp': 'timestamp',
  'smithy.api#Blob': 'blob',
  'smithy.api#Document': 'document',
  'smithy.api#Double': 'double',
  'smithy.api#Float': 'float',
  'smithy.api#Unit': 'structure',
};

function shapeOf(shapes: Record<string, Shape>, id: string): Shape {
  const shape = shapes[id];
  if (shape !== undefined) return shape;
  const prelude = preludeTypes[id];
  if (prelude !== undefined) return { type: prelude };
  throw new Error(`shape ${id} is not in the vendored model`);
}

const has = (member: Member, trait: string) => member.traits !== undefined && Object.hasOwn(member.traits, trait);
const requiredMembers = (shape: Shape) => Object.entries(shape.members ?? {}).filter(([, member]) => has(member, 'smithy.api#required')).map(([name]) => name);

/** Checks a JSON value against a Smithy shape; returns problems with their paths. */
function checkValue(shapes: Record<string, Shape>, id: string, value: unknown, path: string, problems: string[]): void {
  const shape = shapeOf(shapes, id);
  const fail = (what: string) => problems.push(`${path}: ${what}`);
  switch (shape.type) {
    case 'string':
    case 'enum':
    case 'blob':
      if (typeof value !== 'string') fail(`must be a string (${shape.type})`);
      if (shape.type === 'enum' && typeof value === 'string') {
        const values = Object.values(shape.members ?? {}).map((member) => member.traits?.['smithy.api#enumValue']);
        if (!values.includes(value)) fail(`is not one of ${values.join(', ')}`);
      }
      return;
    case 'integer':
    case 'long':
    case 'short':
    case 'byte':
    case 'intEnum':
      if (!Number.isInteger(value)) fail('must be an integer');
      return;
    case 'float':
    case 'double':
    case 'bigDecimal':
      if (typeof value !== 'number') fail('must be a number');
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail('must be a boolean');
      return;
    case 'timestamp':
      if (typeof value !== 'number' && typeof value !== 'string') fail('must be a timestamp');
      return;
    case 'document':
      return;
    case 'list':
    case 'set':
      if (!Array.isArray(value)) return void fail('must be a list');
      value.forEach((item, i) => checkValue(shapes, shape.member!.target, item, `${path}[${i}]`, problems));
      return;
    case 'map':
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return void fail('must be a map');
      for (const [key, inner] of Object.entries(value)) checkValue(shapes, shape.value!.target, inner, `${path}.${key}`, problems);
      return;
    case 'structure':
    case 'union': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return void fail('must be an object');
      const members = shape.members ?? {};
      for (const [key, inner] of Object.entries(value)) {
        const member = members[key] ?? Object.values(members).find((candidate) => candidate.traits?.['smithy.api#jsonName'] === key);
        if (member === undefined) fail(`has no member ${key}`);
        else checkValue(shapes, member.target, inner, `${path}.${key}`, problems);
      }
      if (shape.type === 'structure') {
        for (const name of requiredMembers(shape)) if (!Object.hasOwn(value, name)) fail(`lacks required member ${name}`);
      }
      return;
    }
    default:
      fail(`has an unexpected shape type ${shape.type}`);
  }
}

function bodyText(request: OutboundRequest): string {
  if (request.body === undefined) return '';
  return typeof request.body === 'string' ? request.body : Buffer.from(request.body).toString('utf8');
}

/** Where the catalogue puts an input: path label, query, header, raw body, or the encoded body. */
function placement(operation: ProviderOperation, input: string): 'label' | 'query' | 'header' | 'payload' | 'body' {
  if (new RegExp(`\\{${input}\\+?\\}`).test(operation.path ?? '')) return 'label';
  if ((operation.query ?? []).includes(input)) return 'query';
  if (Object.hasOwn(operation.headers ?? {}, input)) return 'header';
  if (operation.rawBody === input) return 'payload';
  return 'body';
}

/**
 * What is wrong with `operation` (named `name`, of `provider`) against the Smithy operation it
 * calls; empty when nothing is.
 */
function smithyProblems(provider: ProviderDocument, name: string, operation: ProviderOperation, service: string, operationId: string): string[] {
  const problems: string[] = [];
  const expectEqual = (what: string, actual: unknown, expected: unknown) => {
    if (actual !== expected) problems.push(`${what} is ${String(actual)}, the model says ${String(expected)}`);
  };
  const shapes = shapesOf(service);
  const serviceEntry = Object.entries(shapes).find(([, shape]) => shape.type === 'service')!;
  const [serviceId, serviceShape] = serviceEntry;
  const traits = serviceShape.traits ?? {};
  const protocol = ['awsJson1_0', 'awsJson1_1', 'awsQuery', 'restJson1', 'restXml'].find((p) => Object.hasOwn(traits, `aws.protocols#${p}`));
  const smithyOperation = shapeOf(shapes, operationId);
  const input = shapeOf(shapes, smithyOperation.input!.target);
  const members = input.members ?? {};
  const operationName = operationId.split('#')[1]!;

  // The catalogue's inputs are the model's members, bound where the model binds them.
  const schema = operation.input as { properties?: Record<string, unknown>; required?: string[] };
  for (const inputName of Object.keys(schema.properties ?? {})) {
    const member = members[inputName];
    if (member === undefined) {
      problems.push(`input ${inputName} is not a member of ${operationName}'s input`);
      continue;
    }
    if (protocol !== 'restJson1' && protocol !== 'restXml') continue;
    const where = placement(operation, inputName);
    const expected = has(member, 'smithy.api#httpLabel')
      ? 'label'
      : has(member, 'smithy.api#httpQuery')
        ? 'query'
        : has(member, 'smithy.api#httpHeader')
          ? 'header'
          : has(member, 'smithy.api#httpPayload')
            ? 'payload'
            : 'body';
    if (where !== expected) problems.push(`input ${inputName} is sent in the ${where}, the model binds it to the ${expected}`);
    if (where === 'query' && member.traits?.['smithy.api#httpQuery'] !== inputName) problems.push(`query ${inputName} is named ${String(member.traits?.['smithy.api#httpQuery'])} in the model`);
    if (where === 'header') {
      const header = String(member.traits?.['smithy.api#httpHeader']).toLowerCase();
      if (operation.headers![inputName]!.toLowerCase() !== header) problems.push(`header of ${inputName} is ${header} in the model`);
    }
  }
  for (const required of requiredMembers(input)) {
    if (!(schema.required ?? []).includes(required)) problems.push(`member ${required} is required by the model but not by the catalogue`);
  }

  // The request the engine sends for the example.
  const example = operation.example as Record<string, unknown> | undefined;
  if (example === undefined) return [...problems, `${name} has no example`];
  const request = buildRequest({ ...provider, spec: { ...provider.spec, operations: { [name]: operation } } }, name, example, { variables: { region: 'us-east-1' } });
  const contentType = request.headers['content-type'] ?? '';

  if (protocol === 'awsJson1_0' || protocol === 'awsJson1_1') {
    const version = protocol === 'awsJson1_0' ? '1.0' : '1.1';
    expectEqual('method', request.method, 'POST');
    expectEqual('path', request.url.pathname, '/');
    expectEqual('X-Amz-Target', request.headers['x-amz-target'], `${serviceId.split('#')[1]}.${operationName}`);
    expectEqual('content type', contentType, `application/x-amz-json-${version}`);
    checkValue(shapes, smithyOperation.input!.target, JSON.parse(bodyText(request)), operationName, problems);
  } else if (protocol === 'awsQuery') {
    expectEqual('method', request.method, 'POST');
    expectEqual('path', request.url.pathname, '/');
    expectEqual('content type', contentType, 'application/x-www-form-urlencoded');
    const form = new URLSearchParams(bodyText(request));
    expectEqual('Action', form.get('Action'), operationName);
    expectEqual('Version', form.get('Version'), serviceShape.version);
    for (const key of new Set(form.keys())) {
      if (key === 'Action' || key === 'Version') continue;
      if (key.includes('[')) problems.push(`form key ${key}: awsQuery nests with dots (Name.entry.1.Value), not brackets`);
      const top = key.split(/[.[]/)[0]!;
      if (members[top] === undefined) problems.push(`form key ${key} is not a member of ${operationName}'s input`);
    }
    for (const required of requiredMembers(input)) if (!form.has(required)) problems.push(`required member ${required} is not sent`);
  } else {
    const http = smithyOperation.traits?.['smithy.api#http'] as { method: string; uri: string };
    expectEqual('method', request.method, http.method);
    const [uriPath, uriQuery] = http.uri.split('?') as [string, string | undefined];
    const labels: string[] = [];
    const pattern = new RegExp(
      `^${uriPath.replace(/\{([A-Za-z0-9_]+)(\+?)\}|[^{]+/g, (part, label: string | undefined, greedy: string) => {
        if (label === undefined) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        labels.push(label);
        return greedy === '+' ? '(.+)' : '([^/]+)';
      })}$`,
    );
    const match = pattern.exec(request.url.pathname);
    if (match === null) return [...problems, `path ${request.url.pathname} does not match the URI ${uriPath}`];
    labels.forEach((label, i) => {
      const sent = decodeURIComponent(match[i + 1]!);
      if (String(example[label]) !== sent) problems.push(`label ${label} carries ${sent}`);
    });
    const literals = new URLSearchParams(uriQuery ?? '');
    const queryNames = new Set(Object.values(members).map((member) => member.traits?.['smithy.api#httpQuery']).filter((q): q is string => typeof q === 'string'));
    for (const key of new Set(request.url.searchParams.keys())) {
      if (!literals.has(key) && !queryNames.has(key)) problems.push(`query ${key} is neither in the URI nor a query member`);
    }
    for (const [key, value] of literals) {
      if (value !== '' && request.url.searchParams.get(key) !== value) problems.push(`query literal ${key}=${value} of the URI is not sent`);
    }
    const payload = Object.entries(members).find(([, member]) => has(member, 'smithy.api#httpPayload'));
    const bodyMembers = Object.entries(members).filter(([, member]) => !['smithy.api#httpLabel', 'smithy.api#httpQuery', 'smithy.api#httpHeader', 'smithy.api#httpPayload', 'smithy.api#httpPrefixHeaders', 'smithy.api#httpQueryParams', 'smithy.api#httpResponseCode'].some((trait) => has(member, trait)));
    if (payload !== undefined) {
      if (operation.rawBody !== payload[0]) problems.push(`the payload member is ${payload[0]}, the catalogue sends ${String(operation.rawBody)}`);
    } else if (bodyMembers.length > 0 && protocol === 'restJson1') {
      expectEqual('content type', contentType, 'application/json');
      const body = JSON.parse(bodyText(request) || '{}') as Record<string, unknown>;
      const bodyShape: Shape = { type: 'structure', members: Object.fromEntries(bodyMembers) };
      const id = `${operationId}$body`;
      checkValue({ ...shapes, [id]: bodyShape }, id, body, operationName, problems);
    }
    for (const [inputName, header] of Object.entries(operation.headers ?? {})) {
      if (example[inputName] !== undefined && request.headers[header.toLowerCase()] === undefined) problems.push(`header ${header} is not sent`);
    }
  }
  return problems;
}

describe('AWS operations against the Smithy models', () => {
  it('the catalogue has an aws provider, and every operation maps to a vendored Smithy operation', () => {
    expect(aws, 'providers/aws.yaml').toBeDefined();
    const missing = Object.keys(aws?.spec.operations ?? {}).filter((name) => index.operations[name] === undefined);
    expect({ missing, unmatched: index.unmatched }, 'run scripts/vendor-specs.mjs, or fix the operation').toEqual({ missing: [], unmatched: [] });
  });

  const operations = Object.keys(aws?.spec.operations ?? {}).filter((name) => index.operations[name] !== undefined);

  it.each(operations)('%s', (name) => {
    const { service, shape } = index.operations[name]!;
    expect(smithyProblems(aws!, name, aws!.spec.operations[name]!, service, shape)).toEqual([]);
  });

  it('finds what is wrong in broken definitions (the check can fail)', () => {
    const mutate = (name: string, change: (operation: ProviderOperation) => ProviderOperation) => {
      const { service, shape } = index.operations[name]!;
      return smithyProblems(aws!, name, change(structuredClone(aws!.spec.operations[name]!)), service, shape);
    };
    const sqs = mutate('sqs.sendMessage', (operation) => ({
      ...operation,
      fixed: { headers: { 'X-Amz-Target': 'AmazonSQS.SendMesage' } },
      example: { ...(operation.example as object), DelaySeconds: 'soon', Unknown: 1 },
    }));
    expect(sqs.join('\n')).toMatch(/X-Amz-Target is AmazonSQS.SendMesage/);
    expect(sqs.join('\n')).toMatch(/DelaySeconds: must be an integer/);
    expect(sqs.join('\n')).toMatch(/has no member Unknown/);
    const sns = mutate('sns.publish', (operation) => {
      const input = operation.input as { properties: Record<string, unknown>; required: string[] };
      input.properties.MessageAttributes = { type: 'object' };
      input.required = [];
      return { ...operation, example: { ...(operation.example as object), MessageAttributes: { k: { DataType: 'String' } } } };
    });
    expect(sns.join('\n')).toMatch(/awsQuery nests with dots/);
    expect(sns.join('\n')).toMatch(/member Message is required by the model but not by the catalogue/);
    const s3 = mutate('s3.putObject', (operation) => ({ ...operation, headers: { ...operation.headers, ContentType: 'X-Content-Type' }, fixed: { query: { 'x-id': 'PutObject' } } }));
    expect(s3.join('\n')).toMatch(/header of ContentType is content-type in the model/);
    const lambda = mutate('lambda.invoke', (operation) => ({ ...operation, path: '/2015-03-31/function/{FunctionName}/invoke' }));
    expect(lambda.join('\n')).toMatch(/does not match the URI/);
  });
});
