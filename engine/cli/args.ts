import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ExitCode, type CliIO } from './main.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** What `parseArgs` returns for `options`, with positionals allowed and strict checking. */
export type ParsedArgs<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>;

/**
 * Parses a command's arguments with `node:util`'s strict `parseArgs`, plus `-h/--help`. Returns
 * the exit code instead when there is nothing more to do: the help printed to stdout (0), or an
 * unknown flag or a missing value printed as `patchbay <command>: …` with the help on stderr (2).
 * Control characters of the user's text are escaped in the message.
 */
export function parseCommandArgs<const T extends Options>(command: string, argv: readonly string[], options: T, help: string, io: CliIO): ParsedArgs<T> | number {
  let parsed: ParsedArgs<T>;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h', default: false } }, allowPositionals: true, strict: true }) as ParsedArgs<T>;
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    io.stderr.write(`patchbay ${command}: ${message}\n\n${help}`);
    return ExitCode.usage;
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    io.stdout.write(help);
    return ExitCode.ok;
  }
  return parsed;
}
