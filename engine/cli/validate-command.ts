import { statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PatchbayError } from '../diag/errors.js';
import { maskCredentials } from '../lib/credentials.js';
import { renderGithub, renderJson, renderText, type OutputFormat } from '../diag/render.js';
import { validateManifests, type ValidationResult } from '../manifest/validate.js';
import type { Diagnostic } from '../diag/diagnostic.js';
import { ExitCode, type CliIO } from './main.js';

const help = `Usage: patchbay validate [paths…] [options]

Checks every *.yaml / *.yml under the paths (default: integrations) together with the bundled
provider catalogue, and reports all problems at once as file:line:col.

Options:
  --format text|json|github   Output format (default text; github prints workflow annotations)
  --strict                    Treat warnings as errors
  --providers DIR             A folder of your own provider definitions (repeatable; default:
                              ./providers and the providers/ folder beside each path, if any)
  --no-catalogue              Do not load the bundled provider catalogue (only --providers)
  --no-color                  Plain text even on a terminal (NO_COLOR is honoured too)
  -h, --help                  Show this help

Exit status: 0 no errors, 1 problems in the manifests, 2 usage or environment error.
`;

export interface ValidateFlags {
  readonly paths: string[];
  readonly format: OutputFormat;
  readonly strict: boolean;
  readonly providerDirs: string[];
  readonly color: boolean;
  readonly catalogue: boolean;
}

/** Parses the shared flags of `validate` and `list`; returns a usage error text on bad input. */
export function parseValidateFlags(argv: readonly string[], io: CliIO): ValidateFlags | { error: string } | { help: true } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        format: { type: 'string', default: 'text' },
        strict: { type: 'boolean', default: false },
        providers: { type: 'string', multiple: true },
        'no-color': { type: 'boolean', default: false },
        'no-catalogue': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
  if (parsed.values.help) return { help: true };
  const format = parsed.values.format as string;
  if (format !== 'text' && format !== 'json' && format !== 'github') {
    return { error: `--format must be text, json or github, not "${format}"` };
  }
  const color = !parsed.values['no-color'] && !io.env.NO_COLOR && io.stdout.isTTY === true && format === 'text';
  const paths = parsed.positionals.length > 0 ? parsed.positionals : ['integrations'];
  return {
    paths,
    format,
    strict: parsed.values.strict as boolean,
    providerDirs: (parsed.values.providers as string[] | undefined) ?? defaultProviderDirs(io.cwd, paths),
    color,
    catalogue: !parsed.values['no-catalogue'],
  };
}

/**
 * A user's repository keeps its own providers beside its integrations, as this one does: the
 * `providers/` folder of the working directory and of each validated folder's parent.
 */
export function defaultProviderDirs(cwd: string, paths: readonly string[]): string[] {
  const candidates = [join(cwd, 'providers')];
  for (const path of paths) {
    const absolute = resolve(cwd, path);
    const folder = isDirectory(absolute) ? absolute : dirname(absolute);
    // Not for the working directory or its ancestors: validating `.` must not load the
    // parent folder's providers/ (pass --providers ../providers for that).
    const inside = relative(folder, cwd);
    if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) continue;
    candidates.push(join(folder, '..', 'providers'));
  }
  return [...new Set(candidates.map((dir) => resolve(dir)))].filter(isDirectory);
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    // No providers/ folder there: nothing to add.
    return false;
  }
}

/** Applies `--strict`: warnings become errors. */
export function applyStrict(diagnostics: Diagnostic[], strict: boolean): Diagnostic[] {
  return strict ? diagnostics.map((d) => (d.severity === 'warning' ? { ...d, severity: 'error' } : d)) : diagnostics;
}

/**
 * Parses flags and validates for `command`; prints help, a usage error or an unreadable path
 * and returns the exit code instead when the command line asks for it or is wrong.
 */
export async function validateForCommand(
  command: string,
  commandHelp: string,
  argv: readonly string[],
  io: CliIO,
): Promise<{ flags: ValidateFlags; result: ValidationResult; diagnostics: Diagnostic[] } | number> {
  const flags = parseValidateFlags(argv, io);
  if ('help' in flags) {
    io.stdout.write(commandHelp);
    return ExitCode.ok;
  }
  if ('error' in flags) {
    io.stderr.write(`patchbay ${command}: ${flags.error}\n\n${commandHelp}`);
    return ExitCode.usage;
  }
  try {
    const result = await validateManifests({
      paths: flags.paths,
      providerDirs: flags.providerDirs,
      bundledProviders: flags.catalogue,
      cwd: io.cwd,
    });
    return { flags, result, diagnostics: applyStrict(result.diagnostics, flags.strict) };
  } catch (error) {
    if (error instanceof PatchbayError && error.code === 'PB_IO') {
      io.stderr.write(`patchbay: ${maskCredentials(error.message)}\n`);
      return ExitCode.usage;
    }
    throw error;
  }
}

/** `patchbay validate`: prints diagnostics in the chosen format; exit 1 when any error remains. */
export async function runValidate(argv: readonly string[], io: CliIO): Promise<number> {
  const outcome = await validateForCommand('validate', help, argv, io);
  if (typeof outcome === 'number') return outcome;
  const { flags, result, diagnostics } = outcome;
  const summary = { files: result.files, documents: result.documents };
  const output =
    flags.format === 'json'
      ? renderJson(diagnostics, summary)
      : flags.format === 'github'
        ? renderGithub(diagnostics, summary)
        : renderText(diagnostics, summary, flags.color);
  io.stdout.write(output);
  return diagnostics.some((d) => d.severity === 'error') ? ExitCode.problems : ExitCode.ok;
}
