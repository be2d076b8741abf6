import { describe, expect, it } from 'vitest';
import { closestName, didYouMean, editDistance } from '../../engine/lib/did-you-mean.js';

describe('editDistance', () => {
  it('is 0 for equal strings and the length for an empty one', () => {
    expect(editDistance('token', 'token')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', '')).toBe(3);
  });

  it('counts insertions, deletions and substitutions once each', () => {
    expect(editDistance('valdate', 'validate')).toBe(1);
    expect(editDistance('validatee', 'validate')).toBe(1);
    expect(editDistance('valibate', 'validate')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('counts an adjacent transposition as one edit', () => {
    expect(editDistance('tokne', 'token')).toBe(1);
    expect(editDistance('vladiate', 'validate')).toBe(2);
    expect(editDistance('ab', 'ba')).toBe(1);
  });

  it('counts a case difference as an edit and is symmetric', () => {
    expect(editDistance('Token', 'token')).toBe(1);
    for (const [a, b] of [['stripe', 'strpie'], ['twilio', 'twillio'], ['', 'x'], ['Provider', 'provder']] as const) {
      expect(editDistance(a, b)).toBe(editDistance(b, a));
    }
  });
});

describe('closestName', () => {
  const commands = ['validate', 'list', 'version', 'help'];

  it('suggests through transpositions, insertions and deletions', () => {
    expect(closestName('valdate', commands)).toBe('validate');
    expect(closestName('valiadte', commands)).toBe('validate');
    expect(closestName('lsit', commands)).toBe('list');
    expect(closestName('tokne', ['token', 'secret'])).toBe('token');
    expect(closestName('versoin', commands)).toBe('version');
  });

  it('matches regardless of case, even when far in raw edits', () => {
    expect(closestName('VALIDATE', commands)).toBe('validate');
    expect(closestName('integration', ['Integration', 'Provider'])).toBe('Integration');
    expect(closestName('PROVIDR', ['Integration', 'Provider'])).toBe('Provider');
  });

  it('suggests nothing when every candidate is far', () => {
    expect(closestName('deploy', commands)).toBeUndefined();
    expect(closestName('xyzzy', ['stripe', 'twilio', 'slack'])).toBeUndefined();
    expect(closestName('anything', [])).toBeUndefined();
  });

  it('does not suggest the input itself', () => {
    expect(closestName('list', ['list'])).toBeUndefined();
  });

  it('prefers the closest of several near candidates', () => {
    expect(closestName('stripe_', ['strip', 'stripe'])).toBe('stripe');
  });
});

describe('didYouMean', () => {
  it('formats a suggestion, or the empty string', () => {
    expect(didYouMean('valdate', ['validate', 'list'])).toBe(' (did you mean "validate"?)');
    expect(didYouMean('deploy', ['validate', 'list'])).toBe('');
  });
});
