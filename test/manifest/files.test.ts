import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';
import { validateManifests } from '../../engine/manifest/validate.js';
import { parseSource } from '../../engine/manifest/source.js';
import { findCredentials } from '../../engine/lib/credentials.js';
import { makeTempDir } from '../support/cli.js';

const dir = makeTempDir('files');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const manifest = (name: string) => `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: ${name}
spec:
  connections:
    slack:
      provider: slack
      auth: { type: bearer, token: { env: SLACK_BOT_TOKEN } }
  trigger:
    schedule: { cron: "0 8 * * 1-5" }
  steps:
    - id: hello
      call: slack.chat.postMessage
      with: { channel: "#general", text: Good morning }
`;

async function ioError(promise: Promise<unknown>): Promise<PatchbayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PatchbayError);
  expect((error as PatchbayError).code).toBe('PB_IO');
  return error as PatchbayError;
}

describe('finding manifest files', () => {
  it('follows symbolic links to files and folders, once each, without looping', async () => {
    mkdirSync(join(dir, 'shared'), { recursive: true });
    writeFileSync(join(dir, 'shared', 'linked.yaml'), manifest('linked'));
    mkdirSync(join(dir, 'repo'), { recursive: true });
    symlinkSync(join(dir, 'shared'), join(dir, 'repo', 'shared-folder'));
    symlinkSync(join(dir, 'shared', 'linked.yaml'), join(dir, 'repo', 'also-linked.yaml'));
    symlinkSync(join(dir, 'repo'), join(dir, 'repo', 'loop'));
    const result = await validateManifests({ paths: ['repo'], cwd: dir });
    expect(result.diagnostics).toEqual([]);
    expect(result.files).toBe(1);
    expect(result.integrations.map((i) => i.name)).toEqual(['linked']);
  });

  it('refuses every path that holds no manifest, not only when all are empty', async () => {
    mkdirSync(join(dir, 'empty'), { recursive: true });
    const error = await ioError(validateManifests({ paths: ['shared', 'empty'], cwd: dir }));
    expect(error.message).toBe('no *.yaml or *.yml files under empty');
  });

  it('names the reason a path cannot be read', async () => {
    const error = await ioError(validateManifests({ paths: ['missing'], cwd: dir }));
    expect(error.message).toBe('cannot read missing: no such file or folder');
  });

  it('refuses a FIFO instead of blocking on it', async () => {
    execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
    const error = await ioError(validateManifests({ paths: ['pipe.yaml'], cwd: dir }));
    expect(error.message).toContain('not a regular file');
    rmSync(join(dir, 'pipe.yaml'));
  });

  it('reports a huge file from its size, without reading it', async () => {
    mkdirSync(join(dir, 'huge'), { recursive: true });
    // A sparse 3 GiB file: reading it would take seconds and gigabytes; stat takes nothing.
    writeFileSync(join(dir, 'huge', 'big.yaml'), '');
    truncateSync(join(dir, 'huge', 'big.yaml'), 3 * 1024 ** 3);
    const before = process.memoryUsage().rss;
    const result = await validateManifests({ paths: ['huge'], cwd: dir });
    expect(result.diagnostics.map((d) => [d.code, d.file])).toEqual([['PB_YAML_TOO_LARGE', 'huge/big.yaml']]);
    expect(process.memoryUsage().rss - before).toBeLessThan(512 * 1024 ** 2);
  });
});

describe('inputs built to be slow stay linear', () => {
  it('a 200 KB run of "a." (once quadratic in the URL-password pattern)', () => {
    const text = `metadata:\n  description: "${'a.'.repeat(100_000)}"\n`;
    const started = performance.now();
    expect(findCredentials(text)).toEqual([]);
    // The quadratic version took over 20 s; linear takes milliseconds. The bound only catches the former.
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('flow mappings of many keys (once quadratic in the duplicate-key check of the parser)', () => {
    const mapping = (count: number) => {
      const keys = Array.from({ length: count }, (_, i) => `k${i}: 0`);
      keys.push('k7: 1');
      return new TextEncoder().encode(`{${keys.join(', ')}}\n`);
    };
    // 100,000 keys (about 1 MB, over the document limit): the quadratic check took minutes.
    let started = performance.now();
    expect(parseSource('big.yaml', mapping(100_000)).diagnostics.map((d) => d.code)).toEqual(['PB_YAML_TOO_LARGE']);
    expect(performance.now() - started).toBeLessThan(5000);
    // 20,000 keys fit the limit: the duplicate is found, named and placed.
    started = performance.now();
    const parsed = parseSource('m.yaml', mapping(20_000));
    expect(parsed.diagnostics.map((d) => d.code)).toEqual(['PB_YAML_DUPLICATE_KEY']);
    expect(parsed.diagnostics[0]!.message).toContain('"k7"');
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe('YAML features', () => {
  it('honours merge keys, so shared defaults can be written once', () => {
    const parsed = parseSource(
      'm.yaml',
      new TextEncoder().encode('defaults: &d { channel: "#ops", unfurl_links: false }\nmessage:\n  <<: *d\n  text: hi\n'),
    );
    expect(parsed.diagnostics).toEqual([]);
    expect(parsed.documents[0]!.value).toEqual({
      defaults: { channel: '#ops', unfurl_links: false },
      message: { channel: '#ops', unfurl_links: false, text: 'hi' },
    });
  });

  it('reports an unquoted {{ }} that YAML would read as a mapping', () => {
    const parsed = parseSource('m.yaml', new TextEncoder().encode('with:\n  to: {{ vars.phone }}\n  body: "{{ vars.text }}"\n'));
    expect(parsed.diagnostics.map((d) => [d.code, d.start.line, d.start.column])).toEqual([['PB_YAML_UNQUOTED_EXPRESSION', 2, 7]]);
  });
});
