import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type CliIO } from '../engine/cli/main.js';
import { fixtureIntegration, fixtureProvider, makeTempDir, repoRoot, runCli, writeFiles } from './support/cli.js';

// The CLI is exercised as a real process (bin/patchbay.js over dist/), as users and CI run it.

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

const textLine = /^(.+):(\d+):(\d+): (error|warning) (PB_[A-Z0-9_]+): (.+)$/;
const textSummary = /^\d+ files?, \d+ documents?: (\d+) errors?, (\d+) warnings?$/;
const ansi = /\u001b\[/;

interface JsonOutput {
  diagnostics: {
    file: string;
    line: number;
    column: number;
    endLine: number;
    endColumn: number;
    severity: 'error' | 'warning';
    code: string;
    message: string;
  }[];
  summary: { files: number; documents: number; errors: number; warnings: number };
}

// A typo in the operation name (line 23, column 13: the value of `call`).
const invalidIntegration = fixtureIntegration.replace('call: acme.notes.create', 'call: acme.notes.crate');

// An extra connection nobody uses: only a PB_CONNECTION_UNUSED warning (at its key, line 15 col 5).
const warningOnlyIntegration = fixtureIntegration
  .replace('name: acme-notes', 'name: acme-warning')
  .replace('  vars:\n', '    spare:\n      provider: vp\n      variables: { region: eu }\n  vars:\n');

// A provider whose connection variable has a pattern, so a message quotes the user's value.
const patternProvider = `apiVersion: patchbay/v1
kind: Provider
metadata:
  name: vp
spec:
  displayName: VP
  baseUrl: https://{region}.vp.test
  variables:
    region:
      pattern: ^[a-z]+$
  auth:
    - type: none
  operations:
    ping:
      summary: Ping
      input: { type: object }
`;

// The user's text lands in a message through the quoted `call` of the only step.
const quotingIntegration = (call: string) => `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: quoting
spec:
  connections:
    v:
      provider: vp
      variables:
        region: eu
  trigger:
    schedule:
      cron: "0 8 * * *"
  steps:
    - id: p
      call: ${call}
`;

let dir: string;
const providerArgs = () => ['--no-catalogue', '--providers', join(dir, 'providers')];

beforeAll(() => {
  dir = makeTempDir('cli');
  writeFiles(dir, {
    'providers/acme.yaml': fixtureProvider,
    'providers/vp.yaml': patternProvider,
    'valid/acme-notes.yaml': fixtureIntegration,
    'invalid/acme-notes.yaml': invalidIntegration,
    'warning/acme-notes.yaml': warningOnlyIntegration,
    // `%`, `:` and `,` in the file name must be escaped in GitHub annotation properties.
    'github/we:ird,name%.yaml': quotingIntegration('"50%\\nbad"'),
    'control/quoting.yaml': quotingIntegration('"x\\nsrc/evil.yaml:1:1: error PB_FAKE: injected\\e[2J"'),
  });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('patchbay (process)', () => {
  it('--version prints the package version and exits 0', async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`patchbay ${version}\n`);
    expect(result.stderr).toBe('');
  });

  it('with no arguments prints usage on stderr and exits 2', async () => {
    const result = await runCli([]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Usage: patchbay <command>/);
    expect(result.stderr).toContain('validate');
  });

  it('an unknown command exits 2 and suggests the closest one', async () => {
    const result = await runCli(['valdate']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('unknown command "valdate"');
    expect(result.stderr).toContain('(did you mean "validate"?)');
  });

  it('validate --format xml is a usage error (exit 2)', async () => {
    const result = await runCli(['validate', '--format', 'xml', join(dir, 'valid')]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('--format must be text, json or github, not "xml"');
  });

  it('validate of a path that does not exist exits 2 with a clear message', async () => {
    const result = await runCli(['validate', '/no/such/path']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^patchbay: cannot read \/no\/such\/path: no such file or folder\n$/);
  });

  it('a valid manifest exits 0 with a clean summary', async () => {
    const result = await runCli(['validate', 'valid', ...providerArgs()], { cwd: dir });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('1 file, 1 document: 0 errors, 0 warnings\n');
    expect(result.code).toBe(0);
  });

  it('an invalid manifest exits 1; text lines are file:line:col: severity CODE: message, then a summary', async () => {
    const result = await runCli(['validate', 'invalid', ...providerArgs()], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines.slice(0, -1)) expect(line).toMatch(textLine);
    expect(lines.at(-1)).toMatch(textSummary);
    const typo = lines.find((l) => l.startsWith('invalid/acme-notes.yaml:23:13: error PB_REF_UNKNOWN_OPERATION: '));
    expect(typo).toBeDefined();
    expect(typo).toContain('"notes.crate"');
    expect(typo).toContain('(did you mean "notes.create"?)');
    const [, errors, warnings] = textSummary.exec(lines.at(-1)!)!;
    const diagnosticLines = lines.slice(0, -1);
    expect(Number(errors)).toBe(diagnosticLines.filter((l) => textLine.exec(l)![4] === 'error').length);
    expect(Number(warnings)).toBe(diagnosticLines.filter((l) => textLine.exec(l)![4] === 'warning').length);
  });

  it('--format json parses, and its summary counts match its diagnostics', async () => {
    const result = await runCli(['validate', 'invalid', 'warning', '--format', 'json', ...providerArgs()], { cwd: dir });
    expect(result.code).toBe(1);
    const output = JSON.parse(result.stdout) as JsonOutput;
    expect(output.summary.files).toBe(2);
    expect(output.summary.documents).toBe(2);
    expect(output.summary.errors).toBe(output.diagnostics.filter((d) => d.severity === 'error').length);
    expect(output.summary.warnings).toBe(output.diagnostics.filter((d) => d.severity === 'warning').length);
    expect(output.summary.errors).toBeGreaterThanOrEqual(1);
    expect(output.summary.warnings).toBeGreaterThanOrEqual(1);
    const typo = output.diagnostics.find((d) => d.code === 'PB_REF_UNKNOWN_OPERATION');
    expect(typo).toMatchObject({
      file: 'invalid/acme-notes.yaml',
      line: 23,
      column: 13,
      endLine: 23,
      endColumn: 29,
      severity: 'error',
    });
    expect(typo!.message).toContain('(did you mean "notes.create"?)');
    for (const d of output.diagnostics) {
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.column).toBeGreaterThanOrEqual(1);
      expect(d.code).toMatch(/^PB_[A-Z0-9_]+$/);
    }
  });

  it('--format github prints workflow commands with escaped properties and data', async () => {
    const result = await runCli(['validate', 'github', '--format', 'github', ...providerArgs()], { cwd: dir });
    expect(result.code).toBe(1);
    const lines = result.stdout.trimEnd().split('\n');
    const error = lines.find((l) => l.startsWith('::error '));
    expect(error).toBeDefined();
    // Properties escape % : , (and CR LF); the message escapes % and CR LF but keeps : and ,.
    expect(error!.startsWith(
      '::error file=github/we%3Aird%2Cname%25.yaml,line=16,col=13,endLine=16,endColumn=23,title=PB_MANIFEST_BAD_VALUE::',
    )).toBe(true);
    // The newline is shown escaped (as \n) by the diagnostic itself, so it cannot split the line.
    expect(error).toContain('"50%25\\nbad"');
    // The newline in the value is escaped: one annotation line plus the summary line.
    expect(lines).toHaveLength(2);
    expect(error).not.toMatch(/\r/);
    for (const line of lines.slice(0, -1)) {
      expect(line).toMatch(/^::(error|warning) file=[^,:]+,line=\d+,col=\d+,endLine=\d+,endColumn=\d+,title=PB_[A-Z0-9_]+::/);
    }
    expect(lines.at(-1)).toBe('patchbay validate: 1 file, 1 document, 1 error, 0 warnings');
  });

  it('a message quoting a user value stays on one line and carries no raw control characters', async () => {
    // The value holds a newline followed by a forged diagnostic, and an ANSI "clear screen".
    const text = await runCli(['validate', 'control', ...providerArgs()], { cwd: dir });
    expect(text.code).toBe(1);
    const lines = text.stdout.trimEnd().split('\n');
    for (const line of lines.slice(0, -1)) expect(line).toMatch(textLine);
    expect(lines.filter((l) => l.includes('PB_FAKE'))).toHaveLength(1);
    expect(lines.some((l) => l.startsWith('src/evil.yaml'))).toBe(false);
    expect(text.stdout).not.toMatch(ansi);

    const github = await runCli(['validate', 'control', '--format', 'github', ...providerArgs()], { cwd: dir });
    expect(github.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(github.stdout).not.toMatch(ansi);
  });

  it('--strict turns a warning-only manifest into exit 1', async () => {
    const lenient = await runCli(['validate', 'warning', '--format', 'json', ...providerArgs()], { cwd: dir });
    expect(lenient.code).toBe(0);
    const lenientOutput = JSON.parse(lenient.stdout) as JsonOutput;
    expect(lenientOutput.summary).toMatchObject({ errors: 0, warnings: 1 });
    expect(lenientOutput.diagnostics[0]).toMatchObject({
      code: 'PB_CONNECTION_UNUSED',
      severity: 'warning',
      line: 15,
      column: 5,
    });

    const strict = await runCli(['validate', 'warning', '--strict', '--format', 'json', ...providerArgs()], { cwd: dir });
    expect(strict.code).toBe(1);
    const strictOutput = JSON.parse(strict.stdout) as JsonOutput;
    expect(strictOutput.summary).toMatchObject({ errors: 1, warnings: 0 });
    expect(strictOutput.diagnostics[0]).toMatchObject({ code: 'PB_CONNECTION_UNUSED', severity: 'error' });
  });

  it('output to a pipe, with or without NO_COLOR, has no ANSI escapes', async () => {
    for (const env of [{}, { NO_COLOR: '1' }]) {
      const result = await runCli(['validate', 'invalid', 'warning', ...providerArgs()], { cwd: dir, env });
      expect(result.code).toBe(1);
      expect(result.stdout).not.toMatch(ansi);
      expect(result.stderr).not.toMatch(ansi);
    }
  });

  it('list prints a table with the integration and exits 0', async () => {
    const result = await runCli(['list', 'valid', ...providerArgs()], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^INTEGRATION\s+TRIGGER\s+STEPS\s+FILE$/);
    expect(lines[1]).toMatch(/^acme-notes\s+webhook acme: order\.created\s+acme\.notes\.create → acme\.notes\.create\s+valid\/acme-notes\.yaml$/);
    expect(lines.at(-1)).toBe('1 integration ready; 2 providers in the catalogue.');
    expect(result.stdout).not.toMatch(ansi);
  });

  it('list --format json is parseable', async () => {
    const result = await runCli(['list', 'valid', '--format', 'json', ...providerArgs()], { cwd: dir });
    expect(result.code).toBe(0);
    const output = JSON.parse(result.stdout) as JsonOutput & { integrations: unknown[] };
    expect(output.diagnostics).toEqual([]);
    expect(output.summary).toMatchObject({ errors: 0, warnings: 0 });
    expect(output.integrations).toEqual([
      {
        name: 'acme-notes',
        file: 'valid/acme-notes.yaml',
        description: 'Writes a note for each new order.',
        trigger: 'webhook acme: order.created',
        steps: [
          { id: 'note', call: 'acme.notes.create' },
          { id: 'second', call: 'acme.notes.create' },
        ],
      },
    ]);
  });

  it('list --format json reports the problems of integrations it leaves out', async () => {
    const result = await runCli(['list', 'invalid', '--format', 'json', ...providerArgs()], { cwd: dir });
    expect(result.code).toBe(1);
    const output = JSON.parse(result.stdout) as JsonOutput & { integrations: unknown[] };
    expect(output.integrations).toEqual([]);
    expect(output.summary.errors).toBeGreaterThan(0);
    expect(output.diagnostics.some((d) => d.file === 'invalid/acme-notes.yaml' && d.severity === 'error')).toBe(true);
  });

  it('validating . does not load the parent folder\'s providers/, but a path below does', async () => {
    writeFiles(dir, {
      'nested/providers/broken.yaml': 'apiVersion: patchbay/v1\nkind: Provider\nmetadata: { name: broken }\nspec: {}\n',
      'nested/project/acme-notes.yaml': fixtureIntegration,
    });
    const here = await runCli(['validate', '.', '--no-catalogue'], { cwd: join(dir, 'nested', 'project') });
    expect(here.stdout).not.toContain('broken.yaml');
    const below = await runCli(['validate', 'project', '--no-catalogue'], { cwd: join(dir, 'nested') });
    expect(below.stdout).toContain('providers/broken.yaml');
    expect(below.code).toBe(1);
  });

  it('the bundled examples in integrations/ validate with exit 0', async () => {
    // Run from the repository root, as its README tells users to: catalogue plus ./providers.
    const result = await runCli(['validate', 'integrations', '--format', 'json']);
    expect(result.stderr).toBe('');
    const output = JSON.parse(result.stdout) as JsonOutput;
    expect(output.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(output.summary.files).toBeGreaterThanOrEqual(6);
    expect(result.code).toBe(0);
  });
});

describe('colour (in-process, with a terminal-like stdout)', () => {
  async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string }> {
    let stdout = '';
    const io: CliIO = {
      stdout: { write: (t: string) => (stdout += t), isTTY: true },
      stderr: { write: () => true },
      env,
      cwd: dir,
    };
    const code = await main(argv, io);
    return { code, stdout };
  }

  it('colours a terminal, and NO_COLOR or --no-color turn colour off', async () => {
    const args = ['validate', 'invalid', ...providerArgs()];
    const coloured = await run(args, {});
    expect(coloured.code).toBe(1);
    expect(coloured.stdout).toMatch(ansi);

    const noColorEnv = await run(args, { NO_COLOR: '1' });
    expect(noColorEnv.code).toBe(1);
    expect(noColorEnv.stdout).not.toMatch(ansi);

    const noColorFlag = await run([...args, '--no-color'], {});
    expect(noColorFlag.stdout).not.toMatch(ansi);
    // Without colour the text is exactly the piped output's.
    expect(noColorFlag.stdout).toBe(noColorEnv.stdout);
  });
});
