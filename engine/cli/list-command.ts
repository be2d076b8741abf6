import { renderGithub, renderJson, renderText } from '../diag/render.js';
import { maskCredentials } from '../lib/credentials.js';
import type { LoadedIntegration } from '../manifest/validate.js';
import { ExitCode, type CliIO } from './main.js';
import { validateForCommand } from './validate-command.js';

const help = `Usage: patchbay list [paths…] [options]

Validates the manifests under the paths (default: integrations) and lists the integrations with
their trigger and steps. Problems are printed first, as by "patchbay validate".

Options: the same as "patchbay validate". --format json prints one object: the diagnostics and
summary of "validate --format json" plus "integrations"; --format github prints annotations first.
`;

function describeTrigger(integration: LoadedIntegration): string {
  const trigger = integration.document.spec.trigger;
  if (trigger.webhook) return `webhook ${trigger.webhook.connection}: ${trigger.webhook.events.join(', ')}`;
  if (trigger.poll) return `poll ${trigger.poll.connection}.${trigger.poll.operation} "${trigger.poll.schedule}"`;
  if (trigger.schedule) return `schedule "${trigger.schedule.cron}" ${trigger.schedule.timezone ?? 'UTC'}`;
  return '?';
}

/** Formats rows as a left-aligned table with a header. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** `patchbay list`: validates, then prints a table of valid integrations. */
export async function runList(argv: readonly string[], io: CliIO): Promise<number> {
  const outcome = await validateForCommand('list', help, argv, io);
  if (typeof outcome === 'number') return outcome;
  const { flags, result, diagnostics } = outcome;
  const failed = diagnostics.some((d) => d.severity === 'error');
  if (flags.format === 'json') {
    // The same diagnostics and summary as `validate --format json`, plus the integrations.
    const report = JSON.parse(renderJson(diagnostics, { files: result.files, documents: result.documents })) as object;
    io.stdout.write(
      JSON.stringify(
        {
          ...report,
          integrations: result.integrations.map((i) => ({
            name: i.name,
            file: maskCredentials(i.source.file),
            description: i.document.metadata.description ?? null,
            trigger: describeTrigger(i),
            steps: i.document.spec.steps.map((s) => ({ id: s.id, call: s.call })),
          })),
        },
        null,
        2,
      ) + '\n',
    );
    return failed ? ExitCode.problems : ExitCode.ok;
  }
  if (flags.format === 'github' && diagnostics.length > 0) {
    io.stdout.write(renderGithub(diagnostics, { files: result.files, documents: result.documents }));
  } else if (diagnostics.length > 0) {
    io.stdout.write(renderText(diagnostics, { files: result.files, documents: result.documents }, flags.color));
  }
  const rows = result.integrations.map((i) => [
    i.name,
    describeTrigger(i),
    i.document.spec.steps.map((s) => s.call).join(' → '),
    maskCredentials(i.source.file),
  ]);
  io.stdout.write(formatTable(['INTEGRATION', 'TRIGGER', 'STEPS', 'FILE'], rows));
  io.stdout.write(
    `${result.integrations.length} integration${result.integrations.length === 1 ? '' : 's'} ready; ` +
      `${result.registry.names().length} providers in the catalogue.\n`,
  );
  return failed ? ExitCode.problems : ExitCode.ok;
}
