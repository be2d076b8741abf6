import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codes } from '../engine/diag/codes.js';
import { validateManifests } from '../engine/manifest/validate.js';
import { renderCatalogueTable } from '../engine/providers/catalogue-table.js';
import { runCli } from './support/cli.js';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

function section(start: string, end: string): string {
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  expect(from, `README lacks the marker ${start}`).toBeGreaterThanOrEqual(0);
  expect(to, `README lacks the marker ${end}`).toBeGreaterThan(from);
  return readme.slice(from + start.length, to);
}

describe('README', () => {
  it('shows the two commands on its first screen', () => {
    const firstScreen = readme.split('\n').slice(0, 30).join('\n');
    expect(firstScreen).toContain('npm ci && npm start');
    expect(firstScreen).toContain('npm ci && npm test');
  });

  it('has an error-code table that matches engine/diag/codes.ts exactly', () => {
    const table = section('<!-- error-codes:start -->', '<!-- error-codes:end -->');
    const rows = table
      .split('\n')
      .filter((line) => line.startsWith('| `PB_'))
      .map((line) => line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()));
    const documented = rows.map(([code, severity, retry, summary]) => ({
      code: code!.replaceAll('`', ''),
      severity,
      retry,
      summary: summary!.replaceAll('\\|', '|'),
    }));
    const actual = Object.entries(codes).map(([code, entry]) => ({
      code,
      severity: entry.severity,
      retry: entry.retry,
      summary: entry.summary,
    }));
    expect(documented).toEqual(actual);
  });

  it('has a catalogue table that matches the bundled providers exactly (regenerate: node scripts/readme-tables.mjs)', async () => {
    const table = section('<!-- catalogue:start -->', '<!-- catalogue:end -->').trim();
    const dir = mkdtempSync(join(tmpdir(), 'patchbay-readme-catalogue-'));
    try {
      writeFileSync(join(dir, 'empty.yaml'), '# no documents\n');
      const { registry } = await validateManifests({ paths: ['empty.yaml'], cwd: dir });
      const bundled = registry.values().filter((p) => p.origin === 'bundled').map((p) => p.document);
      expect(bundled.length).toBeGreaterThanOrEqual(14);
      expect(table).toBe(renderCatalogueTable(bundled));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('every yaml block validates clean', () => {
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const dir = mkdtempSync(join(tmpdir(), 'patchbay-readme-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('has yaml examples', () => {
      expect(blocks.length).toBeGreaterThanOrEqual(3);
    });

    blocks.forEach((block, index) => {
      it(`block ${index + 1}: ${block.match(/name: (\S+)/)?.[1] ?? 'unnamed'}`, async () => {
        const file = join(dir, `block-${index + 1}.yaml`);
        writeFileSync(file, block);
        const result = await validateManifests({ paths: [file], cwd: dir });
        const lines = result.diagnostics.map((d) => `${d.start.line}:${d.start.column} ${d.code} ${d.message}`);
        expect(lines).toEqual([]);
        expect(result.documents).toBeGreaterThan(0);
      });
    });
  });

  it('shows what patchbay call --dry-run really prints for the quickstart example', async () => {
    const block = [...readme.matchAll(/```console\n\$ npx patchbay call (.*)\n([\s\S]*?)```/g)][0];
    expect(block, 'README lacks the patchbay call console example').toBeDefined();
    // The shell line's single-quoted JSON is one argument; the rest split on spaces.
    const args = [...block![1]!.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
    const result = await runCli(['call', ...args], { cwd: root, env: { SLACK_BOT_TOKEN: undefined } });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(block![2]);
  });

  it('shows a benchmark table with the command that produced it', () => {
    const bench = section('<!-- bench:start -->', '<!-- bench:end -->');
    expect(bench).toContain('npm run bench');
    expect(bench).toMatch(/\|\s*metric\s*\|/i);
  });
});
