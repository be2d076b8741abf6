import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  buildClientSchema,
  getVariableValues,
  parse,
  validate,
  type GraphQLSchema,
  type IntrospectionQuery,
  type OperationDefinitionNode,
} from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from '../../engine/providers/request-builder.js';
import { bundledProvider } from './bundled.js';

/**
 * Every GraphQL document of the Shopify provider (and the example of its free-form operation)
 * validates against Shopify's own Admin API introspection for the pinned version, and every
 * example's variables coerce to the document's variable types. Documents are taken from the
 * request the engine would send, so what is checked is what goes on the wire.
 */

const introspectionFile = join(import.meta.dirname, '..', 'fixtures', 'specs', 'shopify-admin_2026-07.json.gz');
const shopify = bundledProvider('shopify');
const graphqlOperations = Object.entries(shopify.spec.operations).filter(([, operation]) => operation.body === 'graphql');

let schema: GraphQLSchema;

beforeAll(() => {
  const parsed = JSON.parse(gunzipSync(readFileSync(introspectionFile)).toString('utf8')) as { data?: IntrospectionQuery } & IntrospectionQuery;
  schema = buildClientSchema(parsed.data ?? parsed);
});

/** Validates a document and, when given, the variables of its (chosen) operation. */
function check(document: string, variables: Record<string, unknown> | undefined, operationName?: string): string[] {
  const ast = parse(document);
  const problems = validate(schema, ast).map((error) => error.message);
  if (problems.length > 0) return problems;
  const operations = ast.definitions.filter((definition): definition is OperationDefinitionNode => definition.kind === 'OperationDefinition');
  const operation = operationName === undefined ? operations[0] : operations.find((candidate) => candidate.name?.value === operationName);
  if (operation === undefined) return [`no operation ${operationName ?? ''} in the document`];
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {});
  return (coerced.errors ?? []).map((error) => error.message);
}

describe('Shopify GraphQL documents against the Admin API 2026-07 introspection', () => {
  it('the pinned API version is the introspected one', () => {
    expect(shopify.spec.apiVersion?.default).toBe('2026-07');
  });

  it('has GraphQL operations to check', () => {
    expect(graphqlOperations.length).toBeGreaterThan(0);
  });

  it.each(graphqlOperations.map(([name]) => name))('%s: the document and its example variables are valid', (name) => {
    const operation = shopify.spec.operations[name]!;
    expect(operation.example, `${name} has no example`).toBeDefined();
    const sent = buildRequest(shopify, name, operation.example as Record<string, unknown>, { variables: { shop: 'example-shop' } });
    const payload = JSON.parse(String(sent.body)) as { query: string; variables?: Record<string, unknown>; operationName?: string };
    expect(check(payload.query, payload.variables, payload.operationName)).toEqual([]);
  });

  it('rejects a misspelt field, a wrong argument type and a variable of the wrong type (the check can fail)', () => {
    expect(check('query { shop { nmae } }', {})).toEqual([expect.stringContaining('Cannot query field "nmae"')]);
    expect(check('query { orders(first: "ten") { nodes { id } } }', {}).join('\n')).toMatch(/Int/);
    expect(check('query Q($first: Int!) { orders(first: $first) { nodes { id } } }', { first: 'ten' }).join('\n')).toMatch(/Int/);
  });
});
