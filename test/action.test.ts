import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';

// The composite action a user's repository calls: its shell steps run here as GitHub would run
// them (bash, the documented environment), against the real CLI.
const root = join(import.meta.dirname, '..');
const action = parse(readFileSync(join(root, '.github/actions/validate/action.yml'), 'utf8')) as {
  inputs: Record<string, { description: string; default?: string }>;
  runs: { using: string; steps: { id?: string; run?: string; env?: Record<string, string> }[] };
};
const installStep = action.runs.steps.find((s) => s.id === 'install')!;
const validateStep = action.runs.steps.filter((s) => s.run).at(-1)!;
const workspace = mkdtempSync(join(tmpdir(), 'patchbay-action-'));
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

function runStep(script: string, env: Record<string, string>) {
  return spawnSync('bash', ['-c', script], { cwd: workspace, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
}

const integration = (extra: string) => `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: action-check
spec:
  connections:
    slack:
      provider: slack
      auth: { type: bearer, token: { env: SLACK_BOT_TOKEN } }
${extra}  trigger:
    schedule: { cron: "0 8 * * 1-5" }
  steps:
    - id: hello
      call: slack.chat.postMessage
      with: { channel: "#general", text: Good morning }
`;

describe('the validate composite action', () => {
  it('is a composite action whose inputs are documented', () => {
    expect(action.runs.using).toBe('composite');
    for (const [name, input] of Object.entries(action.inputs)) expect(input.description, name).not.toBe('');
    expect(installStep.run).toContain('npm ci');
  });

  it('annotates problems on the offending lines and fails the step', () => {
    mkdirSync(join(workspace, 'integrations'), { recursive: true });
    writeFileSync(join(workspace, 'integrations/bad.yaml'), integration('  vars: { chanel: "#general" }\n').replace('"#general", text', '"{{ vars.channel }}", text'));
    const result = runStep(validateStep.run!, {
      PATCHBAY_CLI: join(root, 'bin/patchbay.js'),
      PATCHBAY_PATHS: 'integrations',
      PATCHBAY_PROVIDERS: '',
      PATCHBAY_STRICT: 'false',
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^::error file=integrations\/bad\.yaml,line=16,col=\d+,.*title=PB_EXPR_UNKNOWN_VAR::/m);
    rmSync(join(workspace, 'integrations/bad.yaml'));
  });

  it('passes clean manifests, and fails warnings only when strict', () => {
    writeFileSync(join(workspace, 'integrations/warn.yaml'), integration('    unused:\n      provider: github\n      auth: { type: bearer, token: { env: OTHER } }\n'));
    const env = { PATCHBAY_CLI: join(root, 'bin/patchbay.js'), PATCHBAY_PATHS: 'integrations', PATCHBAY_PROVIDERS: '' };
    const lenient = runStep(validateStep.run!, { ...env, PATCHBAY_STRICT: 'false' });
    expect(lenient.status).toBe(0);
    expect(lenient.stdout).toMatch(/^::warning .*title=PB_CONNECTION_UNUSED::/m);
    const strict = runStep(validateStep.run!, { ...env, PATCHBAY_STRICT: 'true' });
    expect(strict.status).toBe(1);
    expect(strict.stdout).toMatch(/^::error .*title=PB_CONNECTION_UNUSED::/m);
  });

  it('refuses a bare npm version, which would install an unrelated package of the same name', () => {
    const output = join(workspace, 'github-output');
    writeFileSync(output, '');
    const result = runStep(installStep.run!, { PATCHBAY_SPEC: '0.2.0', GITHUB_OUTPUT: output, RUNNER_TEMP: workspace });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('not an npm version');
    expect(readFileSync(output, 'utf8')).toBe('');
  });
});
