import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { PatchbayError } from '../../engine/diag/errors.js';
import { parseSource } from '../../engine/manifest/source.js';
import { validateManifests } from '../../engine/manifest/validate.js';
import { chooseLevels, detailLevels } from '../../engine/providers/import/fit.js';
import { locateJsonError, readApiDocument } from '../../engine/providers/import/read-document.js';
import { findExternalRef } from '../../engine/providers/import/references.js';
import { convertSchema, type SchemaDetail, type SchemaNotes } from '../../engine/providers/import/schema-convert.js';
import { firstSentence, redactCredentials, shortenText } from '../../engine/providers/import/text.js';
import {
  baselineFeatures,
  importOpenApi,
  providerSchemaFeatures,
  type OpenApiImportOptions,
  type OpenApiImportResult,
} from '../../engine/providers/openapi-import.js';
import type { ProviderDocument, ProviderOperation } from '../../engine/types/provider.generated.js';
import { repoRoot } from '../support/cli.js';
import { mulberry32 } from '../support/random.js';
import { thrown } from '../support/errors.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'openapi');
const fixture = (name: string) => readFileSync(join(fixtures, name));
const features = providerSchemaFeatures();

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Runs `patchbay validate`'s checks on a generated provider, alone (no catalogue). */
async function validate(yaml: string, name = 'imported'): Promise<{ errors: string[]; warnings: string[] }> {
  const folder = mkdtempSync(join(tmpdir(), 'patchbay-import-test-'));
  folders.push(folder);
  const file = join(folder, `${name}.yaml`);
  writeFileSync(file, yaml);
  const result = await validateManifests({ paths: [file], bundledProviders: false, providerDirs: [], cwd: folder, catalogueSnapshot: false });
  const line = (d: (typeof result.diagnostics)[number]) => `${d.start.line}:${d.start.column} ${d.code} ${d.message}`;
  return {
    errors: result.diagnostics.filter((d) => d.severity === 'error').map(line),
    warnings: result.diagnostics.filter((d) => d.severity === 'warning').map(line),
  };
}

async function importFixture(file: string, options: Partial<OpenApiImportOptions> = {}): Promise<OpenApiImportResult> {
  return importOpenApi(fixture(file), { name: 'imported', sourceName: file, features, ...options });
}

async function importText(text: string, options: Partial<OpenApiImportOptions> = {}): Promise<OpenApiImportResult> {
  return importOpenApi(Buffer.from(text), { name: 'imported', sourceName: 'api.yaml', features, ...options });
}

function operation(result: OpenApiImportResult, name: string): ProviderOperation {
  const op = result.document.spec.operations[name];
  if (!op) throw new Error(`no operation ${name}; have ${Object.keys(result.document.spec.operations).join(', ')}`);
  return op;
}

type InputSchema = { properties: Record<string, Record<string, unknown>>; required?: string[]; additionalProperties?: boolean; anyOf?: unknown[] };
const input = (op: ProviderOperation) => op.input as InputSchema;

async function rejection(promise: Promise<unknown>): Promise<PatchbayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PatchbayError) return error;
    throw error;
  }
  throw new Error('expected a PatchbayError');
}

const minimal = (paths: string, extra = '') => `openapi: 3.0.3
info: { title: Tiny, version: '1' }
servers: [ { url: 'https://api.tiny.test' } ]
${extra}paths:
${paths}`;

describe('reading the description', () => {
  it('points at the position of a JSON syntax error', () => {
    const error = thrown(() => readApiDocument(Buffer.from('{\n  "openapi": "3.0.0",\n  "info": {,}\n}'), 'api.json'));
    expect(error.code).toBe('PB_IMPORT_SYNTAX');
    expect(error.message).toBe('api.json:3:12: not valid JSON: expected a double-quoted property name, found ","');
    const missing = thrown(() => readApiDocument(Buffer.from('{ "paths": { "/a": } }'), 'api.json'));
    expect(missing.message).toBe('api.json:1:20: not valid JSON: expected a value, found "}"');
  });

  it('finds JSON errors exactly where JSON.parse fails, on any Node version (seeded mutations)', () => {
    const valid = readFileSync(join(fixtures, 'notes-3.1.json'), 'utf8');
    const random = mulberry32(20260412);
    const alphabet = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', 'a', '1', '-', '.', 'e', 't', 'n'];
    let invalid = 0;
    for (let round = 0; round < 300; round += 1) {
      let text = valid;
      for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits -= 1) {
        const at = Math.floor(random() * text.length);
        const char = alphabet[Math.floor(random() * alphabet.length)]!;
        const kind = Math.floor(random() * 3);
        text = kind === 0 ? text.slice(0, at) + text.slice(at + 1) : kind === 1 ? text.slice(0, at) + char + text.slice(at) : text.slice(0, at) + char + text.slice(at + 1);
      }
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        // The mutation broke the text: the scan must say so too.
        parses = false;
      }
      const problem = locateJsonError(text);
      expect(problem === undefined, `round ${round}: ${JSON.stringify(problem)}`).toBe(parses);
      if (!parses) invalid += 1;
    }
    expect(invalid).toBeGreaterThan(100);
  });

  it('points at the position of a truncated JSON document', () => {
    const error = thrown(() => readApiDocument(Buffer.from('{\n  "openapi": "3.0.0",\n'), 'api.json'));
    expect(error.code).toBe('PB_IMPORT_SYNTAX');
    expect(error.message).toBe('api.json:3:1: not valid JSON: expected a double-quoted property name, found the end of the document');
  });

  it('points at the position of a YAML syntax error, and refuses duplicate keys', () => {
    const error = thrown(() => readApiDocument(Buffer.from('openapi: 3.0.0\ninfo:\n  title: [a, b\npaths: {}\n'), 'api.yaml'));
    expect(error.code).toBe('PB_IMPORT_SYNTAX');
    expect(error.message).toMatch(/^api\.yaml:\d+:\d+: not valid YAML: /);
    const duplicate = thrown(() => readApiDocument(Buffer.from('openapi: 3.0.0\npaths: {}\npaths: {}\n'), 'api.yaml'));
    expect(duplicate.message).toMatch(/^api\.yaml:3:1: not valid YAML: .*unique/i);
  });

  it('names a Smithy model and points to the aws provider', () => {
    const text = '{\n  "smithy": "2.0",\n  "shapes": {}\n}\n';
    const error = thrown(() => readApiDocument(Buffer.from(text), 's3.json'));
    expect(error.code).toBe('PB_IMPORT_NOT_OPENAPI');
    expect(error.message).toMatch(/^s3\.json:2:3: this is an AWS Smithy model \(smithy 2\.0\), not OpenAPI/);
    expect(error.message).toContain('`aws` provider');
  });

  it('unpacks gzip and names a GraphQL introspection result', () => {
    const gz = gzipSync(JSON.stringify({ data: { __schema: { types: [] } } }));
    const error = thrown(() => readApiDocument(gz, 'admin.json.gz'));
    expect(error.code).toBe('PB_IMPORT_NOT_OPENAPI');
    expect(error.message).toMatch(/^admin\.json\.gz:1:1: this is a GraphQL introspection result \(gzip-compressed\)/);
    expect(error.message).toContain('`graphql` provider');
  });

  it('reads a gzip-compressed OpenAPI description', () => {
    const api = readApiDocument(gzipSync(minimal('  /a: { get: { responses: { 200: { description: ok } } } }\n')), 'api.yaml.gz');
    expect(api.version).toBe('3.0');
  });

  it('refuses binary data, other kinds of documents and other versions', () => {
    const cases: [string | Buffer, RegExp][] = [
      [Buffer.from([0xff, 0xfe, 0x00, 0x01]), /binary data, not UTF-8 text/],
      ['asyncapi: 2.6.0\nchannels: {}\n', /AsyncAPI document/],
      ['apiVersion: patchbay/v1\nkind: Provider\n', /already a Patchbay manifest/],
      ['swagger: "1.2"\n', /Swagger version "1\.2" is not supported/],
      ['openapi: 4.0.0\n', /OpenAPI version "4\.0\.0" is not supported/],
      ['title: something else\n', /no `openapi` \(3\.x\) or `swagger` \(2\.0\) field/],
      ['- a\n- b\n', /the document is a list/],
      ['', /the document is empty/],
    ];
    for (const [text, message] of cases) {
      const error = thrown(() => readApiDocument(typeof text === 'string' ? Buffer.from(text) : text, 'x.yaml'));
      expect(error.code, String(text)).toBe('PB_IMPORT_NOT_OPENAPI');
      expect(error.message).toMatch(message);
    }
  });

  it('accepts unquoted version numbers as YAML writes them', () => {
    expect(readApiDocument(Buffer.from('swagger: 2.0\npaths: {}\n'), 'x.yaml').version).toBe('2.0');
    expect(readApiDocument(Buffer.from('openapi: 3.1\npaths: {}\n'), 'x.yaml').version).toBe('3.1');
  });

  it('refuses a gzip bomb from its unpacked size, without unpacking it all', () => {
    const bomb = gzipSync(Buffer.alloc(65 * 1024 * 1024));
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    const error = thrown(() => readApiDocument(bomb, 'bomb.json.gz'));
    expect(error.code).toBe('PB_IMPORT_INPUT_TOO_LARGE');
  });
});

describe('references', () => {
  it('finds a reference outside the document with its JSON pointer', () => {
    expect(findExternalRef({ a: { b: [{ $ref: '#/x' }, { $ref: 'other.yaml#/Pet' }] } })).toEqual({ ref: 'other.yaml#/Pet', pointer: '/a/b/1' });
    expect(findExternalRef({ a: { $ref: '#/b' }, b: {} })).toBeUndefined();
  });

  it('refuses external and dangling references', async () => {
    const external = await rejection(
      importText(minimal("  /a:\n    get:\n      responses: { '200': { description: ok, content: { application/json: { schema: { $ref: 'https://example.test/pet.json' } } } } }\n")),
    );
    expect(external.code).toBe('PB_IMPORT_BAD_REF');
    expect(external.message).toContain('"https://example.test/pet.json" at /paths/~1a/get/responses/200/content/application~1json/schema');
    const dangling = await rejection(
      importText(minimal("  /a:\n    get:\n      responses: { '200': { description: ok, content: { application/json: { schema: { $ref: '#/components/schemas/Nope' } } } } }\n")),
    );
    expect(dangling.code).toBe('PB_IMPORT_BAD_REF');
  });
});

/** A schema nested `levels` times through `properties`, written as JSON text (JSON.stringify would overflow the stack itself). */
const deepSchemaJson = (levels: number) => `${'{"type":"object","properties":{"p":'.repeat(levels)}{"type":"string"}${'}}'.repeat(levels)}`;

const postBody = (schema: string, components = '') =>
  `{"openapi":"3.0.3","info":{"title":"Deep","version":"1"},"servers":[{"url":"https://api.deep.test"}],` +
  `"paths":{"/a":{"post":{"operationId":"makeA","requestBody":{"required":true,"content":{"application/json":{"schema":${schema}}}},` +
  `"responses":{"200":{"description":"ok"}}}}}${components}}`;

describe('reference cycles, depth and pointers in messages', () => {
  it('refuses a cycle of bare references used as a body, naming where it starts, rather than sending the body raw', async () => {
    const text = postBody('{"$ref":"#/components/schemas/A"}', ',"components":{"schemas":{"A":{"$ref":"#/components/schemas/B"},"B":{"$ref":"#/components/schemas/A"}}}');
    const error = await rejection(importText(text, { sourceName: 'cycle.json' }));
    expect(error.code).toBe('PB_IMPORT_BAD_REF');
    expect(error.message).toBe(
      'cycle.json: $ref "#/components/schemas/A" at /paths/~1a/post/requestBody/content/application~1json/schema leads to a cycle of references with no schema in it ' +
        '(#/components/schemas/A → #/components/schemas/B → #/components/schemas/A); give one of them a schema',
    );
    // A reference to itself, even in a component no operation uses, is the same mistake.
    const self = await rejection(importText(minimal('  /a:\n    get:\n      responses: { \'200\': { description: ok } }\n', 'components: { schemas: { Me: { $ref: \'#/components/schemas/Me\' } } }\n')));
    expect(self.code).toBe('PB_IMPORT_BAD_REF');
    expect(self.message).toBe(
      'api.yaml: $ref "#/components/schemas/Me" at /components/schemas/Me leads to a cycle of references with no schema in it (/components/schemas/Me → #/components/schemas/Me); give one of them a schema',
    );
  });

  it('still imports a recursive schema that has content, cut where it recurses', async () => {
    const text = postBody(
      '{"$ref":"#/components/schemas/Node"}',
      ',"components":{"schemas":{"Node":{"type":"object","properties":{"name":{"type":"string"},"child":{"$ref":"#/components/schemas/Node"}}}}}',
    );
    const result = await importText(text);
    const body = input(operation(result, 'makeA'));
    expect(operation(result, 'makeA').body).toBe('json');
    expect(Object.keys(body.properties)).toEqual(['name', 'child']);
    expect(result.truncatedSchemas).toBeGreaterThan(0);
  });

  it('refuses JSON nested 10,000 levels with PB_IMPORT_TOO_DEEP and the pointer where it goes deep, never a stack overflow', async () => {
    const error = await rejection(importText(postBody(deepSchemaJson(10_000)), { sourceName: 'deep.json' }));
    expect(error.code).toBe('PB_IMPORT_TOO_DEEP');
    expect(error.message).toBe(
      'deep.json: objects and lists nest deeper than 256 levels (with $refs followed) at /paths/~1a/post/requestBody/content/application~1json/schema/properties/p/properties/p/properties/…; no OpenAPI description needs that many, so it is not imported',
    );
  });

  it('refuses YAML nested 10,000 levels (flow) or 2,000 (block) before composing it, with its position', async () => {
    const flow = minimal(
      `  /a:\n    post:\n      responses: { '200': { description: ok } }\n      requestBody:\n        content:\n          application/json:\n            schema: ${'{type: object, properties: {p: '.repeat(10_000)}{type: string}${'}}'.repeat(10_000)}\n`,
    );
    const error = await rejection(importText(flow, { sourceName: 'deep.yaml' }));
    expect(error.code).toBe('PB_IMPORT_TOO_DEEP');
    // Line 11 holds the schema; its 257th mapping (the 124th `properties`' value's parent) opens at column 3892.
    expect(error.message).toBe('deep.yaml:11:3892: the YAML nests mappings and lists deeper than 256 levels here; no OpenAPI description needs that many, so it is not read');
    expect(error.message).not.toMatch(/call stack/i);
    let block = 'openapi: 3.0.3\n';
    for (let level = 0; level < 2000; level += 1) block += `${' '.repeat(level)}k:\n`;
    block += `${' '.repeat(2000)}v: 1\n`;
    const blockError = await rejection(importText(block, { sourceName: 'block.yaml' }));
    expect(blockError.code).toBe('PB_IMPORT_TOO_DEEP');
    // The root mapping opens on line 1; the one at depth d on line d + 1, column d.
    expect(blockError.message).toMatch(/^block\.yaml:258:257: the YAML nests mappings and lists deeper than 256 levels here; /);
  });

  it('counts depth through $refs: a chain of shallow schemas that nests too deep is refused, a deep but sane one imported', async () => {
    const chain = (count: number) => {
      const schemas: string[] = [];
      for (let i = 0; i < count; i += 1) {
        const next = i + 1 < count ? `{"$ref":"#/components/schemas/S${i + 1}"}` : '{"type":"string"}';
        schemas.push(`"S${i}":${deepSchemaJson(9).replace('{"type":"string"}', next)}`);
      }
      return postBody('{"$ref":"#/components/schemas/S0"}', `,"components":{"schemas":{${schemas.join(',')}}}`);
    };
    const error = await rejection(importText(chain(20), { sourceName: 'chain.json' }));
    expect(error.code).toBe('PB_IMPORT_TOO_DEEP');
    expect(error.message).toContain('at /paths/~1a/post/requestBody/content/application~1json/schema → #/components/schemas/S0/properties/p/');
    // 5 × 9 × 2 levels: deep, yet far below the limit; cut to the schema depth bound.
    const result = await importText(chain(5));
    expect(operation(result, 'makeA').body).toBe('json');
    expect(result.truncatedSchemas).toBeGreaterThan(0);
  });

  it('shows JSON pointers intact and masks values it quotes', async () => {
    // The pointer reads like an opaque token to the credential masker (32+ letters and digits, mixed case).
    const pointer = '#/paths/~1a~1p~1application~1json/post/requestBody/content/application~1json/schema/nope';
    const text = `{"openapi":"3.0.3","info":{"title":"t","version":"1"},"servers":[{"url":"https://api.x.test"}],"paths":{"/a/p/application/json":{"post":{"requestBody":{"content":{"application/json":{"schema":{"$ref":"${pointer}"}}}},"responses":{"200":{"description":"ok"}}}}}}`;
    const error = await rejection(importText(text, { sourceName: 'api.json' }));
    expect(error.code).toBe('PB_IMPORT_BAD_REF');
    expect(error.message).toBe(
      `api.json: $ref "${pointer}" at /paths/~1a~1p~1application~1json/post/requestBody/content/application~1json/schema points to nothing in the document`,
    );
    const key = `sk_live_${randomBytes(12).toString('hex')}`;
    const version = thrown(() => readApiDocument(Buffer.from(`openapi: "4.${key}"\n`), 'api.yaml'));
    expect(version.code).toBe('PB_IMPORT_NOT_OPENAPI');
    expect(version.message).not.toContain(key);
    expect(version.message).toContain('[redacted]');
    const external = await rejection(
      importText(minimal(`  /a:\n    get:\n      responses: { '200': { description: ok, content: { application/json: { schema: { $ref: 'https://specs.test/pet.json?token=${key}#/Pet' } } } } }\n`)),
    );
    expect(external.message).toContain('$ref "https://specs.test/pet.json?…#/Pet" at /paths/~1a/get/responses/200/content/application~1json/schema');
    expect(external.message).not.toContain(key);
  });
});

const fullDetail: SchemaDetail = detailLevels[0]!;
const notes = (): SchemaNotes => ({ badPatterns: new Set(), truncated: 0 });

describe('schema conversion', () => {
  const ajv = new Ajv2020.default({ strict: false });

  it('turns OpenAPI 3.0 keywords into JSON Schema 2020-12', () => {
    const converted = convertSchema(
      {
        type: 'object',
        title: 'Thing',
        discriminator: { propertyName: 'kind' },
        xml: { name: 'thing' },
        'x-vendor': true,
        properties: {
          id: { type: 'string', readOnly: true },
          secret: { type: 'string', writeOnly: true },
          size: { type: 'integer', minimum: 1, exclusiveMinimum: true, maximum: 9, format: 'int32' },
          colour: { type: 'string', enum: ['red', 'blue'], nullable: true, example: 'red' },
          note: { nullable: true, description: '  Two\n  lines. ' },
          when: { type: 'string', format: 'date-time' },
        },
        required: ['id', 'size'],
      },
      { version: '3.0', mode: 'input', detail: fullDetail, notes: notes(), depth: 1 },
    );
    expect(converted).toEqual({
      type: 'object',
      properties: {
        secret: { type: 'string' },
        size: { type: 'integer', exclusiveMinimum: 1, maximum: 9 },
        colour: { type: ['string', 'null'], enum: ['red', 'blue', null], examples: ['red'] },
        note: { description: 'Two lines.' },
        when: { type: 'string', format: 'date-time' },
      },
      required: ['size'],
    });
    expect(ajv.validateSchema(converted)).toBe(true);
  });

  it('leaves writeOnly properties out of outputs', () => {
    const converted = convertSchema(
      { type: 'object', properties: { id: { type: 'string', readOnly: true }, secret: { type: 'string', writeOnly: true } } },
      { version: '3.1', mode: 'output', detail: fullDetail, notes: notes() },
    );
    expect(converted).toEqual({ type: 'object', properties: { id: { type: 'string' } } });
  });

  it('drops a pattern that is not a valid regular expression and reports it', () => {
    const found = notes();
    const converted = convertSchema({ type: 'string', pattern: '(?<x' }, { version: '3.0', mode: 'input', detail: fullDetail, notes: found });
    expect(converted).toEqual({ type: 'string' });
    expect([...found.badPatterns]).toEqual(['(?<x']);
  });

  it('cuts a recursive schema and a deep one, and stays valid', () => {
    const tree: Record<string, unknown> = { type: 'object', properties: { name: { type: 'string' } } };
    (tree.properties as Record<string, unknown>).children = { type: 'array', items: tree };
    const found = notes();
    const converted = convertSchema(tree, { version: '3.0', mode: 'output', detail: fullDetail, notes: found });
    expect(converted).toEqual({
      type: 'object',
      properties: { name: { type: 'string' }, children: { type: 'array', items: { type: 'object', description: '(truncated: recursive schema)' } } },
    });
    let deep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 50; i += 1) deep = { type: 'object', properties: { next: deep } };
    const cut = convertSchema(deep, { version: '3.0', mode: 'output', detail: fullDetail, notes: found });
    expect(JSON.stringify(cut).match(/"next"/g)).toHaveLength(fullDetail.maxDepth - 1);
    expect(JSON.stringify(cut)).toContain('(truncated)');
    expect(found.truncated).toBe(2);
    expect(ajv.validateSchema(cut)).toBe(true);
  });

  it('bounds the size of a wide schema', () => {
    const properties: Record<string, unknown> = {};
    for (let i = 0; i < 2000; i += 1) properties[`p${i}`] = { type: 'object', properties: { a: { type: 'string' } } };
    const converted = convertSchema({ type: 'object', properties }, { version: '3.0', mode: 'output', detail: fullDetail, notes: notes() });
    const nested = Object.values(converted.properties as Record<string, { properties?: unknown }>).filter((p) => p.properties !== undefined);
    expect(nested.length).toBeLessThan(fullDetail.maxNodes);
  });
});

describe('text', () => {
  it('shortens at a sentence or a word and strips HTML and link targets', () => {
    expect(shortenText('<p>Creates a <a href="/x">customer</a>.</p>', 100)).toBe('Creates a customer.');
    expect(shortenText('See [the docs](https://example.test/a/b) now.', 100)).toBe('See the docs now.');
    expect(shortenText('Authorization: Basic <api_key>', 100)).toBe('Authorization: Basic <api_key>');
    expect(shortenText('One sentence here. Another sentence that is long enough to be cut.', 30)).toBe('One sentence here.');
    expect(shortenText('word '.repeat(30), 22)).toBe('word word word word…');
    expect(firstSentence('First one. Second.', 100)).toBe('First one.');
    expect(shortenText('', 10)).toBeUndefined();
  });

  it('redacts credential-looking text without breaking YAML', () => {
    const key = `sk_live_${randomBytes(12).toString('hex')}`;
    const { text, redacted } = redactCredentials(`description: use ${key} here\nother: "${key}"\n`);
    expect(redacted).toBe(2);
    expect(text).not.toContain(key);
    expect(parseYaml(text)).toEqual({ description: 'use REDACTED here', other: 'REDACTED' });
  });
});

describe('fitting the size limit', () => {
  it('keeps every operation rich when they fit, and shortens the largest first', () => {
    const sizes = [
      [100, 50, 10],
      [1000, 400, 20],
      [300, 200, 30],
    ];
    expect(chooseLevels(sizes, 10_000)).toEqual([0, 0, 0]);
    expect(chooseLevels(sizes, 900)).toEqual([0, 1, 0]);
    expect(chooseLevels(sizes, 600)).toEqual([0, 2, 0]);
    expect(chooseLevels(sizes, 60)).toEqual([2, 2, 2]);
    expect(chooseLevels(sizes, 50)).toBeUndefined();
  });
});

describe('importing an OpenAPI 3.0 description', () => {
  let result: OpenApiImportResult;
  let spec: ProviderDocument['spec'];
  beforeAll(async () => {
    result = await importFixture('pets-3.0.yaml', { schemaHint: '../schemas/provider.schema.json' });
    spec = result.document.spec;
  });

  it('validates with no errors and no warnings', async () => {
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
  });

  it('writes the header and metadata', () => {
    const [hint, generated] = result.yaml.split('\n');
    expect(hint).toBe('# yaml-language-server: $schema=../schemas/provider.schema.json');
    expect(generated).toBe('# Generated by `patchbay provider import` from pets-3.0.yaml (Pet Clinic 2.1.0, OpenAPI 3.0.3).');
    expect(result.document.metadata).toEqual({ name: 'imported', description: 'Pet Clinic: Pets, owners and visits of a fictional clinic.' });
    expect(spec.displayName).toBe('Pet Clinic');
    expect(spec.docsUrl).toBe('https://docs.petclinic.test/api');
  });

  it('maps servers to the base URL, variables and hosts', () => {
    expect(spec.baseUrl).toBe('https://{region}.api.petclinic.test/v2');
    expect(spec.variables).toEqual({
      region: { description: 'Data region of the account.', default: 'eu', pattern: '^(?:eu|us)$', examples: ['eu', 'us'] },
    });
    expect(spec.hosts).toEqual(['*.api.petclinic.test', 'api.backup.petclinic.test', 'archive.petclinic.test']);
    expect(operation(result, 'getVisit').baseUrl).toBe('https://archive.petclinic.test/v1');
  });

  it('maps security schemes to auth, merging OAuth flows and leaving cookies out', () => {
    expect(spec.auth).toEqual([
      { type: 'bearer', description: 'A clinic API token from the settings page.' },
      { type: 'apiKey', in: 'header', name: 'X-Clinic-Key' },
      {
        type: 'oauth2',
        tokenUrl: 'https://auth.petclinic.test/token',
        authorizeUrl: 'https://auth.petclinic.test/authorize',
        scopes: { 'pets:read': 'Read pets.', 'pets:write': 'Create and change pets.' },
      },
    ]);
    expect(result.notes.map((n) => n.message)).toContain('security scheme "cookieAuth" (apiKey in cookie) left out: keys go in a header or the query');
  });

  it('counts and explains what it skipped', () => {
    expect(result.totalOperations).toBe(13);
    expect(result.skipped).toEqual([
      { operation: 'OPTIONS /pets', reason: 'method OPTIONS is not supported by provider operations (GET, POST, PUT, PATCH, DELETE, HEAD)' },
      { operation: 'TRACE /owners (traceOwners)', reason: 'method TRACE is not supported by provider operations (GET, POST, PUT, PATCH, DELETE, HEAD)' },
    ]);
    expect(result.importedOperations).toBe(11);
    expect(Object.keys(spec.operations)).toHaveLength(11);
  });

  it('places query and header parameters, and leaves out Authorization and cookies', () => {
    const list = operation(result, 'listPets');
    expect(list).toMatchObject({ summary: 'List pets', method: 'GET', path: '/pets', body: 'none', query: ['limit'], headers: { X_Request_Id: 'X-Request-Id' } });
    expect(input(list)).toEqual({
      type: 'object',
      properties: {
        limit: { type: 'integer', description: 'How many pets to return.', minimum: 1, maximum: 100, default: 20 },
        X_Request_Id: { type: 'string', format: 'uuid' },
      },
      additionalProperties: false,
    });
    expect(result.notes).toContainEqual({ operation: 'listPets', message: 'header parameter "Authorization" left out: Patchbay sets it' });
    expect(result.notes).toContainEqual({ operation: 'listPets', message: 'cookie parameter "session" left out: cookies are not supported' });
  });

  it('turns a JSON body into inputs without readOnly fields, with scopes and a summary from the description', () => {
    const create = operation(result, 'createPet');
    expect(create).toMatchObject({ summary: 'Registers a new pet.', method: 'POST', body: 'json', scopes: ['pets:write'], headers: { Idempotency_Key: 'Idempotency-Key' } });
    expect(Object.keys(input(create).properties)).toEqual(['Idempotency_Key', 'name', 'kind', 'weightKg', 'chipId', 'birthday', 'owner', 'notes']);
    expect(input(create).required).toEqual(['Idempotency_Key', 'name']);
    expect(create.output).toMatchObject({ type: 'object', properties: { id: { type: 'string', examples: ['p_123'] } } });
    expect((create.output as InputSchema).properties.chipId).toBeUndefined();
  });

  it('renames path parameters that are not identifiers, in the path too', () => {
    const get = operation(result, 'getPet');
    expect(get).toMatchObject({ summary: 'GET /pets/{pet-id}', docsUrl: 'https://docs.petclinic.test/api/pets#get', path: '/pets/{pet_id}' });
    expect(input(get).required).toEqual(['pet_id']);
    expect(operation(result, 'deletePet').path).toBe('/pets/{pet_id}');
  });

  it('encodes multipart files as base64, form bodies as form, other media types raw', () => {
    expect(operation(result, 'uploadPhoto').body).toBe('multipart');
    expect(input(operation(result, 'uploadPhoto')).properties.file).toEqual({ type: 'string', contentEncoding: 'base64' });
    expect(operation(result, 'replaceNotes')).toMatchObject({ method: 'PUT', body: 'form' });
    expect(input(operation(result, 'replaceNotes')).required).toEqual(['petId', 'text']);
    expect(operation(result, 'importPets')).toMatchObject({ body: 'raw', rawBody: 'body', contentType: 'text/csv' });
    expect(operation(result, 'get_visits')).toMatchObject({ summary: 'List visits', responseFormat: 'text', query: ['since'] });
  });

  it('declares path placeholders without parameters, dedupes names, merges allOf bodies, cuts recursion', () => {
    expect(input(operation(result, 'getClinicTree')).required).toEqual(['clinicId']);
    expect(JSON.stringify(operation(result, 'getClinicTree').output)).toContain('(truncated: recursive schema)');
    const owners = operation(result, 'listPets_2');
    expect(owners.path).toBe('/owners');
    expect(input(owners)).toMatchObject({ required: ['name', 'pets'], additionalProperties: false });
    expect(result.notes).toContainEqual({ operation: 'listPets_2', message: 'named "listPets_2": "listPets" is taken by another operation' });
  });

  it('with the first provider schema, skips what it could not express and reports other servers', async () => {
    const baseline = await importFixture('pets-3.0.yaml', { features: baselineFeatures });
    expect(baseline.skipped.map((s) => s.operation)).toContain('POST /pets/import (importPets)');
    expect(baseline.document.spec.operations.getVisit?.baseUrl).toBeUndefined();
    expect(baseline.notes).toContainEqual({
      operation: 'getVisit',
      message:
        "its server https://archive.petclinic.test/v1 differs from the provider's https://{region}.api.petclinic.test/v2, and provider operations cannot set their own base URL: it will be called at https://{region}.api.petclinic.test/v2",
    });
    expect(await validate(baseline.yaml)).toEqual({ errors: [], warnings: [] });
  });
});

describe('importing an OpenAPI 3.1 description', () => {
  let result: OpenApiImportResult;
  beforeAll(async () => {
    result = await importFixture('notes-3.1.json');
  });

  it('validates with no errors and no warnings', async () => {
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
  });

  it('maps openIdConnect to oauth2 and leaves digest out', () => {
    expect(result.document.spec.auth).toEqual([
      { type: 'oauth2', description: 'OpenID Connect; discovery document: https://login.notebook.test/.well-known/openid-configuration' },
      { type: 'basic' },
    ]);
    expect(result.notes.map((n) => n.message)).toContain('security scheme "digest" (http digest) left out: only bearer and basic are supported');
  });

  it('names operations from operationIds with slashes as dots, prefers JSON bodies', () => {
    expect(Object.keys(result.document.spec.operations)).toEqual([
      'notes.list',
      'notes.create',
      'notes.bulkDelete',
      'notes.share',
      'notes.export',
      'notes.exportExists',
    ]);
    const create = operation(result, 'notes.create');
    expect(create.body).toBe('json');
    expect(input(create).properties).toEqual({
      title: { type: 'string', examples: ['Groceries'] },
      body: { type: ['string', 'null'], description: 'Markdown text. See the syntax.' },
      color: { enum: ['red', 'green', null] },
      pinned: { type: 'boolean', default: false },
    });
  });

  it('keeps 3.1 type lists and numeric exclusive bounds, and reports names that are not identifiers', () => {
    const list = operation(result, 'notes.list');
    expect(list.query).toEqual(['tag[]', 'page_size']);
    expect(input(list).properties.page_size).toEqual({ type: ['integer', 'null'], exclusiveMinimum: 0, maximum: 50 });
    expect(result.notes).toContainEqual({ operation: 'notes.list', message: 'input "tag[]" is not an identifier: kept as written; expressions read it as ["name"]' });
  });

  it('turns oneOf alternatives into one-of input groups, with the content type and path-level server', () => {
    const share = operation(result, 'notes.share');
    expect(share).toMatchObject({ baseUrl: 'https://share.notebook.test', body: 'json', contentType: 'application/merge-patch+json' });
    expect(input(share)).toMatchObject({ required: ['id', 'role'], anyOf: [{ required: ['email'] }, { required: ['group'] }] });
  });

  it('sends a JSON array body raw, reads a PDF answer as binary, and supports HEAD', () => {
    expect(operation(result, 'notes.bulkDelete')).toMatchObject({ body: 'raw', rawBody: 'body', contentType: 'application/json' });
    expect(operation(result, 'notes.export').responseFormat).toBe('binary');
    expect(operation(result, 'notes.exportExists').method).toBe('HEAD');
  });
});

describe('importing a Swagger 2.0 description', () => {
  let result: OpenApiImportResult;
  beforeAll(async () => {
    result = await importFixture('mailer-swagger-2.0.json');
  });

  it('validates with no errors and no warnings', async () => {
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
  });

  it('builds the base URL from https, host and basePath, and converts securityDefinitions', () => {
    expect(result.document.spec.baseUrl).toBe('https://mail.example.test/api');
    expect(result.document.spec.auth).toEqual([
      { type: 'basic', description: 'Account id and password.' },
      { type: 'apiKey', in: 'query', name: 'api_key' },
      {
        type: 'oauth2',
        tokenUrl: 'https://mail.example.test/oauth/token',
        authorizeUrl: 'https://mail.example.test/oauth/authorize',
        scopes: { 'mail:send': 'Send mail', 'mail:read': 'Read mail' },
      },
    ]);
  });

  it('turns formData into a form body, leaving out credential parameters', () => {
    const send = operation(result, 'messages_send');
    expect(send).toMatchObject({ method: 'POST', path: '/messages.send', body: 'form', scopes: ['mail:send'] });
    expect(input(send)).toEqual({
      type: 'object',
      properties: {
        to: { type: 'string', description: 'Recipient address.' },
        subject: { type: 'string' },
        priority: { type: ['integer', 'null'], minimum: 1, maximum: 5 },
      },
      required: ['to'],
      additionalProperties: false,
    });
    expect(result.notes).toContainEqual({ operation: 'messages_send', message: 'header parameter "token" left out: a credential belongs in the connection\'s auth, not in inputs' });
    expect(result.notes).toContainEqual({ operation: 'messages_send', message: 'query parameter "api_key" left out: the connection\'s auth supplies it' });
  });

  it('sends file parameters as multipart and a body parameter as JSON', () => {
    const attach = operation(result, 'attachments_add');
    expect(attach.body).toBe('multipart');
    expect(input(attach).properties.file).toEqual({ type: 'string', contentEncoding: 'base64' });
    const put = operation(result, 'templates_put');
    expect(put).toMatchObject({ method: 'PUT', body: 'json', query: ['dryRun'] });
    expect(input(put).required).toEqual(['name', 'html']);
    expect(input(put).properties.version).toBeUndefined();
  });
});

describe('selecting operations', () => {
  it('by tag, operationId, path prefix and path regex', async () => {
    const names = async (include: string[]) => Object.keys((await importFixture('pets-3.0.yaml', { include })).document.spec.operations);
    expect(await names(['visits'])).toEqual(['get_visits', 'getVisit']);
    expect(await names(['createPet', 'uploadPhoto'])).toEqual(['createPet', 'uploadPhoto']);
    expect(await names(['/pets/{pet-id}'])).toEqual(['getPet', 'deletePet']);
    expect(await names(['^/clinics/'])).toEqual(['getClinicTree']);
    const partial = await importFixture('pets-3.0.yaml', { include: ['visits', 'nothing-like-this'] });
    expect(partial.unmatchedIncludes).toEqual(['nothing-like-this']);
    expect(partial.excludedOperations).toBe(11);
  });

  it('fails when nothing matches, or the regex is invalid', async () => {
    const none = await rejection(importFixture('pets-3.0.yaml', { include: ['nope'] }));
    expect(none.code).toBe('PB_IMPORT_NO_OPERATIONS');
    expect(none.message).toContain('its tags include pets, visits');
    expect((await rejection(importFixture('pets-3.0.yaml', { include: ['^/(pets'] }))).code).toBe('PB_USAGE');
  });
});

describe('base URLs', () => {
  const relative = `openapi: 3.0.3
info: { title: Relative, version: '1' }
servers: [ { url: /api/v3 } ]
paths:
  /things: { get: { operationId: listThings, responses: { '200': { description: ok } } } }
`;

  it('needs --base-url when the only server is relative', async () => {
    const error = await rejection(importText(relative));
    expect(error.code).toBe('PB_IMPORT_NO_BASE_URL');
    expect(error.message).toContain('(its server is "/api/v3")');
    const result = await importText(relative, { baseUrl: 'https://api.example.test/api/v3/' });
    expect(result.document.spec.baseUrl).toBe('https://api.example.test/api/v3');
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
    expect((await rejection(importText(relative, { baseUrl: 'ftp://x' }))).code).toBe('PB_USAGE');
  });

  it('takes the server most operations use as the base', async () => {
    const text = minimal(
      `  /a: { get: { operationId: a, servers: [ { url: 'https://maps.tiny.test' } ], responses: { '200': { description: ok } } } }
  /b: { get: { operationId: b, servers: [ { url: 'https://maps.tiny.test' } ], responses: { '200': { description: ok } } } }
  /c: { get: { operationId: c, responses: { '200': { description: ok } } } }
`,
    );
    const result = await importText(text);
    expect(result.document.spec.baseUrl).toBe('https://maps.tiny.test');
    expect(result.document.spec.hosts).toEqual(['maps.tiny.test', 'api.tiny.test']);
    expect(operation(result, 'c').baseUrl).toBe('https://api.tiny.test');
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
  });
});

describe('limits and hygiene', () => {
  it('fits a large description into the size limit by leaning the largest operations', async () => {
    let paths = '';
    for (let i = 0; i < 40; i += 1) {
      paths += `  /things${i}:\n    post:\n      operationId: createThing${i}\n      summary: Create thing ${i}\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n`;
      for (let p = 0; p < 15; p += 1) paths += `                field${p}: { type: string, description: ${'A long description of this field. '.repeat(5)}, maxLength: 100 }\n`;
      paths += `      responses: { '200': { description: ok } }\n`;
    }
    const text = minimal(paths);
    const full = await importText(text);
    expect(full.reducedOperations).toBe(0);
    const limit = Math.floor(Buffer.byteLength(full.yaml) / 3);
    const fitted = await importText(text, { maxDocumentBytes: limit });
    expect(Buffer.byteLength(fitted.yaml)).toBeLessThanOrEqual(limit);
    expect(fitted.reducedOperations).toBeGreaterThan(0);
    expect(fitted.importedOperations).toBe(40);
    expect(Object.keys(input(operation(fitted, 'createThing7')).properties)).toHaveLength(15);
    expect(fitted.notes.map((n) => n.message).join('\n')).toMatch(/operations were written with leaner schemas/);
    expect(await validate(fitted.yaml)).toEqual({ errors: [], warnings: [] });
    const error = await rejection(importText(text, { maxDocumentBytes: 2000 }));
    expect(error.code).toBe('PB_IMPORT_OUTPUT_TOO_LARGE');
  });

  it('redacts keys quoted in descriptions so the provider validates', async () => {
    const key = `sk_live_${randomBytes(12).toString('hex')}`;
    const result = await importText(
      minimal(`  /a: { get: { operationId: a, summary: 'Use a key like ${key}', responses: { '200': { description: ok } } } }\n`),
    );
    expect(result.yaml).not.toContain(key);
    expect((parseYaml(result.yaml) as ProviderDocument).spec.operations.a?.summary).toBe('Use a key like REDACTED');
    expect(result.notes.map((n) => n.message)).toContain('1 credential-looking strings (example keys in descriptions) replaced by REDACTED');
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
  });

  it('writes YAML that reads back, through the validator\'s parser, as the same document however odd the names', async () => {
    const odd = ['<<', 'on', '~', 'null', 'key: colon', '#hash', '-dash', '&anchor', '*alias', '{{ x }}', '[list]', "it's", '"quoted"', 'ü'];
    const properties = Object.fromEntries(odd.map((name) => [name, { type: 'string', description: `${name} # not a comment: {{ also not }}` }]));
    const text = JSON.stringify({
      openapi: '3.1.0',
      info: { title: 'Odd: names', version: '1' },
      servers: [{ url: 'https://odd.test' }],
      paths: { '/odd': { post: { operationId: 'odd', summary: '- starts like a list item', requestBody: { content: { 'application/json': { schema: { type: 'object', properties } } } }, responses: { '204': { description: 'ok' } } } } },
    });
    const result = await importText(text);
    const parsed = parseSource('odd.yaml', Buffer.from(result.yaml));
    expect(parsed.diagnostics).toEqual([]);
    expect(parsed.documents[0]!.value).toEqual(result.document);
    expect(Object.keys(input(operation(result, 'odd')).properties)).toEqual(odd);
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
  });

  it('derives names for operations without an operationId and keeps a literal query in the path', async () => {
    const result = await importText(
      minimal(`  /v1/items/{itemId}/parts:
    get: { parameters: [ { name: itemId, in: path, required: true, schema: { type: string } } ], responses: { '200': { description: ok } } }
  /responses?beta=true:
    post: { operationId: betaCreate, responses: { '200': { description: ok } } }
`),
    );
    expect(Object.keys(result.document.spec.operations)).toEqual(['get_v1_items_itemId_parts', 'betaCreate']);
    expect(operation(result, 'betaCreate').path).toBe('/responses?beta=true');
    expect(await validate(result.yaml)).toEqual({ errors: [], warnings: [] });
  });
});
