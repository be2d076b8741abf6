import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPinoLogger } from '../../engine/lib/pino-logger.js';
import { makeTempDir } from '../support/cli.js';

// The daemon's logs: one JSON object per line for collectors, coloured lines for a terminal.

function logTo(pretty: boolean, write: (logger: ReturnType<typeof createPinoLogger>) => void): string {
  const file = join(makeTempDir('patchbay-pino-'), 'log');
  const fd = openSync(file, 'w');
  try {
    write(createPinoLogger({ level: 'info', pretty, fd }));
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8');
}

describe('the daemon logger', () => {
  it('writes JSON lines with a level label, an ISO time, the message and the fields, dropping lines below its level', () => {
    const text = logTo(false, (logger) => {
      logger.log('debug', 'not shown');
      logger.log('info', 'listening', { port: 8080 });
      logger.log('error', 'refused');
    });
    const lines = text.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'listening', port: 8080, pid: process.pid });
    expect(new Date(lines[0]!.time as string).toISOString()).toBe(lines[0]!.time);
    expect(lines[1]).toMatchObject({ level: 'error', msg: 'refused' });
  });

  it('writes human-readable lines when pretty, not JSON', () => {
    const text = logTo(true, (logger) => logger.log('warn', 'slow poll', { integration: 'orders' }));
    expect(text).toContain('WARN');
    expect(text).toContain('slow poll');
    expect(text).toContain('orders');
    expect(() => JSON.parse(text.split('\n')[0]!)).toThrow();
  });
});
