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

  it('ends at the last brace pair of a }}} run, closing an object constructor first', () => {
    expect(parseTemplate('{{ {"a": 1}}}')).toEqual({
      parts: [{ expression: ' {"a": 1}', offset: 2 }],
      whole: true,
      unterminatedAt: undefined,
    });
    expect(parseTemplate('{{ {"a": {"b": 1}}}}').parts[0]!.expression).toBe(' {"a": {"b": 1}}');
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
