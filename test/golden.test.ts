import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// Golden files of invalid manifests: test/golden/cases/NN-name.yaml each shows one kind of
// mistake, and NN-name.expected lists the exact `file:line:col severity CODE` lines the real
// CLI must print for it. Messages are not in the goldens (they may be reworded without churn);
// they are checked here for the properties that matter: present, secret-free, with the hint.
// Only the fixture providers of test/golden/providers are loaded, so the catalogue's evolution
// cannot change these results.

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const casesDir = 'test/golden/cases';
const providersDir = 'test/golden/providers';
const cliEntry = join(repoRoot, 'dist', 'cli', 'main.js');
const goldenFlags = ['--no-catalogue', '--providers', providersDir];

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface JsonDiagnostic {
  file: string;
  line: number;
  column: number;
  severity: 'error' | 'warning';
  code: string;
  message: string;
}

/** Runs bin/patchbay.js from the repository root; resolves with the exit code, never rejects on one. */
function runCli(args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['bin/patchbay.js', ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

const caseFiles = readdirSync(join(repoRoot, casesDir)).sort();
const cases = caseFiles.filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length));
const expectedFiles = caseFiles.filter((f) => f.endsWith('.expected')).map((f) => f.slice(0, -'.expected'.length));

// The fake credentials and literal secrets written in the cases. Built from repeated characters
// so no real key is ever committed; the scanner must still recognise their shapes.
const fakeSecrets: Record<string, string> = {
  '42-secret-literal': 'hunter2-not-real',
  '43-live-key-stripe': `sk_live_${'x'.repeat(24)}`,
  '44-live-key-aws': `AKIA${'X'.repeat(16)}`,
  '45-live-key-slack': `xoxb-${'0'.repeat(12)}-${'x'.repeat(24)}`,
  '46-live-key-github': `ghp_${'x'.repeat(36)}`,
  '47-live-key-openai': `sk-${'Xx0'.repeat(15)}`,
  '48-live-key-private-key': 'not-a-real-key',
  '49-live-key-hex-token': 'a'.repeat(32),
  '50-test-key': `sk_test_${'x'.repeat(24)}`,
  '51-secret-in-vars': 'q7Rk2mXw9TzL4vNp8sYb',
  '87-nested-secret-in-vars': 'Zt4pQ9wLm2Xk7Rv3',
  '100-password-in-vars': 'Winter2024!',
  // Messages that quote a name or a call must mask the key inside it.
  '94-key-quoted-by-messages': `sk_live_${'Q1'.repeat(12)}`,
};

// Cases whose message must carry a did-you-mean suggestion.
const suggestions: Record<string, string> = {
  '12-unknown-kind': 'Integration',
  '13-unknown-field': 'continueOnError',
  '16-bad-enum': 'exponential',
  '21-unknown-provider': 'acme-pay',
  '22-unknown-connection': 'pay',
  '23-unknown-operation': 'messages.create',
  '29-unknown-input': 'from',
  '32-unknown-scope': 'charges.write',
  '37-api-version-unknown': '2024-06-01',
  '54-expr-unknown-root': 'event',
  '55-expr-unknown-step': 'lookup',
  '57-expr-unknown-var': 'sender',
  '58-expr-unknown-event-path': 'event.data.customer',
  '60-trigger-unknown-event': 'charge.succeeded',
  '62-trigger-bad-cursor': 'updated_since',
  '65-schedule-bad-timezone': 'Europe/Paris',
  '77-provider-bad-reference': 'item',
  '79-provider-unknown-field': 'header',
  '80-unknown-provider-in-call': 'acme-sms',
};

const caseArgs = ['validate', casesDir, ...goldenFlags];
let json: CliRun;
let text: CliRun;
let github: CliRun;
let providersOnly: CliRun;
let diagnostics: JsonDiagnostic[] = [];
const byFile = new Map<string, JsonDiagnostic[]>();

const caseFile = (name: string) => `${casesDir}/${name}.yaml`;
const lineOf = (d: { file: string; line: number; column: number; severity: string; code: string }) =>
  `${d.file}:${d.line}:${d.column} ${d.severity} ${d.code}`;

beforeAll(async () => {
  if (!existsSync(cliEntry)) {
    throw new Error(`${cliEntry} is missing: build first with \`npx tsc -p tsconfig.json\` (npm test does it in pretest)`);
  }
  [json, text, github, providersOnly] = await Promise.all([
    runCli([...caseArgs, '--format', 'json']),
    runCli([...caseArgs, '--format', 'text', '--no-color']),
    runCli([...caseArgs, '--format', 'github']),
    runCli(['validate', providersDir, ...goldenFlags, '--format', 'json']),
  ]);
  expect(json.stderr).toBe('');
  diagnostics = (JSON.parse(json.stdout) as { diagnostics: JsonDiagnostic[] }).diagnostics;
  for (const d of diagnostics) {
    const list = byFile.get(d.file) ?? [];
    list.push(d);
    byFile.set(d.file, list);
  }
}, 60_000);

describe('golden invalid manifests', () => {
  it('has at least 40 cases, each with a .expected file and no .expected file without its case', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(expectedFiles).toEqual(cases);
    const strays = caseFiles.filter((f) => !f.endsWith('.yaml') && !f.endsWith('.expected'));
    expect(strays).toEqual([]);
  });

  it('every case starts with a comment saying what mistake it shows', () => {
    for (const name of cases) {
      const first = readFileSync(join(repoRoot, caseFile(name)), 'latin1').split('\n')[0];
      expect(first, name).toMatch(/^# Mistake: .+/);
    }
  });

  it('the fixture providers validate clean on their own', () => {
    expect(providersOnly.stderr).toBe('');
    expect(JSON.parse(providersOnly.stdout).diagnostics).toEqual([]);
    expect(providersOnly.code).toBe(0);
  });

  it('the CLI exits 1 and reports problems only in the case files', () => {
    expect(json.code).toBe(1);
    const known = new Set(cases.map(caseFile));
    expect([...byFile.keys()].filter((file) => !known.has(file))).toEqual([]);
  });

  it.each(cases)('%s', (name) => {
    const expected = readFileSync(join(repoRoot, casesDir, `${name}.expected`), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    expect(expected.length, `${name}.expected lists no diagnostic`).toBeGreaterThan(0);
    const actual = (byFile.get(caseFile(name)) ?? []).map(lineOf);
    expect(actual).toEqual(expected);
  });

  it('the fake secrets are really in the cases (keeps this test in step with them)', () => {
    for (const [name, secret] of Object.entries(fakeSecrets)) {
      expect(readFileSync(join(repoRoot, caseFile(name)), 'utf8'), name).toContain(secret);
    }
  });

  it('every message is non-empty and quotes no secret', () => {
    const secrets = Object.values(fakeSecrets);
    for (const d of diagnostics) {
      expect(d.message.trim(), lineOf(d)).not.toBe('');
      for (const secret of secrets) expect(d.message, lineOf(d)).not.toContain(secret);
    }
    for (const output of [text.stdout, github.stdout]) {
      for (const secret of secrets) expect(output).not.toContain(secret);
    }
  });

  it.each(Object.entries(suggestions))('%s suggests "%s"', (name, suggestion) => {
    const messages = (byFile.get(caseFile(name)) ?? []).map((d) => d.message);
    expect(messages.some((m) => m.includes(`did you mean "${suggestion}"`)), messages.join('\n')).toBe(true);
  });
});

describe('golden output formats', () => {
  it('text: one `file:line:col: severity CODE: message` line per diagnostic, then the counts', () => {
    expect(text.code).toBe(1);
    const lines = text.stdout.trimEnd().split('\n');
    const summary = lines.pop();
    expect(summary).toMatch(/^\d+ files?, \d+ documents?: \d+ errors?, \d+ warnings?$/);
    expect(lines).toHaveLength(diagnostics.length);
    lines.forEach((line, i) => {
      const d = diagnostics[i]!;
      expect(line.startsWith(`${d.file}:${d.line}:${d.column}: ${d.severity} ${d.code}: `), line).toBe(true);
    });
  });

  it('github: an ::error or ::warning annotation with file, line and col per diagnostic', () => {
    expect(github.code).toBe(1);
    const lines = github.stdout.trimEnd().split('\n');
    const errors = diagnostics.filter((d) => d.severity === 'error');
    expect(errors.length).toBeGreaterThan(0);
    for (const d of diagnostics) {
      const prefix = `::${d.severity} file=${d.file},line=${d.line},col=${d.column},`;
      expect(lines.some((line) => line.startsWith(prefix)), prefix).toBe(true);
    }
    expect(lines.filter((line) => line.startsWith('::error ')).length).toBe(errors.length);
  });
});
