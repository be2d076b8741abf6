import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PatchbayError } from '../../diag/errors.js';

/**
 * `.patchbay/sandbox.json`: what a running `patchbay serve --sandbox` tells `patchbay send` — where
 * the daemon listens, the admin token it generated, and the webhook secrets it generated per
 * integration. Secrets, so the file is created with mode 0600 in a folder created with mode 0700,
 * written atomically (a temporary file renamed over it), and removed when the daemon stops.
 */

/** The file's content. */
export interface SandboxInfo {
  /** Format version of this file. */
  readonly version: 1;
  /** The daemon's base URL (`http://127.0.0.1:8080`). */
  readonly daemonUrl: string;
  /** A token with read and operate scope on the daemon's admin API. */
  readonly adminToken: string;
  /** The sandbox's own origin, for reference. */
  readonly sandboxUrl?: string | undefined;
  /** The daemon's process id. */
  readonly pid?: number | undefined;
  /** ISO time the daemon started. */
  readonly startedAt?: string | undefined;
  /** Manifest paths the daemon serves (relative to the project folder or absolute), so `send` reads the same. */
  readonly paths?: readonly string[] | undefined;
  /** Webhook integrations: the generated secrets of their trigger connection, in the connection's order. */
  readonly integrations: Readonly<Record<string, { readonly webhookSecrets: readonly string[] }>>;
}

/** Where the file lives for the project in `dir`. */
export function sandboxFilePath(dir: string): string {
  return join(dir, '.patchbay', 'sandbox.json');
}

/**
 * Writes `info` to `<dir>/.patchbay/sandbox.json` (folder created 0700 if missing, file 0600,
 * atomically). Rejects with PB_IO when the folder or file cannot be written.
 */
export async function writeSandboxFile(dir: string, info: SandboxInfo): Promise<string> {
  const file = sandboxFilePath(dir);
  const folder = join(dir, '.patchbay');
  const temporary = join(folder, `.sandbox.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(info, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    // Best effort: the temporary file may not exist, and the write error is the one to report.
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new PatchbayError('PB_IO', `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  return file;
}

/**
 * Reads `<dir>/.patchbay/sandbox.json`. Rejects with PB_SANDBOX_NOT_RUNNING when it does not exist
 * and PB_SANDBOX_FILE_INVALID when it cannot be read or is not a version-1 sandbox file.
 */
export async function readSandboxFile(dir: string): Promise<SandboxInfo> {
  const file = sandboxFilePath(dir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new PatchbayError('PB_SANDBOX_NOT_RUNNING', `no sandbox daemon runs for ${dir} (${file} does not exist): start one with "patchbay serve --sandbox"`);
    }
    throw new PatchbayError('PB_SANDBOX_FILE_INVALID', `cannot read ${file}: ${code ?? String(error)}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PatchbayError('PB_SANDBOX_FILE_INVALID', `${file} is not JSON; restart the sandbox daemon`, { cause: error });
  }
  const info = value as Partial<SandboxInfo> | null;
  const valid =
    info !== null &&
    typeof info === 'object' &&
    info.version === 1 &&
    typeof info.daemonUrl === 'string' &&
    typeof info.adminToken === 'string' &&
    info.integrations !== null &&
    typeof info.integrations === 'object' &&
    Object.values(info.integrations).every((entry) => Array.isArray(entry?.webhookSecrets) && entry.webhookSecrets.every((secret) => typeof secret === 'string'));
  if (!valid) throw new PatchbayError('PB_SANDBOX_FILE_INVALID', `${file} is not a sandbox file of this version; restart the sandbox daemon`);
  return info as SandboxInfo;
}

/** Removes the file (nothing when it is already gone). Rejects with PB_IO for another failure. */
export async function removeSandboxFile(dir: string): Promise<void> {
  try {
    await rm(sandboxFilePath(dir), { force: true });
  } catch (error) {
    throw new PatchbayError('PB_IO', `cannot remove ${sandboxFilePath(dir)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
}

/**
 * Removes the file synchronously, for an exit that cannot wait (a second signal). Never throws: a
 * failure is returned as the error's code so the caller can log it.
 */
export function removeSandboxFileNow(dir: string): string | undefined {
  try {
    rmSync(sandboxFilePath(dir), { force: true });
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}
