import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PatchbayError } from '../diag/errors.js';

/**
 * Secret references as manifests write them (`{ env: NAME }` or `{ file: /path }`), resolved to
 * their values at call time. Values live in memory only: they are never written to logs, errors
 * or the store, and a `SecretSet` remembers them so later layers can redact them.
 */
export interface SecretRef {
  readonly env?: string;
  readonly file?: string;
}

/** A value that is not secret on its own (a user name, a client id): literal or a reference. */
export type PlainOrSecret = string | SecretRef;

/** Where references are read from; tests pass their own. */
export interface SecretSources {
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Reads a whole file as UTF-8. @default fs.promises.readFile */
  readonly readFile?: (path: string) => Promise<string>;
}

const readUtf8 = (path: string): Promise<string> => readFile(path, 'utf8');

/** Names the reference without its value: `environment variable X` or `file /run/secrets/x`. */
export function describeSecretRef(ref: SecretRef): string {
  return ref.env !== undefined ? `environment variable ${ref.env}` : `file ${ref.file ?? '(none)'}`;
}

/**
 * Resolves a secret reference to its value. A file's contents lose one trailing newline (`\n` or
 * `\r\n`), the way `echo secret > file` and mounted Kubernetes secrets end.
 * Throws PB_SECRET_UNRESOLVED (terminal) when the variable is unset or empty, or the file is
 * missing, unreadable or empty; the message names the variable or path, never a value.
 */
export async function resolveSecret(ref: SecretRef, sources: SecretSources = {}): Promise<string> {
  if ((ref.env === undefined) === (ref.file === undefined)) {
    throw new PatchbayError('PB_SECRET_UNRESOLVED', 'a secret reference must name exactly one of `env` and `file`');
  }
  if (ref.env !== undefined) {
    const value = (sources.env ?? process.env)[ref.env];
    if (value === undefined) {
      throw new PatchbayError('PB_SECRET_UNRESOLVED', `environment variable ${ref.env} is not set: set it to the secret, or point the reference at a file`);
    }
    if (value === '') throw new PatchbayError('PB_SECRET_UNRESOLVED', `environment variable ${ref.env} is empty`);
    return value;
  }
  const file = ref.file as string;
  let text: string;
  try {
    text = await (sources.readFile ?? readUtf8)(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'read error';
    throw new PatchbayError('PB_SECRET_UNRESOLVED', `secret file ${file} cannot be read (${reason})`, { cause: error });
  }
  const value = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (value === '') throw new PatchbayError('PB_SECRET_UNRESOLVED', `secret file ${file} is empty`);
  return value;
}

/**
 * Resolves a `plainOrSecret` value: a literal string passes through unchanged, a reference is
 * resolved as by `resolveSecret` (same errors).
 */
export async function resolvePlainOrSecret(value: PlainOrSecret, sources: SecretSources = {}): Promise<string> {
  return typeof value === 'string' ? value : resolveSecret(value, sources);
}

/**
 * Every secret value resolved or received (issued access tokens, rotated refresh tokens), kept in
 * memory so that logs, errors and stored records can be scrubbed of them. Values shorter than
 * `minLength` are not kept: redacting `a` or `42` everywhere would mangle ordinary text.
 */
export class SecretSet {
  private readonly known = new Set<string>();

  constructor(private readonly sources: SecretSources = {}, private readonly minLength = 4) {}

  /** Remembers a value obtained some other way (an issued token). */
  add(value: string): void {
    if (value.length >= this.minLength) this.known.add(value);
  }

  /** Resolves a reference (errors as `resolveSecret`) and remembers its value. */
  async resolve(ref: SecretRef): Promise<string> {
    const value = await resolveSecret(ref, this.sources);
    this.add(value);
    return value;
  }

  /** As `resolvePlainOrSecret`; only referenced values are remembered (a literal is not secret). */
  async resolvePlain(value: PlainOrSecret): Promise<string> {
    return typeof value === 'string' ? value : this.resolve(value);
  }

  /** Every remembered value, longest first (so a redactor replaces `abcd1234` before `abcd`). */
  values(): readonly string[] {
    return [...this.known].sort((a, b) => b.length - a.length);
  }

  /**
   * `text` with every remembered value replaced by `[redacted]`, in the forms it travels in:
   * as is, percent-encoded (query strings, form bodies) and inside base64 (basic auth headers,
   * at any byte alignment — see `encodedForms`).
   */
  redact(text: string): string {
    let out = text;
    for (const value of this.values()) {
      for (const form of encodedForms(value)) {
        if (form !== '' && out.includes(form)) out = out.split(form).join('[redacted]');
      }
    }
    return out;
  }
}

/**
 * The forms a secret may appear in inside text: itself, percent-encoded, and the base64 of it at
 * each of the three byte alignments (trimmed to the characters that depend on the secret alone),
 * so `base64("user:" + secret)` in a Basic header is found too.
 */
function encodedForms(value: string): string[] {
  const forms = new Set<string>([value, encodeURIComponent(value)]);
  const bytes = Buffer.from(value, 'utf8');
  for (let shift = 0; shift < 3; shift += 1) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    // Characters mixing padding bytes with secret bytes are not fixed; drop them at both ends.
    const start = shift === 0 ? 0 : shift === 1 ? 2 : 3;
    const tail = (bytes.length + shift) % 3;
    const end = encoded.length - (tail === 0 ? 0 : 4);
    const core = encoded.slice(start, end);
    if (core.length >= 8) forms.add(core);
  }
  return [...forms];
}

/**
 * Writes a new value into a file-backed secret (a rotated refresh token), atomically: a temporary
 * file beside it, created with mode 0600, written, flushed to disk and renamed over the old file,
 * so a crash leaves either the old or the new value and never half of one. The value is written
 * without a trailing newline. Throws PB_SECRET_NOT_WRITABLE (terminal) for an `env` reference (a
 * process cannot change its parent's environment: the caller keeps the value in memory and logs a
 * warning) or when the file cannot be written; no message holds the value.
 */
export async function writeSecret(ref: SecretRef, value: string): Promise<void> {
  if (ref.file === undefined) {
    throw new PatchbayError(
      'PB_SECRET_NOT_WRITABLE',
      `${describeSecretRef(ref)} cannot be updated from inside Patchbay: the new value is kept in memory until restart; use a { file } reference to keep rotated secrets`,
    );
  }
  let file = ref.file;
  let temporary: string | undefined;
  try {
    // A mounted secret is often a symbolic link (Kubernetes projects `..data/` links): write the
    // file it points at, or the rename would replace the link and the target keep the old value.
    file = await realpath(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return ref.file!;
      throw error;
    });
    temporary = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(value, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
    await syncFolder(dirname(file));
  } catch (error) {
    // The temporary file may not exist (open failed); removing it is best effort and its own
    // failure would hide the real one.
    if (temporary !== undefined) await rm(temporary, { force: true }).catch(() => undefined);
    const reason = (error as NodeJS.ErrnoException).code ?? 'write error';
    throw new PatchbayError('PB_SECRET_NOT_WRITABLE', `secret file ${file} cannot be written (${reason}); the new value is kept in memory only`, {
      cause: error,
    });
  }
}

/**
 * Flushes a folder's entries, so a rename in it survives a power cut. Best effort: the new value
 * is already in place and readable, and some file systems cannot sync a folder.
 */
async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not fatal: see above.
  }
}
