import { describe, expect, it } from 'vitest';
import { analyseExpression, type CompiledExpression, type InputReference } from '../../engine/mapping/references.js';

function references(source: string): readonly InputReference[] {
  const result = analyseExpression(source);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(source)} to compile: ${result.message}`);
  return (result as CompiledExpression).references;
}

function names(source: string): string[][] {
  return references(source).map((r) => [...r.names]);
}

describe('analyseExpression: roots', () => {
  it('lists a plain path from the root with every name', () => {
    expect(names('event.data.object.amount')).toEqual([['event', 'data', 'object', 'amount']]);
  });

  it('lists each root path of an operator, a condition and a function call', () => {
    expect(names('vars.a & vars.b')).toEqual([['vars', 'a'], ['vars', 'b']]);
    expect(names('event.x ? vars.y : trigger.z')).toEqual([['event', 'x'], ['vars', 'y'], ['trigger', 'z']]);
    expect(names('$count(steps.fetch.output.list)')).toEqual([['steps', 'fetch', 'output', 'list']]);
    expect(names('event.a in vars.list')).toEqual([['event', 'a'], ['vars', 'list']]);
    expect(names('event.a ~> $string()')).toEqual([['event', 'a']]);
  });

  it('lists paths inside blocks, array and object constructors', () => {
    expect(names('"x" & (event.a)')).toEqual([['event', 'a']]);
    expect(names('[event.a, vars.b]')).toEqual([['event', 'a'], ['vars', 'b']]);
    expect(names('{"a": event.x, "b": steps.s.output}')).toEqual([['event', 'x'], ['steps', 's', 'output']]);
    expect(names('($x := event.a; $x.b)')).toEqual([['event', 'a']]);
  });

  it('reports an unknown root name as a reference like any other (the caller rejects it)', () => {
    expect(names('foo.bar')).toEqual([['foo', 'bar']]);
    expect(names('foo')).toEqual([['foo']]);
  });

  it('lists the operand of a unary minus', () => {
    expect(names('-event.amount')).toEqual([['event', 'amount']]);
    expect(references('-event.amount')[0]!.offsets).toEqual([1, 7]);
    expect(names('-(vars.total)')).toEqual([['vars', 'total']]);
  });

  it('lists each path once, also with the ?: and ?? operators', () => {
    expect(names('event.a ?: vars.b')).toEqual([['event', 'a'], ['vars', 'b']]);
    expect(names('event.a ?? vars.b')).toEqual([['event', 'a'], ['vars', 'b']]);
  });

  it('lists nothing for literals and context variables', () => {
    expect(names('"literal"')).toEqual([]);
    expect(names('42')).toEqual([]);
    expect(names('$')).toEqual([]);
    expect(names('$now()')).toEqual([]);
  });
});

describe('analyseExpression: steps paths', () => {
  it('keeps every name of a steps path up to the first non-name step', () => {
    expect(names('steps.fetch.output.id')).toEqual([['steps', 'fetch', 'output', 'id']]);
    expect(names('steps.fetch.output.items.(price * qty)')).toEqual([['steps', 'fetch', 'output', 'items']]);
    expect(names('steps.fetch.output.items^(price).name')).toEqual([['steps', 'fetch', 'output', 'items']]);
  });

  it('continues through a filter or index on a name', () => {
    expect(names('event.items[0].sku')).toEqual([['event', 'items', 'sku']]);
    expect(names('steps.list.output.items[price > 10].name')).toEqual([['steps', 'list', 'output', 'items', 'name']]);
  });
});

describe('analyseExpression: predicates and lambdas', () => {
  it('does not count names inside a predicate as roots', () => {
    // `price`, `b` and `vars.c` here are relative to each item, not the evaluation input.
    expect(names('event.items[price > 10].name')).toEqual([['event', 'items', 'name']]);
    expect(names('event.a[b = vars.c]')).toEqual([['event', 'a']]);
  });

  it('does not count names inside a sort term as roots', () => {
    expect(names('event.items^(>price)')).toEqual([['event', 'items']]);
  });

  it('reads lambda bodies in the context they were written in, as JSONata evaluates them', () => {
    // `$map(a, function($v){ vars.x })` yields vars.x for each item: the body sees the root.
    expect(names('$map(event.items, function($i) { $i.sku & foo })')).toEqual([['event', 'items'], ['foo']]);
    expect(names('$filter(steps.s.output, function($v) { $v.ok })')).toEqual([['steps', 's', 'output']]);
  });

  it('lists paths read through $$ (the root, from anywhere) and $ at the root', () => {
    expect(names('$$.vars.nope')).toEqual([['vars', 'nope']]);
    expect(names('$.stepz.x')).toEqual([['stepz', 'x']]);
    expect(names('event.items[$$.vars.min < price].sku')).toEqual([['event', 'items', 'sku'], ['vars', 'min']]);
  });
});

describe('analyseExpression: offsets', () => {
  it('points each offset at the first character of its name', () => {
    const source = 'event.data.object.amount';
    const [ref] = references(source);
    expect(ref!.offsets).toEqual([0, 6, 11, 18]);
    ref!.names.forEach((name, i) => expect(source.slice(ref!.offsets[i], ref!.offsets[i]! + name.length)).toBe(name));
  });

  it('accounts for leading spaces, function calls and names after a predicate', () => {
    const cases = [' steps.fetch.output.id', '$count(steps.a.output.list)', 'event.items[price > 10].name', 'vars.a & vars.b'];
    for (const source of cases) {
      for (const ref of references(source)) {
        ref.names.forEach((name, i) => expect(source.slice(ref.offsets[i], ref.offsets[i]! + name.length)).toBe(name));
      }
    }
  });

  it('points a quoted name at its opening quote', () => {
    const [ref] = references('event."quoted key".x');
    expect(ref!.names).toEqual(['event', 'quoted key', 'x']);
    expect(ref!.offsets).toEqual([0, 6, 19]);
    const [backtick] = references('`weird name`.x');
    expect(backtick!.names).toEqual(['weird name', 'x']);
    expect(backtick!.offsets).toEqual([0, 13]);
  });
});

describe('analyseExpression: syntax errors', () => {
  it('returns the offset where the parser stopped, never throwing', () => {
    expect(analyseExpression('event.')).toMatchObject({ ok: false, offset: 5 });
    expect(analyseExpression('(')).toMatchObject({ ok: false, offset: 0 });
    const result = analyseExpression('event.a +');
    expect(result.ok).toBe(false);
  });

  it('keeps the offset inside the expression and the message on one line', () => {
    for (const source of ['', ')', '{{', '"unterminated', 'event.a\n+\n', '$x :=', '(' .repeat(5000)]) {
      const result = analyseExpression(source);
      if (result.ok) continue;
      expect(result.offset).toBeGreaterThanOrEqual(0);
      expect(result.offset).toBeLessThanOrEqual(source.length);
      expect(result.message).not.toMatch(/\n/);
    }
  });
});

describe('analyseExpression: size', () => {
  it('handles a long chain of operators without overflowing the stack', () => {
    const source = Array(5000).fill('event.order.id').join(' & ');
    let result: ReturnType<typeof analyseExpression> | undefined;
    expect(() => {
      result = analyseExpression(source);
    }).not.toThrow();
    if (result?.ok) expect(result.references).toHaveLength(5000);
  });

  it('handles deeply nested parentheses without throwing', () => {
    const source = `${'('.repeat(5000)}event.a${')'.repeat(5000)}`;
    expect(() => analyseExpression(source)).not.toThrow();
  });
});
