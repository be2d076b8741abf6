import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ajvOptions } from '../engine/manifest/schema-check.js';

const root = join(import.meta.dirname, '..');
const names = ['integration', 'provider'] as const;
const schemas = Object.fromEntries(
  names.map((name) => [name, JSON.parse(readFileSync(join(root, 'schemas', `${name}.schema.json`), 'utf8'))]),
) as Record<(typeof names)[number], Record<string, unknown>>;

type SchemaNode = Record<string, unknown>;

function walk(node: unknown, path: string, visit: (node: SchemaNode, path: string) => void): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    node.forEach((item, i) => walk(item, `${path}/${i}`, visit));
    return;
  }
  visit(node as SchemaNode, path);
  for (const [key, value] of Object.entries(node)) {
    if (key === 'examples' || key === 'default' || key === 'const' || key === 'enum') continue;
    walk(value, `${path}/${key}`, visit);
  }
}

function resolveRef(schema: SchemaNode, ref: string): SchemaNode | undefined {
  const name = ref.replace('#/$defs/', '');
  return (schema.$defs as Record<string, SchemaNode>)[name];
}

describe.each(names)('%s schema', (name) => {
  const schema = schemas[name];

  it('is JSON Schema 2020-12 and compiles under Ajv strict mode', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const ajv = new Ajv2020.default(ajvOptions);
    addFormats.default(ajv);
    expect(() => ajv.compile(schema)).not.toThrow();
  });

  it('describes every property for people (directly or through its $ref)', () => {
    const missing: string[] = [];
    walk(schema, '#', (node, path) => {
      const properties = node.properties as Record<string, SchemaNode> | undefined;
      if (!properties || path.endsWith('/properties')) return;
      for (const [key, property] of Object.entries(properties)) {
        const target = typeof property.$ref === 'string' ? resolveRef(schema, property.$ref) : undefined;
        if (!property.description && !target?.description) missing.push(`${path}/properties/${key}`);
      }
    });
    expect(missing).toEqual([]);
  });

  it('closes every object that lists properties, so typos are caught', () => {
    const open: string[] = [];
    walk(schema, '#', (node, path) => {
      if (node.properties && !path.endsWith('/properties') && node.additionalProperties === undefined) open.push(path);
    });
    expect(open).toEqual([]);
  });
});

describe('precompiled validators', () => {
  const precompiled = join(root, 'dist', 'manifest', 'schema-validators.cjs');

  it('are built and agree with validators compiled from schemas/ on every manifest in the repository', () => {
    expect(existsSync(precompiled), 'run npm run build first').toBe(true);
    const built = createRequire(import.meta.url)(precompiled) as Record<string, (value: unknown) => boolean> & {
      [k: string]: { errors?: unknown[] } & ((value: unknown) => boolean);
    };
    const ajv = new Ajv2020.default(ajvOptions);
    addFormats.default(ajv);
    const runtime = { Integration: ajv.compile(schemas.integration), Provider: ajv.compile(schemas.provider) };

    const files: string[] = [];
    const collect = (dir: string) => {
      if (!existsSync(dir)) return;
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) collect(full);
        else if (/\.ya?ml$/.test(entry.name)) files.push(full);
      }
    };
    ['integrations', 'providers', 'test/golden'].forEach((dir) => collect(join(root, dir)));
    let compared = 0;
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        if (doc.errors.length > 0) continue;
        let value: { kind?: string } | null;
        try {
          value = doc.toJS({ maxAliasCount: 100 }) as { kind?: string } | null;
        } catch (error) {
          // The golden alias-bomb case is meant to be refused before schema validation.
          expect(String(error)).toMatch(/alias/i);
          continue;
        }
        const kind = value?.kind;
        if (kind !== 'Integration' && kind !== 'Provider') continue;
        const a = built[kind]!;
        const b = runtime[kind];
        expect(a(value), file).toBe(b(value));
        const strip = (errors: unknown[] | null | undefined) =>
          (errors ?? []).map((e) => {
            const { instancePath, keyword, params } = e as { instancePath: string; keyword: string; params: unknown };
            return { instancePath, keyword, params };
          });
        expect(strip(a.errors), file).toEqual(strip(b.errors));
        compared += 1;
      }
    }
    expect(compared).toBeGreaterThan(5);
  });
});
