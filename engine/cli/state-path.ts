import { resolve } from 'node:path';

/** Where the SQLite state file lives when `--state` is not given. */
export const defaultStateFile = '.patchbay/state.db';

/**
 * The state file a command uses: `--state PATH`, else the `PATCHBAY_STATE` environment variable,
 * else `.patchbay/state.db`, resolved against `cwd`.
 */
export function statePath(flag: string | undefined, cwd: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  return resolve(cwd, flag ?? env.PATCHBAY_STATE ?? defaultStateFile);
}
