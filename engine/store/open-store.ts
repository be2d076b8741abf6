import { PatchbayError } from '../diag/errors.js';
import { openPostgresStore } from './postgres/postgres-store.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { StateStore } from './state-store.js';

const postgresUrl = /^postgres(ql)?:\/\//i;

/** True when `location` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresLocation(location: string): boolean {
  return postgresUrl.test(location);
}

/**
 * Opens the state store `location` names: a `postgres://` (or `postgresql://`) URL opens the
 * PostgreSQL store (several daemons may share it) in the schema its `schema` query parameter
 * names, `patchbay` by default; anything else is the path of a SQLite file, created when missing.
 * Rejects as `openPostgresStore` / `openSqliteStore` do; no error quotes the URL's password.
 */
export async function openStateStore(location: string): Promise<StateStore> {
  if (!isPostgresLocation(location)) return openSqliteStore(location);
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    // The parser's message would quote the URL, password included.
    throw new PatchbayError('PB_STATE_UNREADABLE', 'the PostgreSQL state URL is not a valid URL: write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  }
  const schema = url.searchParams.get('schema') ?? undefined;
  // Not a libpq parameter: the server would refuse it as an unknown option.
  url.searchParams.delete('schema');
  return openPostgresStore(url.toString(), schema === undefined ? {} : { schema });
}
