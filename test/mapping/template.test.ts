import { describe, expect, it } from 'vitest';
import { conditionExpression, parseTemplate } from '../../engine/mapping/template.js';

describe('parseTemplate', () => {
  it('finds no parts in a plain string', () => {
    expect(parseTemplate('no braces here')).toEqual({ parts: [], whole: false, unterminatedAt: undefined });
    expect(parseTemplate('')).toEqual({ parts: [], whole: false, unterminatedAt: undefined });
    expect(parseTemplate('a { single } brace')).toEqual({ parts: [], whole: false, unterminatedAt: undefined });
  });

  it('marks a string that is exactly one {{ expr }} as whole, surrounding spaces allowed', () => {
    expect(parseTemplate('{{ event.a }}')).toEqual({
      parts: [{ expression: ' event.a ', offset: 2 }],
      whole: true,
      unterminatedAt: undefined,
    });
    const spaced = parseTemplate('  {{ event.a }} ');
    expect(spaced.whole).toBe(true);
    expect(spaced.parts).toEqual([{ expression: ' event.a ', offset: 4 }]);
  });

  it('marks embedded expressions as not whole and gives each offset', () => {
    const template = 'Hi {{ event.name }}, order {{ event.id }}!';
    const parsed = parseTemplate(template);
    expect(parsed.whole).toBe(false);
    expect(parsed.parts.map((p) => p.expression)).toEqual([' event.name ', ' event.id ']);
    for (const part of parsed.parts) {
      expect(template.slice(part.offset, part.offset + part.expression.length)).toBe(part.expression);
      expect(template.slice(part.offset - 2, part.offset)).toBe('{{');
    }
    expect(parseTemplate('{{ a }}{{ b }}').whole).toBe(false);
    expect(parseTemplate('{{ a }} ').whole).toBe(true);
    expect(parseTemplate('x{{ a }}').whole).toBe(false);
  });

  it('respects braces inside string literals of every quote kind', () => {
    expect(parseTemplate('{{ "}}" }}').parts).toEqual([{ expression: ' "}}" ', offset: 2 }]);
    expect(parseTemplate("{{ '}}' }}").parts).toEqual([{ expression: " '}}' ", offset: 2 }]);
    expect(parseTemplate('{{ `}}` }}').parts).toEqual([{ expression: ' `}}` ', offset: 2 }]);
    expect(parseTemplate("{{ '}}' }} and {{ vars.b }}").parts).toEqual([
      { expression: " '}}' ", offset: 2 },
      { expression: ' vars.b ', offset: 17 },
    ]);
  });

  it('handles an escaped quote inside a string literal', () => {
    const parsed = parseTemplate('{{ "a\\"}}" }}');
    expect(parsed.parts).toEqual([{ expression: ' "a\\"}}" ', offset: 2 }]);
    expect(parsed.whole).toBe(true);
  });

  it('closes only at a }} outside the expression\'s own braces', () => {
    expect(parseTemplate('{{ {"a": 1}}}')).toEqual({
      parts: [{ expression: ' {"a": 1}', offset: 2 }],
      whole: true,
      unterminatedAt: undefined,
    });
    expect(parseTemplate('{{ {"a": {"b": 1}}}}').parts[0]!.expression).toBe(' {"a": {"b": 1}}');
    expect(parseTemplate("{{ {'a': {'b': 1}} }}")).toEqual({
      parts: [{ expression: " {'a': {'b': 1}} ", offset: 2 }],
      whole: true,
      unterminatedAt: undefined,
    });
    const lambda = "{{ $map(event.x, function($v){ {'a': $v}}) }}";
    expect(parseTemplate(lambda)).toEqual({
      parts: [{ expression: " $map(event.x, function($v){ {'a': $v}}) ", offset: 2 }],
      whole: true,
      unterminatedAt: undefined,
    });
    // `}}}` after a nested object: the inner pair closes objects, the last pair the template.
    expect(parseTemplate('{{ {"a": {"b": {"c": 1}}}}}').parts[0]!.expression).toBe(' {"a": {"b": {"c": 1}}}');
  });

  it('writes a literal {{ as a JSONata string', () => {
    const parsed = parseTemplate("{{ '{{' }} name {{ '}}' }}");
    expect(parsed.parts).toEqual([
      { expression: " '{{' ", offset: 2 },
      { expression: " '}}' ", offset: 18 },
    ]);
    expect(parsed.whole).toBe(false);
    expect(parsed.unterminatedAt).toBeUndefined();
    expect(parseTemplate("{{ '{{' }}")).toEqual({ parts: [{ expression: " '{{' ", offset: 2 }], whole: true, unterminatedAt: undefined });
    expect(parseTemplate('{{ "{{ x }}" & event.a }}').parts).toEqual([{ expression: ' "{{ x }}" & event.a ', offset: 2 }]);
  });

  it('ignores braces and quotes inside /* */ comments', () => {
    expect(parseTemplate('{{ event.a /* }} */ }}').parts).toEqual([{ expression: ' event.a /* }} */ ', offset: 2 }]);
    expect(parseTemplate('{{ {"a": 1 /* { */} }}').parts).toEqual([{ expression: ' {"a": 1 /* { */} ', offset: 2 }]);
    expect(parseTemplate("{{ event.a /* it's */ }}").parts).toEqual([{ expression: " event.a /* it's */ ", offset: 2 }]);
    expect(parseTemplate('{{ event.a /* never closed }}').unterminatedAt).toBe(0);
  });

  it('ignores braces and quotes inside regex literals, and keeps a division a division', () => {
    expect(parseTemplate('{{ $match(event.s, /\\{+/) }}').parts).toEqual([{ expression: ' $match(event.s, /\\{+/) ', offset: 2 }]);
    expect(parseTemplate('{{ $replace(event.s, /"/, "\'") }}').whole).toBe(true);
    expect(parseTemplate('{{ $contains(event.s, /a{2}/) }}').whole).toBe(true);
    const division = parseTemplate('{{ event.a / 2 }} and {{ (event.b) / 3 }}');
    expect(division.parts.map((p) => p.expression)).toEqual([' event.a / 2 ', ' (event.b) / 3 ']);
    // A slash that starts no closed regex is read as a division.
    expect(parseTemplate('{{ (/ }} x').parts).toEqual([{ expression: ' (/ ', offset: 2 }]);
  });

  it('reads a backtick name up to the next backtick, as JSONata does', () => {
    expect(parseTemplate('{{ event.`a\\` }}').parts).toEqual([{ expression: ' event.`a\\` ', offset: 2 }]);
    expect(parseTemplate('{{ event.`}}{` }}').parts).toEqual([{ expression: ' event.`}}{` ', offset: 2 }]);
  });

  it('reports unbalanced braces as unterminated', () => {
    expect(parseTemplate("{{ {'a': 1 }}")).toEqual({ parts: [], whole: false, unterminatedAt: 0 });
    expect(parseTemplate('ok {{ a }} then {{ { }} more')).toEqual({
      parts: [{ expression: ' a ', offset: 5 }],
      whole: false,
      unterminatedAt: 16,
    });
    // A stray closing brace at depth 0 does not close: JSONata reports it when compiling.
    expect(parseTemplate('{{ a } b }}').parts).toEqual([{ expression: ' a } b ', offset: 2 }]);
  });

  it('finds several expressions in one string, with exact offsets', () => {
    const template = "Order {{ event.id }}: {{ {'n': event.n} }} at {{ $now() /* } */ }} {{ '{{' }}done";
    const parsed = parseTemplate(template);
    expect(parsed.parts.map((p) => p.expression)).toEqual([' event.id ', " {'n': event.n} ", ' $now() /* } */ ', " '{{' "]);
    expect(parsed.whole).toBe(false);
    expect(parsed.unterminatedAt).toBeUndefined();
    for (const part of parsed.parts) {
      expect(template.slice(part.offset - 2, part.offset)).toBe('{{');
      expect(template.slice(part.offset, part.offset + part.expression.length)).toBe(part.expression);
      expect(template.slice(part.offset + part.expression.length, part.offset + part.expression.length + 2)).toBe('}}');
    }
  });

  it('reports the offset of an unterminated {{', () => {
    expect(parseTemplate('{{ event.a')).toEqual({ parts: [], whole: false, unterminatedAt: 0 });
    const parsed = parseTemplate('x {{ a }} {{ b');
    expect(parsed.parts).toEqual([{ expression: ' a ', offset: 4 }]);
    expect(parsed.unterminatedAt).toBe(10);
    expect(parsed.whole).toBe(false);
    expect(parseTemplate('{{ "}} ').unterminatedAt).toBe(0);
  });

  it('accepts an empty expression', () => {
    expect(parseTemplate('{{}}')).toEqual({ parts: [{ expression: '', offset: 2 }], whole: true, unterminatedAt: undefined });
  });
});

describe('conditionExpression', () => {
  it('unwraps a whole {{ expr }} and keeps its offset', () => {
    expect(conditionExpression('{{ event.ok }}')).toEqual({ expression: ' event.ok ', offset: 2 });
  });

  it('takes a bare expression as it is', () => {
    expect(conditionExpression('event.ok and vars.enabled')).toEqual({ expression: 'event.ok and vars.enabled', offset: 0 });
    expect(conditionExpression('x {{ a }}')).toEqual({ expression: 'x {{ a }}', offset: 0 });
  });
});
