import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { PatchbayError } from '../diag/errors.js';
import type { Code } from '../diag/codes.js';
import { sanitizeText, type Diagnostic } from '../diag/diagnostic.js';
import { renderText } from '../diag/render.js';
import { maskCredentials } from '../lib/credentials.js';
import { packageRoot } from '../lib/package-root.js';
import { validateManifests } from '../manifest/validate.js';
import { importOpenApi, maxImportBytes, providerSchemaFeatures, type OpenApiImportResult } from '../providers/openapi-import.js';
import { ExitCode, type CliIO } from './main.js';

const help = `Usage: patchbay provider import <openapi.json|yaml> --name <name> [options]

Turns an OpenAPI 3.x or Swagger 2.0 description (JSON or YAML, optionally gzip-compressed) into
a Patchbay provider definition, checks it as "patchbay validate" does, and writes it as YAML.
What was skipped or changed is reported on standard error.

Options:
  --name NAME        The provider's name: lowercase letters, digits and hyphens (required)
  --include X        Import only operations with this tag or operationId, under this path prefix
                     (/v1/customers), or whose path matches this regular expression (^/v1/(a|b)$);
                     repeatable (default: every operation)
  --output FILE      Write the provider to FILE instead of standard output ("-": standard output)
  --force            Overwrite an existing --output file
  --base-url URL     Base URL for every operation instead of the description's servers
  --report text|json Form of the report on standard error (default text)
  --verbose          Report every note (default: the first 20)
  -h, --help         Show this help

Exit status: 0 written; 1 the description cannot be imported (invalid JSON or YAML, a bad $ref,
nesting too deep, no importable operation, too large a result) or the result does not validate
(nothing is written); 2 usage error (an existing --output without --force too), a file that
cannot be read or written or is over 64 MiB, or a file that is not OpenAPI.
`;

const providerHelp = `Usage: patchbay provider <command> [options]

Commands:
  import <file> --name <name>   Create a provider definition from an OpenAPI description

Run "patchbay provider import --help" for its options.
`;

const namePattern = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const maxReportedNotes = 20;

// Codes that say the command line or the file given is wrong, rather than the description's content.
const usageCodes: ReadonlySet<Code> = new Set<Code>(['PB_USAGE', 'PB_IO', 'PB_IMPORT_NOT_OPENAPI', 'PB_IMPORT_INPUT_TOO_LARGE']);

interface ImportFlags {
  readonly file: string;
  readonly name: string;
  readonly include: string[];
  readonly output: string | undefined;
  readonly force: boolean;
  readonly baseUrl: string | undefined;
  readonly report: 'text' | 'json';
  readonly verbose: boolean;
}

/** `patchbay provider <subcommand>`: only `import` exists. Returns the exit code. */
export async function runProvider(argv: readonly string[], io: CliIO): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === 'import') return runProviderImport(rest, io);
  if (subcommand === undefined || subcommand === '--help' || subcommand === '-h' || subcommand === 'help') {
    (subcommand === undefined ? io.stderr : io.stdout).write(providerHelp);
    return subcommand === undefined ? ExitCode.usage : ExitCode.ok;
  }
  io.stderr.write(`patchbay provider: unknown command "${subcommand}"\n\n${providerHelp}`);
  return ExitCode.usage;
}

/**
 * `patchbay provider import`: imports, validates the result with the same checks as
 * `patchbay validate` (against an isolated catalogue), and writes it only when it has no error.
 * Exit codes, as the help says: 0 written; 1 the description cannot be imported (any
 * PB_IMPORT_* code but the two below) or the result is invalid; 2 usage (PB_USAGE, an existing
 * output file without `--force`), a file that cannot be read or written (PB_IO), is over the
 * size limit (PB_IMPORT_INPUT_TOO_LARGE) or is not OpenAPI (PB_IMPORT_NOT_OPENAPI).
 */
export async function runProviderImport(argv: readonly string[], io: CliIO): Promise<number> {
  const flags = parseImportFlags(argv);
  if ('help' in flags) {
    io.stdout.write(help);
    return ExitCode.ok;
  }
  if ('error' in flags) {
    io.stderr.write(`patchbay provider import: ${flags.error}\n\n${help}`);
    return ExitCode.usage;
  }
  const fail = (code: Code, message: string) => {
    // Messages quote the description ($ref values, tags): escape control characters so a
    // description cannot forge a line or drive the terminal. They are not masked here: the
    // importer masks the values it quotes (examples, versions, server URLs) and leaves JSON
    // pointers and paths as written, which whole-message masking would cut as if they were keys.
    io.stderr.write(`patchbay provider import: error ${code}: ${sanitizeText(message)}\n`);
    return usageCodes.has(code) ? ExitCode.usage : ExitCode.problems;
  };

  const input = resolve(io.cwd, flags.file);
  const shownInput = displayPath(input, io.cwd);
  let bytes: Buffer;
  try {
    const stats = statSync(input);
    if (!stats.isFile()) return fail('PB_IO', `${shownInput} is not a regular file`);
    // Refuse from the size alone: a huge file is never read into memory.
    if (stats.size > maxImportBytes) {
      return fail('PB_IMPORT_INPUT_TOO_LARGE', `${shownInput} is ${stats.size} bytes, more than the ${maxImportBytes}-byte import limit`);
    }
    bytes = readFileSync(input);
  } catch (error) {
    return fail('PB_IO', `cannot read ${shownInput}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const output = flags.output === undefined || flags.output === '-' ? undefined : resolve(io.cwd, flags.output);
  if (output !== undefined && existsSync(output) && !flags.force) {
    return fail('PB_USAGE', `${displayPath(output, io.cwd)} exists; pass --force to overwrite it`);
  }

  let result: OpenApiImportResult;
  try {
    result = await importOpenApi(bytes, {
      name: flags.name,
      sourceName: shownInput,
      include: flags.include,
      baseUrl: flags.baseUrl,
      features: providerSchemaFeatures(),
      schemaHint: schemaHint(output ?? join(io.cwd, 'providers', `${flags.name}.yaml`)),
    });
  } catch (error) {
    if (error instanceof PatchbayError) return fail(error.code, error.message);
    throw error;
  }

  const shownOutput = output === undefined ? `providers/${flags.name}.yaml (standard output)` : displayPath(output, io.cwd);
  const diagnostics = await validateGenerated(result.yaml, flags.name, output === undefined ? `${flags.name}.yaml` : displayPath(output, io.cwd));
  const errors = diagnostics.filter((d) => d.severity === 'error');
  writeReport(io, flags, result, shownInput, shownOutput, diagnostics);
  if (errors.length > 0) {
    return fail('PB_IMPORT_INVALID_OUTPUT', `the generated provider has ${errors.length} validation error(s) (listed above); nothing was written`);
  }

  if (output === undefined) {
    io.stdout.write(result.yaml);
    return ExitCode.ok;
  }
  try {
    writeFileSync(output, result.yaml, { flag: flags.force ? 'w' : 'wx' });
  } catch (error) {
    return fail('PB_IO', `cannot write ${displayPath(output, io.cwd)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return ExitCode.ok;
}

function parseImportFlags(argv: readonly string[]): ImportFlags | { error: string } | { help: true } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        include: { type: 'string', multiple: true },
        output: { type: 'string', short: 'o' },
        force: { type: 'boolean', default: false },
        'base-url': { type: 'string' },
        report: { type: 'string', default: 'text' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
  if (parsed.values.help) return { help: true };
  if (parsed.positionals.length !== 1) {
    return { error: parsed.positionals.length === 0 ? 'name the OpenAPI file to import' : `one OpenAPI file at a time, not ${parsed.positionals.length}` };
  }
  const name = parsed.values.name as string | undefined;
  if (name === undefined) return { error: '--name is required: the provider name steps will call (e.g. --name stripe)' };
  if (!namePattern.test(name)) {
    return { error: `--name "${name}" is not a valid provider name: use lowercase letters, digits and hyphens, starting with a letter (at most 63)` };
  }
  const report = parsed.values.report as string;
  if (report !== 'text' && report !== 'json') return { error: `--report must be text or json, not "${report}"` };
  const include = (parsed.values.include as string[] | undefined) ?? [];
  if (include.some((value) => value.trim() === '')) return { error: '--include needs a tag, an operationId, a path prefix or a regular expression' };
  return {
    file: parsed.positionals[0]!,
    name,
    include,
    output: parsed.values.output as string | undefined,
    force: parsed.values.force as boolean,
    baseUrl: parsed.values['base-url'] as string | undefined,
    report,
    verbose: parsed.values.verbose as boolean,
  };
}

/**
 * Runs the checks of `patchbay validate` on the generated YAML, written to a private temporary
 * folder and validated alone (no catalogue: a bundled provider of the same name must not make it
 * a duplicate). Diagnostics are shown against `shownFile`.
 */
async function validateGenerated(yaml: string, name: string, shownFile: string): Promise<Diagnostic[]> {
  const folder = mkdtempSync(join(tmpdir(), 'patchbay-import-'));
  try {
    const file = join(folder, `${name}.yaml`);
    writeFileSync(file, yaml);
    const result = await validateManifests({ paths: [file], bundledProviders: false, providerDirs: [], cwd: folder, catalogueSnapshot: false });
    return result.diagnostics.map((d) => ({ ...d, file: shownFile }));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

function writeReport(
  io: CliIO,
  flags: ImportFlags,
  result: OpenApiImportResult,
  shownInput: string,
  shownOutput: string,
  diagnostics: readonly Diagnostic[],
): void {
  // Operations (`METHOD /path (operationId)`) and file names are shown as written; notes and
  // reasons may quote values of the description, so credential-looking text in them is masked.
  const plain = (text: string) => text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  const clean = (text: string) => plain(maskCredentials(text));
  if (flags.report === 'json') {
    io.stderr.write(
      `${JSON.stringify({
        input: shownInput,
        provider: flags.name,
        openapi: result.declaredVersion,
        totalOperations: result.totalOperations,
        excludedOperations: result.excludedOperations,
        importedOperations: result.importedOperations,
        skipped: result.skipped.map((s) => ({ operation: plain(s.operation), reason: clean(s.reason) })),
        unmatchedIncludes: result.unmatchedIncludes,
        reducedOperations: result.reducedOperations,
        truncatedSchemas: result.truncatedSchemas,
        bytes: Buffer.byteLength(result.yaml),
        notes: result.notes.map((n) => ({ ...(n.operation ? { operation: n.operation } : {}), message: clean(n.message) })),
        diagnostics: diagnostics.map((d) => ({ ...d })),
      })}\n`,
    );
    return;
  }
  const lines: string[] = [];
  if (diagnostics.length > 0) lines.push(renderText(diagnostics, { files: 1, documents: 1 }, false).trimEnd());
  const parts = [`${result.skipped.length} skipped`];
  if (result.excludedOperations > 0) parts.unshift(`${result.excludedOperations} not selected by --include`);
  lines.push(
    `patchbay provider import: imported ${result.importedOperations} of ${result.totalOperations} operations from ${plain(shownInput)} (${
      result.declaredVersion === '2.0' ? 'Swagger 2.0' : `OpenAPI ${clean(result.declaredVersion)}`
    }) as provider "${flags.name}" (${parts.join(', ')}) → ${shownOutput}, ${Buffer.byteLength(result.yaml)} bytes`,
  );
  for (const value of result.unmatchedIncludes) lines.push(`  warning: --include ${JSON.stringify(value)} matched no operation`);
  for (const skip of result.skipped) lines.push(`  skipped ${plain(skip.operation)}: ${clean(skip.reason)}`);
  // The same note on many operations (Slack's `token` parameter on 155 of them) is one line.
  const grouped = new Map<string, string[]>();
  for (const note of result.notes) {
    const list = grouped.get(note.message) ?? [];
    if (note.operation !== undefined) list.push(note.operation);
    grouped.set(note.message, list);
  }
  const entries = [...grouped];
  const shown = flags.verbose ? entries : entries.slice(0, maxReportedNotes);
  for (const [message, operations] of shown) {
    const where =
      operations.length === 0
        ? ''
        : operations.length === 1
          ? `${operations[0]}: `
          : `${operations.length} operations (${operations.slice(0, 3).join(', ')}${operations.length > 3 ? ', …' : ''}): `;
    lines.push(`  note: ${where}${clean(message)}`);
  }
  if (shown.length < entries.length) lines.push(`  … and ${entries.length - shown.length} more notes (--verbose lists them all)`);
  if (result.truncatedSchemas > 0) lines.push(`  ${result.truncatedSchemas} nested or recursive schemas were cut and say "(truncated)"`);
  io.stderr.write(`${lines.join('\n')}\n`);
}

/** The `$schema` hint for an output file: the installed package's provider schema, relative to the file's folder. */
function schemaHint(outputFile: string): string {
  const schema = join(packageRoot, 'schemas', 'provider.schema.json');
  const rel = relative(dirname(outputFile), schema);
  return rel.split(sep).join('/');
}

function displayPath(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}
