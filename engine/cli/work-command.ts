import { Executor } from '../executor/executor.js';
import { startRetention } from '../executor/retention.js';
import { parseDurationMs } from '../lib/duration.js';
import { JsonLineLogger, type LogLevel } from '../lib/log.js';
import { engineFlags, loadEngineFor } from './load-engine.js';
import { parseCommandArgs } from './args.js';
import { ExitCode, type CliIO } from './main.js';
import { watchStopSignals } from './stop-signals.js';

const help = `Usage: patchbay work [paths…] [options]

Executes the runs queued in the state file: walks each run's steps with its retry, rate-limit and
timeout policies and idempotency keys, retries on durable timers, and resumes runs that a stopped
or killed engine left unfinished at their first unfinished step. Integrations with validation
errors are reported and skipped; the others run. Events come from "patchbay enqueue" (and, with
the daemon, from webhooks, pollers and schedules).

Options:
  --state PATH          State file (default .patchbay/state.db, or the PATCHBAY_STATE variable)
  --until-idle          Exit once no run of a valid integration is queued, running or waiting
                        for a retry
  --retention DURATION  Delete runs that finished longer ago than this, at start and hourly
                        (default 30d, or the PATCHBAY_RETENTION variable; "off" keeps all)
  --log-level LEVEL     debug, info, warn or error (default info); JSON lines on stderr
  --providers DIR       A folder of your own provider definitions (repeatable)
  --no-catalogue        Do not load the bundled provider catalogue
  -h, --help            Show this help

SIGTERM or SIGINT stops claiming runs, lets steps in flight finish for up to 10 s and leaves the
rest to resume on the next start; a second signal exits at once.

Exit status: 0 stopped cleanly, 1 no valid integration, 2 usage or environment error.
`;

const levels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** `patchbay work`: see `help`. */
export async function runWork(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseCommandArgs('work', argv, {
    ...engineFlags,
    'until-idle': { type: 'boolean', default: false },
    retention: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  }, help, io);
  if (typeof parsed === 'number') return parsed;
  const level = parsed.values['log-level'] as LogLevel;
  if (!levels.includes(level)) {
    io.stderr.write(`patchbay work: --log-level must be one of ${levels.join(', ')}\n`);
    return ExitCode.usage;
  }
  const retentionText = parsed.values.retention ?? io.env.PATCHBAY_RETENTION ?? '30d';
  const retentionMs = retentionText === 'off' ? undefined : parseDurationMs(retentionText);
  if (retentionText !== 'off' && (retentionMs === undefined || retentionMs < 60_000)) {
    io.stderr.write(`patchbay work: --retention must be a duration of at least 1m (such as 30d) or "off", not "${retentionText}"\n`);
    return ExitCode.usage;
  }
  const engine = await loadEngineFor('work', parsed.values, parsed.positionals, new JsonLineLogger(io.stderr, level), io);
  if (typeof engine === 'number') return engine;

  const executor = new Executor({ store: engine.store, plan: engine.plan, logger: engine.logger });
  executor.start();
  const stopRetention = retentionMs === undefined ? async () => undefined : startRetention({ store: engine.store, retentionMs, logger: engine.logger });
  engine.logger.log('info', 'executing runs', {
    revision: engine.plan.revision,
    integrations: [...engine.plan.integrations.keys()],
    broken: [...engine.plan.broken.keys()],
    owner: executor.owner,
  });

  const signals = watchStopSignals(engine.logger, 'stopping: finishing steps in flight');

  let idleCheck: NodeJS.Timeout | undefined;
  if (parsed.values['until-idle']) {
    // Disabled integrations' runs are not executed, so they do not keep the worker busy.
    const names = new Set([...engine.plan.integrations.values()].filter((plan) => plan.enabled).map((plan) => plan.name));
    const check = async (): Promise<void> => {
      try {
        const counts = await engine.store.countRuns();
        const open = counts.some((row) => names.has(row.integration) && row.count > 0 && (row.status === 'queued' || row.status === 'running' || row.status === 'retrying'));
        if (!open && executor.inFlightCount() === 0) {
          signals.request();
          return;
        }
      } catch (error) {
        engine.logger.log('warn', 'could not count open runs; looking again', { error: error instanceof Error ? error.message : String(error) });
      }
      idleCheck = setTimeout(() => void check(), 100);
    };
    idleCheck = setTimeout(() => void check(), 50);
  }

  await signals.stopped;
  if (idleCheck !== undefined) clearTimeout(idleCheck);
  await executor.stop();
  await stopRetention();
  signals.dispose();
  await engine.close();
  engine.logger.log('info', 'stopped');
  return ExitCode.ok;
}
