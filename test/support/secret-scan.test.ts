import { describe, expect, it } from 'vitest';
import { MemoryLogger } from '../../engine/lib/log.js';
import { SecretScan } from './secret-scan.js';

const secret = 'Zq9-vX2+pL/7mK=aa';

describe('SecretScan', () => {
  it.each([
    ['raw', `token ${secret} refused`],
    ['URL-encoded', `GET /x?key=${encodeURIComponent(secret)}`],
    ['form-encoded', new URLSearchParams({ password: secret }).toString()],
    ['base64 of the secret', Buffer.from(secret).toString('base64')],
    ['base64 inside basic auth, alignment 1', `Basic ${Buffer.from(`u:${secret}`).toString('base64')}`],
    ['base64 inside basic auth, alignment 2', `Basic ${Buffer.from(`us:${secret}`).toString('base64')}`],
    ['base64 inside basic auth, alignment 0', `Basic ${Buffer.from(`use:${secret}`).toString('base64')}`],
    ['base64url', Buffer.from(`xx${secret}`).toString('base64url')],
  ])('finds the secret %s', (_kind, text) => {
    const scan = new SecretScan();
    scan.secret(secret);
    scan.text('sample', text);
    expect(() => scan.assertClean()).toThrow(/secret #0/);
  });

  it('reads error causes and logger lines, and never prints the secret', async () => {
    const scan = new SecretScan();
    scan.secret(secret);
    const logger = scan.logger(new MemoryLogger());
    logger.log('warn', 'rotated', { value: secret });
    await scan.rejects(Promise.reject(new Error('outer', { cause: new Error(`inner ${secret}`) })));
    let message = '';
    try {
      scan.assertClean();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('rejection (cause depth 1)');
    expect(message).toContain('logger 0');
    expect(message).not.toContain(secret);
  });

  it('passes clean texts and ignores values too short to mean anything', () => {
    const scan = new SecretScan();
    scan.secret(secret);
    scan.secret('short');
    scan.text('clean', 'token endpoint refused the request (HTTP 400 invalid_grant) short');
    expect(() => scan.assertClean()).not.toThrow();
    expect(scan.counts()).toEqual({ secrets: 1, texts: 1 });
  });
});
