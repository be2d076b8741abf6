import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import {
  compileCondition,
  compileMapping,
  evaluateCondition,
  evaluateMapping,
  repeatsRepeatedGroup,
  type MappingLimits,
} from '../../engine/mapping/evaluate.js';
import type { PatchbayError } from '../../engine/diag/errors.js';
import { rejection, thrown } from '../support/errors.js';

/** Freezes a value and everything in it, so a test fails if evaluation writes to its input. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

const input = deepFreeze({
  event: {
    id: 'evt_1',
    type: 'payment_intent.succeeded',
    data: {
      object: {
        id: 'pi_1',
        amount: 123456,
        currency: 'eur',
        metadata: { order_id: 'A-17' },
        items: [
          { sku: 'S1', qty: 1 },
          { sku: 'S2', qty: 3 },
        ],
        empty: [],
      },
    },
  },
  steps: { lookup: { output: { email: 'ada@example.test', tags: ['vip'] }, status: 'succeeded' } },
  vars: { channel: '#sales', threshold: 100 },
  trigger: { kind: 'webhook' },
});

const evaluate = (value: unknown, limits?: MappingLimits, document: unknown = input) =>
  evaluateMapping(compileMapping(value, 'with'), document, limits);

describe('compileMapping and evaluateMapping: shapes and types', () => {
  it('keeps literals, and strings without braces, as they are', async () => {
    const value = { a: 1, b: true, c: null, d: 'plain { text }', e: [1, 'x', { f: 2.5 }] };
    expect(await evaluate(value)).toEqual(value);
  });

  it('gives a whole template the type of its expression', async () => {
    expect(
      await evaluate({
        amount: '{{ event.data.object.amount }}',
        spaced: '  {{ event.data.object.amount / 100 }} ',
        flag: '{{ vars.threshold > 10 }}',
        object: '{{ event.data.object.metadata }}',
        list: '{{ steps.lookup.output.tags }}',
        computed: "{{ {'total': $sum(event.data.object.items.qty)} }}",
      }),
    ).toEqual({
      amount: 123456,
      spaced: 1234.56,
      flag: true,
      object: { order_id: 'A-17' },
      list: ['vip'],
      computed: { total: 4 },
    });
  });

  it('builds text around expressions, stringifying non-strings as $string does and undefined as empty', async () => {
    expect(
      await evaluate({
        text: 'Order {{ event.data.object.metadata.order_id }} for {{ event.data.object.amount }} {{ $uppercase(event.data.object.currency) }}',
        float: 'sum={{ 0.1 + 0.2 }}',
        object: 'meta={{ event.data.object.metadata }}',
        missing: '[{{ event.nothing }}]',
        flag: '{{ true }}!',
      }),
    ).toEqual({
      text: 'Order A-17 for 123456 EUR',
      float: 'sum=0.3',
      object: 'meta={"order_id":"A-17"}',
      missing: '[]',
      flag: 'true!',
    });
  });

  it('leaves out fields and array items whose whole template is undefined', async () => {
    expect(await evaluate({ kept: '{{ event.id }}', dropped: '{{ event.nothing }}', list: ['{{ event.nothing }}', 1, '{{ event.id }}'] })).toEqual({
      kept: 'evt_1',
      list: [1, 'evt_1'],
    });
    expect(Object.keys((await evaluate({ dropped: '{{ event.nothing }}' })) as object)).toEqual([]);
    expect(await evaluate('{{ event.nothing }}')).toBeUndefined();
  });

  it('returns plain JSON: sequences become plain arrays and functions are dropped', async () => {
    const result = (await evaluate({ skus: '{{ event.data.object.items.sku }}', fn: '{{ function($x){ $x } }}', nested: "{{ {'q': event.data.object.items.qty} }}" })) as Record<
      string,
      unknown
    >;
    expect(result).toEqual({ skus: ['S1', 'S2'], nested: { q: [1, 3] } });
    expect(Object.keys(result)).toEqual(['skus', 'nested']);
    const skus = result.skus as unknown[];
    expect(Object.keys(skus)).toEqual(['0', '1']);
    expect(Object.keys((result.nested as { q: unknown[] }).q)).toEqual(['0', '1']);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });

  it('reads plain paths as JSONata does, through arrays and missing keys', async () => {
    const document = deepFreeze({ a: { list: [{ b: 1 }, { b: 2 }], nil: null, str: 'x', arr: [[1], [2]] } });
    expect(await evaluate({ through: '{{ a.list.b }}', nil: '{{ a.nil.b }}', str: '{{ a.str.length }}', proto: '{{ a.constructor }}', arr: '{{ a.arr }}' }, undefined, document)).toEqual({
      through: [1, 2],
      arr: [[1], [2]],
    });
  });

  it('reads the whole input document: event, steps, vars and trigger', async () => {
    expect(await evaluate(['{{ steps.lookup.output.email }}', '{{ steps.lookup.status }}', '{{ vars.channel }}', '{{ trigger.kind }}'])).toEqual([
      'ada@example.test',
      'succeeded',
      '#sales',
      'webhook',
    ]);
  });

  it('never writes to the input (transforms clone it)', async () => {
    expect(await evaluate("{{ event.data.object ~> | metadata | {'order_id': 'changed'} | }}")).toMatchObject({ metadata: { order_id: 'changed' } });
    expect(input.event.data.object.metadata.order_id).toBe('A-17');
  });

  it('copies a __proto__ key as data, not as a prototype', async () => {
    const value = JSON.parse('{"__proto__": {"polluted": "{{ event.id }}"}}') as unknown;
    const result = (await evaluate(value)) as Record<string, unknown>;
    expect(Object.keys(result)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('evaluates a compiled mapping many times with the same result', async () => {
    const compiled = compileMapping({ to: '{{ event.id }}-{{ $count(event.data.object.items) }}' }, 'with');
    const results = await Promise.all(Array.from({ length: 20 }, () => evaluateMapping(compiled, input)));
    expect(new Set(results.map((r) => JSON.stringify(r)))).toEqual(new Set(['{"to":"evt_1-2"}']));
  });
});

describe('compileMapping: errors name the field', () => {
  it('reports JSONata syntax errors with their code and position', () => {
    const error = thrown(() => compileMapping({ body: { items: [1, { name: '{{ event.( }}' }] } }, 'steps[2].with'));
    expect(error.code).toBe('PB_EXPR_SYNTAX');
    expect(error.message).toMatch(/^steps\[2\]\.with\.body\.items\[1\]\.name: JSONata S0\d{3} at position \d+: /);
  });

  it('quotes keys that are not names', () => {
    expect(thrown(() => compileMapping({ 'x-y z': '{{ ) }}' }, 'with')).message).toMatch(/^with\["x-y z"\]: /);
  });

  it('refuses an unterminated {{ and an over-long expression', () => {
    const open = thrown(() => compileMapping({ to: 'a {{ event.id' }, 'with'));
    expect([open.code, open.message]).toEqual(['PB_EXPR_UNTERMINATED', 'with.to: the `{{` at offset 2 has no matching `}}`']);
    const long = thrown(() => compileMapping({ to: `{{ ${'1 + '.repeat(2_600)}1 }}` }, 'with'));
    expect(long.code).toBe('PB_EXPR_TOO_LONG');
  });

  it('refuses a regular expression that repeats a repeated group', () => {
    const error = thrown(() => compileMapping({ ok: "{{ $match('aaaa!', /(a+)+$/) }}" }, 'with'));
    expect(error.code).toBe('PB_MAPPING_UNSAFE_REGEX');
    expect(error.message).toContain('with.ok: the regular expression /(a+)+$/');
    expect(thrown(() => compileCondition('$contains(event.id, /(?:\\w*x)*y/)', 'if')).code).toBe('PB_MAPPING_UNSAFE_REGEX');
  });
});

describe('repeatsRepeatedGroup', () => {
  it.each(['(a+)+', '(a*)*', '(\\w+\\s?)*$', '(?:a{2,})+', '((ab)*c)+', '(a+){2,5}', '(x+)+?'])('flags %s', (source) => {
    expect(repeatsRepeatedGroup(source)).toBe(true);
  });
  it.each(['a+b+', '(ab)+', '(a|b)+', '[(a+)]+', '\\(a+\\)+', '(a+)?', '(a{2,3})+', '(a+){1}', 'x{3}'])('accepts %s', (source) => {
    expect(repeatsRepeatedGroup(source)).toBe(false);
  });
});

describe('compileCondition and evaluateCondition', () => {
  it.each([
    ["''", false],
    ["'false'", true],
    ['0', false],
    ['0.5', true],
    ['null', false],
    ['[]', false],
    ['[0]', false],
    ['[0, 1]', true],
    ['{}', false],
    ["{'a': 0}", true],
    ['event.nothing', false],
    ['function($x){ $x }', false],
    ['event.data.object.amount > vars.threshold', true],
  ])('reads %s as %s (JSONata $boolean)', async (expression, expected) => {
    expect(await evaluateCondition(compileCondition(expression, 'if'), input)).toBe(expected);
  });

  it('accepts the {{ }} form too', async () => {
    expect(await evaluateCondition(compileCondition("{{ event.type = 'payment_intent.succeeded' }}", 'if'), input)).toBe(true);
    expect(await evaluateCondition(compileCondition("{{ event.type = 'other' }}", 'if'), input)).toBe(false);
  });

  it('names the condition in its errors', () => {
    expect(thrown(() => compileCondition('event.(', 'steps[0].if')).message).toMatch(/^steps\[0\]\.if: JSONata S0/);
  });
});

describe('evaluateMapping: run-time errors', () => {
  it('reports a JSONata error with the field, its code and position', async () => {
    const error = await rejection(evaluate({ total: "{{ event.id - 'x' }}" }));
    expect(error.code).toBe('PB_MAPPING_ERROR');
    expect(error.retry).toBe('terminal');
    expect(error.message).toMatch(/^with\.total: JSONata T2001 at position 11: The left side of the "-" operator must evaluate to a number/);
  });

  it('reports $error with its message', async () => {
    const error = await rejection(evaluate({ to: "x{{ $error('no customer') }}" }));
    expect(error.message).toMatch(/^with\.to: JSONata D3137 at position \d+: no customer$/);
  });

  /** A customer as a provider or webhook sends it: none of these values may reach a message. */
  const customer = { event: { name: 'Jane Q. Private', email: 'jane.private@example.test', n: 987654321, card: { holder: 'Jane Q. Private', last4: '4242' } } };
  const customerValues = ['Jane', 'Private', 'jane.private', 'example.test', '987654321', '4242'];

  it.each([
    ['$number(event.name)', 'D3030', 'Unable to cast value to a number: <string>'],
    ['-event.email', 'D1002', 'Cannot negate a non-numeric value: <string>'],
    ['event.name < event.n', 'T2009', 'The values <string> and <number> either side of operator "<" must be of the same data type'],
    ['{ event.email: 1, event.email: 2 }', 'D1009', 'Multiple key definitions evaluate to same key: <string>'],
    ['{ event.n: event.name }', 'T1003', 'Key in object structure must evaluate to a string; got: <number>'],
    ['$sqrt(-event.n)', 'D3060', 'The sqrt function cannot be applied to a negative number: <number>'],
    ['$power(event.n, 99)', 'D3061', 'base=<number>, exponent=<number>'],
    ['$toMillis(event.email)', 'D3110', 'ISO 8601 formatted timestamp. Given <string>'],
    ['$formatInteger(event.n, event.card.holder)', 'D3130', 'a sequence starting with <string> is not'],
    ['$decodeUrl(event.name & "%E0%A4%A")', 'D3140', 'Malformed URL passed to $decodeUrl(): <string>'],
    ['$error(event.email)', 'D3137', '<a message built from the data>'],
    ["$error('no card for ' & event.card.holder)", 'D3137', '<a message built from the data>'],
    ['$assert(false, event.name)', 'D3141', '<a message built from the data>'],
    ['$substring(event.card)', 'T0410', 'Argument 1 of function "substring" does not match'],
  ])('never quotes a value from the data: %s', async (expression, code, text) => {
    const error = await rejection(evaluate({ out: `{{ ${expression} }}` }, undefined, customer));
    expect(error.code).toBe('PB_MAPPING_ERROR');
    expect(error.message).toMatch(new RegExp(`^with\\.out: JSONata ${code} at position \\d+: `));
    expect(error.message).toContain(text);
    for (const value of customerValues) expect(error.message).not.toContain(value);
    // JSONata's error holds the values too: it is not kept as the cause.
    expect(error.cause).toBeUndefined();
  });

  it('keeps an $error text that the expression spells out, and leaves a width from the data out of a $pad message', async () => {
    expect((await rejection(evaluate('{{ $error("Jane has no account") }}', undefined, customer))).message).toMatch(/: Jane has no account$/);
    // The text of `$error(event.x)` also occurs in the source by chance; only a whole literal counts.
    expect((await rejection(evaluate({ out: '{{ $error(event.x) }}' }, undefined, { event: { x: 'x' } }))).message).toMatch(/: <a message built from the data>$/);
    const wide = await rejection(evaluate('{{ $pad("", event.n) }}', undefined, customer));
    expect(wide.code).toBe('PB_MAPPING_TOO_LARGE');
    expect(wide.message).not.toContain('987654321');
  });

  it('refuses $eval, which would escape the compile-time checks', async () => {
    const error = await rejection(evaluate({ to: "{{ $eval('1 + 1') }}" }));
    expect(error.code).toBe('PB_MAPPING_ERROR');
    expect(error.message).toContain('$eval is not available');
  });
});

/** Hostile expressions, each with the code that must stop it and what its message says stopped it. */
const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
const hostile: [string, string, string, RegExp, MappingLimits?][] = [
  ['non-tail infinite recursion', '($f := function($x){ 1 + $f($x) }; $f(1))', 'PB_MAPPING_TOO_DEEP', /nested deeper than 200 frames/],
  ['tail-call infinite recursion (no nesting: the clock stops it)', '($f := function($x){ $f($x) }; $f(1))', 'PB_MAPPING_TIMEOUT', /longer than 100 ms/, { timeoutMs: 100 }],
  ['a nested loop over large ranges', '$sum([1..50000].($x := $; $sum([1..50000].($ * $x))))', 'PB_MAPPING_TIMEOUT', /longer than 100 ms/, { timeoutMs: 100 }],
  ['a string doubled forty times', "$reduce([1..40], function($a, $b){ $a & $a }, 'xxxxxxxxxx')", 'PB_MAPPING_TOO_LARGE', /a string of 1310720 characters/],
  ['$pad to a hundred million characters', "$pad('', 100000000)", 'PB_MAPPING_TOO_LARGE', /\$pad to a width beyond the string limit of 1048576/],
  ['$pad with a long fill', "$pad('a', -100000, $pad('', 1000, 'xy'))", 'PB_MAPPING_TOO_LARGE', /\$pad to a width beyond the string limit/],
  ['a range of ten million items', '$sum([1..10000000])', 'PB_MAPPING_TOO_LARGE', /D2015 .*longer than 100000 items/],
  ['$join of many long strings', "$join([1..2000].$pad('', 1000, 'z'))", 'PB_MAPPING_TOO_LARGE', /\$join would build a string of 2000000/],
  ['$string of many references to one long string', "($s := $pad('', 1000000, 'q'); $string([1..1000].$s))", 'PB_MAPPING_TOO_LARGE', /\$string of a value/],
  ['& on many references to one long string', "($s := $pad('', 1000000, 'q'); [1..1000].$s & '')", 'PB_MAPPING_TOO_LARGE', /is turned into a string/],
  ['a path flattening many references to one long array', '($a := [1..50000]; $count([1..50000].$a))', 'PB_MAPPING_TOO_LARGE', /a sequence grew past the limit of 100000/],
  [
    'deep equality of two huge shared structures',
    '($a := [1..20000]; $b := $map([1..20000], function(){ $a }); $c := $map([1..20000], function(){ $a }); $b = $c)',
    'PB_MAPPING_TOO_LARGE',
    /is compared/,
  ],
  ['$keys over many references to one wide object', '($o := event.wide; $keys([1..20000].$o))', 'PB_MAPPING_TOO_LARGE', /\$keys over more than 100000 keys/],
];

describe('evaluateMapping: limits stop hostile expressions while other evaluations go on', () => {
  it.each(hostile)('stops %s', async (_name, expression, code, reason, limits) => {
    const started = performance.now();
    // A size or depth limit must win on its own: a loaded CI machine must not turn it into a timeout.
    const effective = code === 'PB_MAPPING_TIMEOUT' ? limits : { timeoutMs: 5_000, ...limits };
    const bad = evaluate({ evil: `{{ ${expression} }}` }, effective, { event: { wide } }).then(
      () => ({ code: 'resolved', message: '', at: performance.now() }),
      (error: PatchbayError) => ({ code: error.code as string, message: error.message, at: performance.now() }),
    );
    // Normal evaluations started while the hostile one runs must complete, and before it ends.
    const normal = Array.from({ length: 5 }, async () => {
      const value = await evaluate({ to: '{{ $uppercase(event.data.object.currency) }}-{{ $sum(event.data.object.items.qty) }}' });
      return { value, at: performance.now() };
    });
    const [outcome, ...done] = await Promise.all([bad, ...normal]);
    expect(outcome.code).toBe(code);
    expect(outcome.message).toMatch(/^with\.evil: /);
    expect(outcome.message).toMatch(reason);
    for (const result of done) {
      expect(result.value).toEqual({ to: 'EUR-4' });
      if (code === 'PB_MAPPING_TIMEOUT') expect(result.at).toBeLessThan(outcome.at);
    }
    // Each is stopped long before it could finish (or run the machine out of memory).
    expect(outcome.at - started).toBeLessThan(2_000);
  });

  it('uses the limits given: items, depth, string length and result size', async () => {
    expect(await evaluate('{{ $count([1..10]) }}', { maxItems: 10 })).toBe(10);
    expect((await rejection(evaluate('{{ $count([1..11]) }}', { maxItems: 10 }))).code).toBe('PB_MAPPING_TOO_LARGE');
    expect((await rejection(evaluate("{{ [1..6].'x' }}", { maxItems: 5 }))).code).toBe('PB_MAPPING_TOO_LARGE');
    const factorial = '{{ ($f := function($n){ $n <= 1 ? 1 : $n * $f($n - 1) }; $f(40)) }}';
    expect(await evaluate(factorial)).toBeGreaterThan(8e47);
    expect((await rejection(evaluate(factorial, { maxDepth: 50 }))).code).toBe('PB_MAPPING_TOO_DEEP');
    expect(await evaluate("{{ $pad('', 10, '-') }}", { maxStringLength: 10 })).toBe('----------');
    expect((await rejection(evaluate("{{ $pad('', 11, '-') }}", { maxStringLength: 10 }))).code).toBe('PB_MAPPING_TOO_LARGE');
    expect((await rejection(evaluate("{{ 'abcdef' & 'ghijk' }}", { maxStringLength: 10 }))).code).toBe('PB_MAPPING_TOO_LARGE');
    expect((await rejection(evaluate('x{{ event.data.object }}', { maxStringLength: 50 }))).code).toBe('PB_MAPPING_TOO_LARGE');
    expect((await rejection(evaluate('{{ event }}', { maxResultLength: 100 }))).code).toBe('PB_MAPPING_TOO_LARGE');
    expect(await evaluate('{{ event.id }}', { maxResultLength: 100 })).toBe('evt_1');
  });

  it('times out a mapping of many fields on one budget', async () => {
    const slow = '{{ $count([1..20000].($string($))) }}';
    const value = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`f${i}`, slow]));
    const error = await rejection(evaluate(value, { timeoutMs: 50 }));
    expect(error.code).toBe('PB_MAPPING_TIMEOUT');
    expect(error.message).toMatch(/^with\.f\d+: the evaluation took longer than 50 ms/);
  });

  it('stops every branch of a failed evaluation: no CPU is spent after it rejects', async () => {
    // The array constructor evaluates its items concurrently: when the first fails, the endless
    // second must stop at its next step instead of running until the deadline.
    const error = await rejection(evaluate("{{ [($l := function($x){ $l($x) }; $l(1)), [1..5].($pad('', 2000000))] }}", { timeoutMs: 5_000 }));
    expect(error.code).toBe('PB_MAPPING_TOO_LARGE');
    const before = process.cpuUsage();
    const wallStart = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const used = process.cpuUsage(before);
    const wallMs = performance.now() - wallStart;
    expect((used.user + used.system) / 1000).toBeLessThan(wallMs / 3);
  });

  it('lets timers and network I/O of other runs through while a long evaluation runs', async () => {
    const server = createServer((_request, response) => response.end('pong'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const started = performance.now();
      const endless = rejection(evaluate('{{ ($f := function($x){ $f($x) }; $f(1)) }}', { timeoutMs: 600 }));
      const timerAt = await new Promise<number>((resolve) => setTimeout(() => resolve(performance.now()), 5));
      const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      const answeredAt = performance.now();
      const error = await endless;
      expect(error.code).toBe('PB_MAPPING_TIMEOUT');
      expect(body).toBe('pong');
      // Both well inside the 600 ms the endless evaluation runs for.
      expect(timerAt - started).toBeLessThan(150);
      expect(answeredAt - started).toBeLessThan(300);
      expect(performance.now() - started).toBeGreaterThanOrEqual(590);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('computes $distinct of a large array quickly and as JSONata does', async () => {
    const started = performance.now();
    expect(await evaluate('{{ $count($distinct($append([1..50000], [1..50000]))) }}')).toBe(50_000);
    expect(await evaluate("{{ $distinct([1..3000].({'a': $ % 2, 'b': 'x'}) ~> $append([{'b': 'x', 'a': 1}])) }}")).toEqual([
      { a: 1, b: 'x' },
      { a: 0, b: 'x' },
    ]);
    expect(await evaluate('{{ $distinct([1, 2, 1, 3]) }}')).toEqual([1, 2, 3]);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('keeps the safer built-ins working as the originals on ordinary input', async () => {
    expect(
      await evaluate({
        pad: "{{ $pad('ab', -5, '#') }}",
        join: "{{ $join(['a', 'b', 'c'], '-') }}",
        string: "{{ $string({'a': [1, 0.1 + 0.2]}) }}",
        pretty: "{{ $string({'a': 1}, true) }}",
        keys: "{{ $keys([{'a': 1}, {'b': 2}]) }}",
        spread: "{{ $spread({'a': 1, 'b': 2}) }}",
      }),
    ).toEqual({
      pad: '###ab',
      join: 'a-b-c',
      string: '{"a":[1,0.3]}',
      pretty: '{\n  "a": 1\n}',
      keys: ['a', 'b'],
      spread: [{ a: 1 }, { b: 2 }],
    });
  });
});

describe('evaluateMapping: regular expressions run in bounded time on event data', () => {
  /** 44 letters and a near miss: the backtracking engine tries every split of them (90 s measured). */
  const nearMiss = `${'a'.repeat(44)}b`;

  const timed = async <T>(run: () => Promise<T> | T): Promise<{ value: T; ms: number }> => {
    const started = performance.now();
    const value = await run();
    return { value, ms: performance.now() - started };
  };

  it('runs an ambiguous alternation on a 45-character near miss in milliseconds', async () => {
    const { value, ms } = await timed(() => evaluate({ hit: '{{ $contains(event.s, /^(a|aa)+$/) }}' }, undefined, { event: { s: nearMiss } }));
    expect(value).toEqual({ hit: false });
    expect(ms).toBeLessThan(1_000);
  });

  it('has turned on V8\'s linear fallback for every regular expression of the process, JSONata\'s own included', async () => {
    // Neither goes through the mapping hooks: only the process-wide flag set when the module loaded saves them.
    const plain = await timed(() => new RegExp('^(a|aa)+$').test(nearMiss));
    expect(plain.value).toBe(false);
    expect(plain.ms).toBeLessThan(1_000);
    const bare = await timed(() => jsonata('$contains(s, /^(a|aa)+$/)').evaluate({ s: nearMiss }));
    expect(bare.value).toBe(false);
    expect(bare.ms).toBeLessThan(1_000);
  });

  it('keeps a quadratic pattern linear on the longest subject allowed', async () => {
    // On the backtracking engine this takes about 6 s: no start position backtracks enough for the fallback.
    const { value, ms } = await timed(() => evaluate({ hit: '{{ $contains(event.s, /\\s*x\\s*$/) }}' }, undefined, { event: { s: ' '.repeat(100_000) } }));
    expect(value).toEqual({ hit: false });
    expect(ms).toBeLessThan(1_000);
  });

  it('runs case-insensitive patterns on the linear engine too, rewritten with their case variants', async () => {
    // V8's linear engine cannot run `i`: without the rewrite both take as long as without the engine.
    const alternation = await timed(() => evaluate({ hit: '{{ $contains(event.s, /^(a|aa)+$/i) }}' }, undefined, { event: { s: nearMiss.toUpperCase() } }));
    expect(alternation.value).toEqual({ hit: false });
    expect(alternation.ms).toBeLessThan(1_000);
    const quadratic = await timed(() => evaluate({ hit: '{{ $contains(event.s, /\\s*X\\s*$/i) }}' }, undefined, { event: { s: ' '.repeat(100_000) } }));
    expect(quadratic.value).toEqual({ hit: false });
    expect(quadratic.ms).toBeLessThan(1_000);
    expect(await evaluate("{{ $match('Straße STRASSE µ Μ', /stra[ß]e|µ/i).match }}")).toEqual(['Straße', 'µ', 'Μ']);
  });

  it.each([
    ['$match', '$match(event.s, /a/)'],
    ['$contains', '$contains(event.s, /x/)'],
    ['$replace', "$replace(event.s, /b/, 'c')"],
    ['$split', '$split(event.s, /,/)'],
    ['a regex called as a function', '/q/(event.s)'],
    ['a regex held in a variable', "($r := /q/; $replace(event.s, $r, ''))"],
  ])('refuses to run a regular expression (%s) on a string over 100,000 characters', async (_name, expression) => {
    const secret = `sk_live_${'z'.repeat(100_001)}`;
    const error = await rejection(evaluate({ out: `{{ ${expression} }}` }, undefined, { event: { s: secret } }));
    expect(error.code).toBe('PB_MAPPING_TOO_LARGE');
    expect(error.message).toMatch(/^with\.out: a regular expression is applied to a string of 100009 characters; the limit is 100000/);
    expect(error.message).not.toContain('sk_live_');
  });

  it('lets string patterns through at any length, and takes its limit from the options', async () => {
    const long = { event: { s: `${'y'.repeat(200_000)},x` } };
    expect(await evaluate({ has: "{{ $contains(event.s, ',x') }}", parts: "{{ $count($split(event.s, ',')) }}" }, undefined, long)).toEqual({ has: true, parts: 2 });
    expect(await evaluate('{{ $contains(event.s, /b$/) }}', { maxRegexInputLength: 45 }, { event: { s: nearMiss } })).toBe(true);
    expect((await rejection(evaluate('{{ $contains(event.s, /b$/) }}', { maxRegexInputLength: 44 }, { event: { s: nearMiss } }))).code).toBe('PB_MAPPING_TOO_LARGE');
  });

  it('matches as before: groups, flags, global replacement, split and backreferences', async () => {
    expect(
      await evaluate({
        groups: "{{ $match('x-ab-aab', /(a+)b/) }}",
        replaced: "{{ $replace('a1b22c', /(\\d+)/, '<$1>') }}",
        split: "{{ $split('a1b2c', /\\d/) }}",
        caseless: "{{ $contains('ABC', /b/i) }}",
        multiline: "{{ $match('a\nb', /^b$/m).index }}",
        backreference: "{{ $contains('abab', /(ab)\\1/) }}",
        lookahead: "{{ $replace('price: 100usd', /\\d+(?=usd)/, 'N') }}",
      }),
    ).toEqual({
      groups: [
        { match: 'ab', index: 2, groups: ['a'] },
        { match: 'aab', index: 5, groups: ['aa'] },
      ],
      replaced: 'a<1>b<22>c',
      split: ['a', 'b', 'c'],
      caseless: true,
      multiline: 2,
      backreference: true,
      lookahead: 'price: Nusd',
    });
  });
});
