import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPostgresLocation, openStateStore } from '../../engine/store/open-store.js';
import { rejection } from '../support/errors.js';

describe('openStateStore', () => {
  it('opens a SQLite file for a path and PostgreSQL for a postgres:// URL', async () => {
    expect(isPostgresLocation('postgres://u@h/db')).toBe(true);
    expect(isPostgresLocation('postgresql://u@h/db')).toBe(true);
    expect(isPostgresLocation('.patchbay/postgres.db')).toBe(false);
    const store = await openStateStore(join(mkdtempSync(join(tmpdir(), 'pb-open-')), 'state.db'));
    expect(store.kind).toBe('sqlite');
    await store.close();
  });

  it('refuses a malformed PostgreSQL URL without quoting it', async () => {
    const error = await rejection(openStateStore('postgres://user:S3cretPassword@host:notaport/db'));
    expect(error.code).toBe('PB_STATE_UNREADABLE');
    expect(error.message).not.toContain('S3cretPassword');
    expect(error.cause).toBeUndefined();
  });
});
