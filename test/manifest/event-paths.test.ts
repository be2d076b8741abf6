import { describe, expect, it } from 'vitest';
import { checkSchemaPath } from '../../engine/manifest/event-paths.js';

const order = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    data: {
      type: 'object',
      properties: {
        object: {
          type: 'object',
          properties: {
            amount: { type: 'integer' },
            currency: { type: 'string' },
            metadata: { type: 'object', additionalProperties: { type: 'string' } },
            items: {
              type: 'array',
              items: { type: 'object', properties: { sku: { type: 'string' }, qty: { type: 'integer' } } },
            },
          },
        },
      },
    },
  },
};

describe('checkSchemaPath', () => {
  it('accepts declared paths', () => {
    expect(checkSchemaPath(order, ['data', 'object', 'amount'])).toEqual({ ok: true });
    expect(checkSchemaPath(order, ['type'])).toEqual({ ok: true });
    expect(checkSchemaPath(order, [])).toEqual({ ok: true });
  });

  it('rejects an undeclared name with its index, the known names and a suggestion', () => {
    expect(checkSchemaPath(order, ['data', 'object', 'amont'])).toEqual({
      ok: false,
      index: 2,
      known: ['amount', 'currency', 'metadata', 'items'],
      suggestion: 'amount',
    });
    expect(checkSchemaPath(order, ['data', 'zzz', 'amount'])).toMatchObject({ ok: false, index: 1, suggestion: undefined });
  });

  it('maps over arrays: a name after an array applies to its items', () => {
    expect(checkSchemaPath(order, ['data', 'object', 'items', 'sku'])).toEqual({ ok: true });
    expect(checkSchemaPath(order, ['data', 'object', 'items', 'skus'])).toMatchObject({ ok: false, index: 3, suggestion: 'sku' });
    const nested = { type: 'array', items: { type: 'array', items: { properties: { sku: {} } } } };
    expect(checkSchemaPath(nested, ['sku'])).toEqual({ ok: true });
    expect(checkSchemaPath(nested, ['skx'])).toMatchObject({ ok: false, index: 0 });
  });

  it('follows additionalProperties schemas and treats additionalProperties: true as open', () => {
    expect(checkSchemaPath(order, ['data', 'object', 'metadata', 'anything'])).toEqual({ ok: true });
    const open = { type: 'object', properties: { a: {} }, additionalProperties: true };
    expect(checkSchemaPath(open, ['b', 'c'])).toEqual({ ok: true });
    const typed = { properties: { a: {} }, additionalProperties: { properties: { x: {} } } };
    expect(checkSchemaPath(typed, ['other', 'x'])).toEqual({ ok: true });
    expect(checkSchemaPath(typed, ['other', 'y'])).toMatchObject({ ok: false, index: 1 });
  });

  it('treats schemas that say nothing as open', () => {
    expect(checkSchemaPath({}, ['a', 'b'])).toEqual({ ok: true });
    expect(checkSchemaPath({ type: 'object' }, ['a'])).toEqual({ ok: true });
    expect(checkSchemaPath(undefined, ['a'])).toEqual({ ok: true });
    expect(checkSchemaPath({ properties: { a: {} } }, ['a', 'deeper', 'still'])).toEqual({ ok: true });
  });

  it('follows patternProperties', () => {
    const schema = { properties: { Body: {} }, patternProperties: { '^MediaUrl[0-9]+$': { properties: { href: {} } } } };
    expect(checkSchemaPath(schema, ['MediaUrl0', 'href'])).toEqual({ ok: true });
    expect(checkSchemaPath(schema, ['MediaUrl0', 'size'])).toMatchObject({ ok: false, index: 1 });
    expect(checkSchemaPath(schema, ['MediaUrlX'])).toMatchObject({ ok: false, index: 0 });
  });

  it('does not throw on a patternProperties key that is not a valid regular expression', () => {
    const schema = { properties: { a: {} }, patternProperties: { '[': { type: 'string' } } };
    expect(() => checkSchemaPath(schema, ['b'])).not.toThrow();
  });

  it('accepts a path when any anyOf/oneOf variant accepts it, and offsets the index otherwise', () => {
    const schema = {
      properties: {
        data: { anyOf: [{ properties: { a: {} } }, { properties: { b: { properties: { c: {} } } } }] },
        other: { oneOf: [{ properties: { x: {} } }, { properties: { y: {} } }] },
      },
    };
    expect(checkSchemaPath(schema, ['data', 'a'])).toEqual({ ok: true });
    expect(checkSchemaPath(schema, ['data', 'b', 'c'])).toEqual({ ok: true });
    expect(checkSchemaPath(schema, ['other', 'y'])).toEqual({ ok: true });
    expect(checkSchemaPath(schema, ['data', 'z'])).toMatchObject({ ok: false, index: 1 });
    expect(checkSchemaPath(schema, ['data', 'b', 'd'])).toMatchObject({ ok: false, index: 1 });
  });

  it('still checks the properties listed beside anyOf/oneOf/allOf', () => {
    // A common idiom: the properties are listed once, the combinator only adds `required` rules.
    const schema = {
      type: 'object',
      properties: { From: {}, MessagingServiceSid: {} },
      anyOf: [{ required: ['From'] }, { required: ['MessagingServiceSid'] }],
    };
    expect(checkSchemaPath(schema, ['From'])).toEqual({ ok: true });
    expect(checkSchemaPath(schema, ['Form'])).toMatchObject({ ok: false, index: 0, suggestion: 'From' });
  });

  it('looks only at own properties, not at Object.prototype', () => {
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(checkSchemaPath({ properties: { a: {} } }, [name]), name).toMatchObject({ ok: false, index: 0 });
    }
  });
});
