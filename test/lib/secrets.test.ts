import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PatchbayError } from '../../engine/diag/errors.js';
import { resolvePlainOrSecret, resolveSecret, SecretSet, writeSecret } from '../../engine/lib/secrets.js';
import { SecretScan } from '../support/secret-scan.js';

const scan = new SecretScan();
const dir = mkdtempSync(join(tmpdir(), 'patchbay-secrets-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  scan.assertClean();
});

const fresh = () => scan.secret(randomBytes(18).toString('base64url'));

describe('resolveSecret', () => {
  it('reads an environment variable from the given environment', async () => {
    const value = fresh();
    expect(await resolveSecret({ env: 'STRIPE_API_KEY' }, { env: { STRIPE_API_KEY: value } })).toBe(value);
  });

  it('reads a file and trims exactly one trailing newline (LF or CRLF)', async () => {
    const value = fresh();
    const cases: [string, string][] = [
      [value, value],
      [`${value}\n`, value],
      [`${value}\r\n`, value],
      [`${value}\n\n`, `${value}\n`],
      [` ${value} `, ` ${value} `],
    ];
    for (const [contents, expected] of cases) {
      const file = join(dir, `s-${randomBytes(4).toString('hex')}`);
      writeFileSync(file, contents);
      expect(await resolveSecret({ file })).toBe(expected);
    }
  });

  it('names the variable or file but never a value when it cannot resolve', async () => {
    const value = fresh();
    const env = { EMPTY: '', OTHER: value };
    const unreadable = join(dir, 'unreadable');
    writeFileSync(unreadable, value);
    chmodSync(unreadable, 0o000);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    const cases = [
      [{ env: 'MISSING_KEY' }, 'MISSING_KEY is not set'],
      [{ env: 'EMPTY' }, 'EMPTY is empty'],
      [{ file: join(dir, 'absent') }, 'cannot be read (ENOENT)'],
      [{ file: empty }, 'is empty'],
      [{}, 'exactly one of'],
      [{ env: 'OTHER', file: unreadable }, 'exactly one of'],
    ] as const;
    for (const [ref, text] of cases) {
      const error = (await scan.rejects(resolveSecret(ref, { env }))) as PatchbayError;
      expect(error.code).toBe('PB_SECRET_UNRESOLVED');
      expect(error.retry).toBe('terminal');
      expect(error.message).toContain(text);
    }
    // Root reads anything; only check the permission case where permissions apply.
    if (process.getuid?.() !== 0) {
      const error = (await scan.rejects(resolveSecret({ file: unreadable }))) as PatchbayError;
      expect(error.message).toBe(`secret file ${unreadable} cannot be read (EACCES)`);
    }
  });
});

describe('resolvePlainOrSecret and SecretSet', () => {
  it('passes literals through and resolves references', async () => {
    const value = fresh();
    expect(await resolvePlainOrSecret('AC0123', { env: {} })).toBe('AC0123');
    expect(await resolvePlainOrSecret({ env: 'SID' }, { env: { SID: value } })).toBe(value);
  });

  it('remembers every resolved or added value, longest first, but not literals or tiny values', async () => {
    const a = fresh();
    const set = new SecretSet({ env: { A: a, B: 'bb' } });
    await set.resolve({ env: 'A' });
    await set.resolve({ env: 'B' });
    await set.resolvePlain('literal-user');
    set.add(`${a}-longer`);
    expect(set.values()).toEqual([`${a}-longer`, a]);
  });
});

describe('writeSecret', () => {
  it('replaces the file atomically with mode 0600 and leaves no temporary file', async () => {
    const sub = mkdtempSync(join(dir, 'w-'));
    const file = join(sub, 'refresh_token');
    writeFileSync(file, 'old\n', { mode: 0o644 });
    const value = fresh();
    await writeSecret({ file }, value);
    expect(readFileSync(file, 'utf8')).toBe(value);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(sub)).toEqual(['refresh_token']);
    expect(await resolveSecret({ file })).toBe(value);
  });

  it('writes through a symbolic link to the file it points at, as mounted secrets are linked', async () => {
    const sub = mkdtempSync(join(dir, 'l-'));
    mkdirSync(join(sub, '..data'));
    const target = join(sub, '..data', 'refresh_token');
    writeFileSync(target, 'old', { mode: 0o600 });
    const link = join(sub, 'refresh_token');
    symlinkSync(join('..data', 'refresh_token'), link);
    const value = fresh();
    await writeSecret({ file: link }, value);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe(value);
    expect(await resolveSecret({ file: link })).toBe(value);
  });

  it('refuses env references and unwritable places, without the value', async () => {
    const value = fresh();
    const byEnv = (await scan.rejects(writeSecret({ env: 'REFRESH_TOKEN' }, value))) as PatchbayError;
    expect(byEnv.code).toBe('PB_SECRET_NOT_WRITABLE');
    expect(byEnv.message).toContain('environment variable REFRESH_TOKEN');
    const noDir = (await scan.rejects(writeSecret({ file: join(dir, 'no-such-dir', 'token') }, value))) as PatchbayError;
    expect(noDir.code).toBe('PB_SECRET_NOT_WRITABLE');
    expect(noDir.message).toContain('(ENOENT)');
  });
});
