import { resolve } from 'node:path';
import { isPostgresLocation } from '../store/open-store.js';

/** Where the SQLite state file lives when `--state` is not given. */
export const defaultStateFile = '.patchbay/state.db';

/**
 * The state store a command uses: `--state`, else the `PATCHBAY_STATE` environment variable, else
 * `.patchbay/state.db`. A file path is resolved against `cwd`; a `postgres://` URL is kept as is
 * (prefer the variable for it: a password on a command line shows in process listings).
 */
export function statePath(flag: string | undefined, cwd: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const location = flag ?? env.PATCHBAY_STATE ?? defaultStateFile;
  return isPostgresLocation(location) ? location : resolve(cwd, location);
}
