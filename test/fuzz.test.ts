import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateManifests } from '../engine/manifest/validate.js';
import { fixtureIntegration, fixtureProvider, makeTempDir, repoRoot, runCli, writeFiles } from './support/cli.js';
import { mulberry32 } from './support/random.js';

// Robustness: hundreds of broken manifests must each end in diagnostics, never in a crash, a
// hang or a usage error. Mutants are generated from a seeded PRNG, so a failure is reproducible
// from the seed and the mutant's file name (which lists the mutations applied).

// PATCHBAY_FUZZ_SEED and PATCHBAY_FUZZ_BATCHES explore further (or replay) without editing.
const SEED = Number(process.env.PATCHBAY_FUZZ_SEED ?? 0x5eed_2026);
const BATCHES = Number(process.env.PATCHBAY_FUZZ_BATCHES ?? 3);
const PER_BATCH = 100;
const BATCH_LIMIT_MS = 20_000;

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---------------------------------------------------------------------------------------------
// Base manifests

interface Base {
  readonly name: string;
  readonly text: string;
}

function yamlFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFilesUnder(full));
    else if (/\.ya?ml$/i.test(entry.name)) out.push(full);
  }
  return out.sort();
}

function loadBases(): Base[] {
  const bases: Base[] = [
    { name: 'integration', text: fixtureIntegration },
    { name: 'provider', text: fixtureProvider },
    // A provider and an integration using it in one file, so broken providers meet the
    // integration checks (the `acme` names are made unique per mutant).
    { name: 'bundle', text: `${fixtureProvider}---\n${fixtureIntegration}` },
  ];
  for (const file of [...yamlFilesUnder(join(repoRoot, 'integrations')), ...yamlFilesUnder(join(repoRoot, 'providers'))]) {
    bases.push({ name: relative(repoRoot, file).replace(/[^A-Za-z0-9]+/g, '_'), text: readFileSync(file, 'utf8') });
  }
  return bases;
}

// ---------------------------------------------------------------------------------------------
// Mutations

type TextOp = (text: string, rng: Rng) => string;
type ByteOp = (bytes: Buffer, rng: Rng) => Buffer;

const keyLine = /^(\s*)(- )?([^\s#'"{[][^:#]*):(\s|$)/;

function indentOf(line: string): number {
  const match = /^(\s*)(- )?/.exec(line)!;
  return match[1]!.length + (match[2] ? 2 : 0);
}

function keyLines(lines: string[]): number[] {
  return lines.flatMap((line, i) => (keyLine.test(line) ? [i] : []));
}

/** End (exclusive) of the block that starts at line `i`: the following more-indented lines. */
function blockEnd(lines: string[], i: number): number {
  const indent = indentOf(lines[i]!);
  let end = i + 1;
  while (end < lines.length && (lines[end]!.trim() === '' || indentOf(lines[end]!) > indent)) end++;
  return end;
}

function wrongValue(rng: Rng): string {
  return rng.pick([
    '42',
    '-1',
    '0',
    '3.5e308',
    '-.inf',
    '.nan',
    '0x1F',
    'true',
    'null',
    '~',
    '[]',
    '{}',
    '[1, 2, 3]',
    '[[[], {}], null]',
    '{ a: [ { b: null } ] }',
    `"${'x'.repeat(rng.pick([1, 300, 70_000]))}"`,
    '!!binary aGVsbG8gd29ybGQ=',
    '!!timestamp 2001-12-14t21:59:43.10-05:00',
    '!!set { a, b }',
    '!!omap [ a: 1, b: 2 ]',
    '!custom tag',
    '*undefinedAlias',
    '&lonelyAnchor value',
    '"{{"',
    "'}}'",
    '|\n  literal\n  block',
    '>-\n  folded',
    '? complex key\n: value',
    '<<: *nothing',
  ]);
}

function templateFragment(rng: Rng): string {
  const tokens = ['{{', '}}', '}}}', '{{ ', ' }}', 'event.', 'event.order.', 'steps.', 'steps.note.output.', 'vars.', 'trigger.',
    '$', '$$', '(', ')', '[', ']', '{', '}', '"', "'", '`', '\\', 'function($x){ $x }', '?', ':', ' ', 'order', 'note', 'id',
    '~>', '$count(', '**', '*', '%', '@$i', '#$i', ':=', ';', '-', 'and', 'in', '?:', '??', '0', '1e999', 'ñ', '😀'];
  let out = '';
  for (let n = 3 + rng.int(10); n > 0; n--) out += rng.pick(tokens);
  return out;
}

function nestedBlockMapping(depth: number, indent: string): string {
  let out = '';
  for (let i = 0; i < depth; i++) out += `${indent}${'  '.repeat(i)}k${i}:\n`;
  return out + `${indent}${'  '.repeat(depth)}leaf\n`;
}

function replaceValue(text: string, rng: Rng, value: (indent: string) => string): string {
  const lines = text.split('\n');
  const candidates = keyLines(lines);
  if (candidates.length === 0) return text + `\nx: ${value('  ')}\n`;
  const i = rng.pick(candidates);
  const line = lines[i]!;
  const match = keyLine.exec(line)!;
  const head = line.slice(0, match.index + match[0].length - match[4]!.length);
  const end = rng.chance(0.7) ? blockEnd(lines, i) : i + 1;
  const produced = value(' '.repeat(indentOf(line) + 2));
  const replacement = produced.includes('\n') && !produced.startsWith(' ') && !/^[|>]/.test(produced) && !produced.startsWith('?')
    ? `${head}\n${produced.replace(/\n$/, '')}`
    : `${head} ${produced}`;
  lines.splice(i, end - i, replacement);
  return lines.join('\n');
}

const textOps: Record<string, TextOp> = {
  deleteKey(text, rng) {
    const lines = text.split('\n');
    const candidates = keyLines(lines);
    if (candidates.length === 0) return text;
    const i = rng.pick(candidates);
    lines.splice(i, blockEnd(lines, i) - i);
    return lines.join('\n');
  },
  wrongType(text, rng) {
    return replaceValue(text, rng, () => wrongValue(rng));
  },
  duplicateKey(text, rng) {
    const lines = text.split('\n');
    const candidates = keyLines(lines).filter((i) => !lines[i]!.trimStart().startsWith('- '));
    if (candidates.length === 0) return text;
    const i = rng.pick(candidates);
    const block = lines.slice(i, rng.chance(0.5) ? blockEnd(lines, i) : i + 1);
    lines.splice(i, 0, ...block);
    return lines.join('\n');
  },
  deepFlow(text, rng) {
    const depth = rng.pick([70, 1000, 5000]);
    const open = rng.pick(['[', '{a: ']);
    const close = open === '[' ? ']' : '}';
    const closed = rng.chance(0.5);
    return replaceValue(text, rng, () => open.repeat(depth) + (closed ? `1${close.repeat(depth)}` : ''));
  },
  deepBlock(text, rng) {
    return replaceValue(text, rng, (indent) => nestedBlockMapping(rng.pick([65, 200]), indent));
  },
  aliasChain(text, rng) {
    const levels = 2 + rng.int(rng.chance(0.5) ? 6 : 20);
    const width = 2 + rng.int(8);
    const lines = ['x-chain:', `  c0: &c0 [${Array(width).fill('"lol"').join(', ')}]`];
    for (let i = 1; i < levels; i++) lines.push(`  c${i}: &c${i} [${Array(width).fill(`*c${i - 1}`).join(', ')}]`);
    if (rng.chance(0.3)) lines.push(`  merged: { <<: *c0 }`);
    const insertion = lines.join('\n');
    // At the top of the document, or inside spec.vars where any value is allowed.
    if (rng.chance(0.5) && /^ {2}vars:\n/m.test(text)) {
      return text.replace(/^ {2}vars:\n/m, `  vars:\n${insertion.replace(/^/gm, '    ').replace(/^ {4}x-chain:/m, '    chain:')}\n`);
    }
    return `${insertion}\n${text}`;
  },
  tabs(text, rng) {
    const lines = text.split('\n');
    const i = rng.int(lines.length);
    lines[i] = rng.chance(0.5) ? lines[i]!.replace(/^ +/, '\t') : `${lines[i]!.slice(0, 3)}\t${lines[i]!.slice(3)}`;
    return lines.join('\n');
  },
  template(text, rng) {
    if (rng.chance(0.5) && text.includes('{{')) {
      const at = text.indexOf('{{', rng.int(text.length / 2));
      const position = at < 0 ? text.indexOf('{{') : at;
      return text.slice(0, position) + templateFragment(rng).replace(/["\n]/g, '') + text.slice(position);
    }
    return replaceValue(text, rng, () => JSON.stringify(templateFragment(rng)));
  },
  unicode(text, rng) {
    const at = rng.int(text.length + 1);
    const inserted = rng.pick(['\u202e', '\ufeff', '😀', 'é', '\u2028', '\u0085', '\r', '\r\n', '\u00a0', '\u200b', '\ud800', '\udfff']);
    return text.slice(0, at) + inserted + text.slice(at);
  },
  swapLines(text, rng) {
    const lines = text.split('\n');
    const a = rng.int(lines.length);
    const b = rng.int(lines.length);
    [lines[a], lines[b]] = [lines[b]!, lines[a]!];
    return lines.join('\n');
  },
  moreDocuments(text, rng) {
    if (rng.chance(0.3)) return text + '---\nn: 1\n'.repeat(201 + rng.int(50));
    return `${text}\n---\n${rng.chance(0.5) ? text : ''}${rng.chance(0.5) ? '\n...\n' : ''}`;
  },
  hugeString(text, rng) {
    return replaceValue(text, rng, () => `"${'y'.repeat(rng.pick([60_000, 300_000]))}"`);
  },
  structural(text, rng) {
    const docs = parseAllDocuments(text);
    const documents = Array.isArray(docs) ? docs : [docs];
    if (documents.length === 0 || documents.some((d) => d.errors.length > 0)) return textOps.wrongType!(text, rng);
    let values: unknown[];
    try {
      values = documents.map((d) => d.toJS({ maxAliasCount: 100 }) as unknown);
    } catch {
      return textOps.wrongType!(text, rng);
    }
    const targets = values.filter((v): v is Record<string, unknown> => v !== null && typeof v === 'object');
    if (targets.length === 0) return textOps.wrongType!(text, rng);
    const target = rng.pick(targets);
    for (let n = 1 + rng.int(3); n > 0; n--) mutateValue(target, rng);
    return values.map((v) => stringifyYaml(v, { aliasDuplicateObjects: false, lineWidth: 0 })).join('---\n');
  },
};

function jsWrongValue(rng: Rng): unknown {
  return rng.pick<unknown>([42, -1, 0, 1e308, Number.MAX_SAFE_INTEGER + 2, 0.5, true, false, null, [], {}, [1, 'two', null],
    { nested: { deeper: [null, { x: [] }] } }, 'x'.repeat(rng.pick([0, 1, 5_000])), '{{ event. }}', '{{ steps.nope.output }}',
    '${{ secrets.X }}', 'sk-' + 'z'.repeat(30), '0 0 31 2 *', '*/0 * * * *', '1ms', '99999d', 'Mars/Olympus', 'http://example.com']);
}

/** Applies one random change somewhere inside `root`: delete, retype, rename, duplicate. */
function mutateValue(root: Record<string, unknown> | unknown[], rng: Rng): void {
  let node: Record<string, unknown> | unknown[] = root;
  for (let depth = 0; depth < 12; depth++) {
    const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    // A broken apiVersion or kind stops all further checks: go into `spec` most of the time.
    const key = depth === 0 && keys.includes('spec' as never) && rng.chance(0.85) ? 'spec' : rng.pick(keys as (string | number)[]);
    const child = (node as Record<string | number, unknown>)[key];
    const descend = child !== null && typeof child === 'object' && rng.chance(0.8);
    if (descend) {
      node = child as Record<string, unknown>;
      continue;
    }
    const target = node as Record<string | number, unknown>;
    switch (rng.int(5)) {
      case 0:
        if (Array.isArray(node)) node.splice(key as number, 1);
        else delete target[key];
        return;
      case 1:
      case 2:
        target[key] = jsWrongValue(rng);
        return;
      case 3:
        if (Array.isArray(node)) {
          node.push(structuredClone(child));
        } else if (typeof key === 'string' && key.length > 1) {
          const i = rng.int(key.length - 1);
          const typo = key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
          delete target[key];
          target[typo === key ? `${key}x` : typo] = child;
        }
        return;
      default:
        target[key] = typeof child === 'string' ? `${child}${templateFragment(rng)}` : [child, child];
        return;
    }
  }
}

const byteOps: Record<string, ByteOp> = {
  truncate(bytes, rng) {
    return bytes.subarray(0, rng.int(bytes.length + 1));
  },
  garbage(bytes, rng) {
    const at = rng.int(bytes.length + 1);
    const junk = Buffer.alloc(1 + rng.int(64));
    for (let i = 0; i < junk.length; i++) junk[i] = rng.int(256);
    return Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)]);
  },
  nul(bytes, rng) {
    const at = rng.int(bytes.length + 1);
    return Buffer.concat([bytes.subarray(0, at), Buffer.from([0]), bytes.subarray(at)]);
  },
  invalidUtf8(bytes, rng) {
    const at = rng.int(bytes.length + 1);
    const bad = rng.pick([[0xff], [0xfe, 0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]]);
    return Buffer.concat([bytes.subarray(0, at), Buffer.from(bad), bytes.subarray(at)]);
  },
};

const textOpNames = Object.keys(textOps);
const byteOpNames = Object.keys(byteOps);
const allOpNames = [...textOpNames, ...byteOpNames];

interface Mutant {
  readonly file: string;
  readonly bytes: Buffer;
}

function makeMutant(base: Base, index: number, forced: string | undefined, rng: Rng): Mutant {
  // Unique names, so that mutants are not all reported as duplicates of each other.
  let text = base.text.replace(/^( {2}name: ).*$/m, `$1m${index}`);
  if (base.name === 'bundle') text = text.replaceAll(/\bacme\b/g, `p${index}`);
  const ops: string[] = [];
  if (forced) ops.push(forced);
  for (let n = rng.int(3); n > 0; n--) {
    // Structural changes go deepest into the checks: weight them.
    ops.push(rng.chance(0.35) ? 'structural' : rng.chance(0.85) ? rng.pick(textOpNames) : rng.pick(byteOpNames));
  }
  if (ops.length === 0) ops.push('structural');
  // Byte-level damage last: the text operations need text.
  ops.sort((a, b) => Number(a in byteOps) - Number(b in byteOps));
  for (const op of ops) if (op in textOps) text = textOps[op]!(text, rng);
  let bytes: Buffer = Buffer.from(text, 'utf8');
  for (const op of ops) if (op in byteOps) bytes = byteOps[op]!(bytes, rng);
  const extension = rng.chance(0.2) ? 'yml' : 'yaml';
  return { file: `m${String(index).padStart(3, '0')}-${base.name}-${ops.join('+')}.${extension}`, bytes };
}

// ---------------------------------------------------------------------------------------------

interface JsonOutput {
  diagnostics: { file: string; line: number; column: number; endLine: number; endColumn: number; severity: string; code: string; message: string }[];
  summary: { files: number; documents: number; errors: number; warnings: number };
}

let root: string;
let providersDir: string;
let bases: Base[];

beforeAll(() => {
  root = makeTempDir('fuzz');
  providersDir = join(root, 'providers');
  writeFiles(root, { 'providers/acme.yaml': fixtureProvider });
  bases = loadBases();
});

afterAll(() => {
  // PATCHBAY_FUZZ_KEEP=1 keeps the mutants for replaying one by hand.
  if (process.env.PATCHBAY_FUZZ_KEEP) process.stdout.write(`fuzz mutants kept in ${root}\n`);
  else rmSync(root, { recursive: true, force: true });
});

/** In-process re-run of each file of a failed batch, to name the ones that throw. */
async function throwingFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    try {
      await validateManifests({ paths: [join(dir, name)], providerDirs: [providersDir], cwd: root });
    } catch (error) {
      out.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return out;
}

describe('fuzz: mutated manifests through the CLI', () => {
  it.each(Array.from({ length: BATCHES }, (_, b) => b))('batch %i: 100 mutants end in diagnostics, never a crash', async (batch) => {
    const rng = new Rng(SEED + batch);
    const dir = join(root, `b${batch}`);
    mkdirSync(dir);
    const files = new Set<string>();
    for (let i = 0; i < PER_BATCH; i++) {
      const index = batch * PER_BATCH + i;
      // Every operator leads at least one mutant of every batch.
      const forced = i < allOpNames.length ? allOpNames[i] : undefined;
      const mutant = makeMutant(rng.pick(bases), index, forced, rng);
      writeFileSync(join(dir, mutant.file), mutant.bytes);
      files.add(`b${batch}/${mutant.file}`);
    }

    const result = await runCli(['validate', `b${batch}`, '--format', 'json', '--providers', providersDir], {
      cwd: root,
      timeoutMs: BATCH_LIMIT_MS + 5_000,
    });

    const context = result.code === 0 || result.code === 1 ? '' : `\nthrowing in-process:\n${(await throwingFiles(dir)).join('\n')}`;
    expect(result.timedOut, `batch ${batch} timed out`).toBe(false);
    expect(result.signal, result.stderr).toBeNull();
    expect([0, 1], `exit ${result.code}; stderr: ${result.stderr.slice(0, 2000)}${context}`).toContain(result.code);
    expect(result.stderr).not.toContain('internal error');
    expect(result.stderr).toBe('');
    expect(result.durationMs).toBeLessThan(BATCH_LIMIT_MS);

    const output = JSON.parse(result.stdout) as JsonOutput;
    expect(output.summary.files).toBe(PER_BATCH);
    expect(output.summary.errors).toBe(output.diagnostics.filter((d) => d.severity === 'error').length);
    expect(output.summary.warnings).toBe(output.diagnostics.filter((d) => d.severity === 'warning').length);
    const mentioned = new Set<string>();
    for (const d of output.diagnostics) {
      expect(typeof d.file).toBe('string');
      expect(d.line, JSON.stringify(d)).toBeGreaterThanOrEqual(1);
      expect(d.column, JSON.stringify(d)).toBeGreaterThanOrEqual(1);
      expect(d.endLine, JSON.stringify(d)).toBeGreaterThanOrEqual(d.line);
      expect(d.code, JSON.stringify(d)).toMatch(/^PB_[A-Z0-9_]+$/);
      expect(['error', 'warning']).toContain(d.severity);
      expect(d.message.length).toBeGreaterThan(0);
      mentioned.add(d.file);
    }
    // Nearly every mutant is broken somehow; most must be reported (a few mutations are harmless).
    const reported = [...files].filter((f) => mentioned.has(f)).length;
    expect(reported).toBeGreaterThan(PER_BATCH / 2);
  });
});

describe('fuzz: worst cases in-process (validateManifests)', () => {
  function billionLaughs(levels: number): string {
    const lines = ['apiVersion: patchbay/v1', 'kind: Integration', 'lol0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < levels; i++) lines.push(`lol${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(',')}]`);
    return lines.join('\n') + '\n';
  }

  // `patternProperties` beside the order's `properties`; the integration reads a name that is
  // not among them, so the check falls through to the patterns.
  const badRegexProvider = fixtureProvider.replace(
    '                      qty: { type: integer }\n',
    '                      qty: { type: integer }\n              patternProperties: { "[": { type: string } }\n',
  );
  const badRegexIntegration = fixtureIntegration.replace('orderId: "{{ event.order.id }}"', 'orderId: "{{ event.order.nope }}"');

  const cases: [string, Record<string, string | Uint8Array>][] = [
    ['5,000 unclosed [', { 'm.yaml': `a: ${'['.repeat(5000)}\n` }],
    ['5,000 nested [ ]', { 'm.yaml': `a: ${'['.repeat(5000)}${']'.repeat(5000)}\n` }],
    ['3,000 nested flow mappings', { 'm.yaml': `a: ${'{a: '.repeat(3000)}1${'}'.repeat(3000)}\n` }],
    ['200-level nested mappings', { 'm.yaml': nestedBlockMapping(200, '') }],
    ['billion laughs (9 levels)', { 'm.yaml': billionLaughs(9) }],
    ['a file over 1 MiB', { 'm.yaml': `a: "${'x'.repeat(1024 * 1024)}"\n` }],
    ['250 documents', { 'm.yaml': '---\nkind: Integration\n'.repeat(250) }],
    ['NUL bytes', { 'm.yaml': new Uint8Array([0x61, 0x3a, 0x20, 0x00, 0x00, 0x0a]) }],
    ['invalid UTF-8', { 'm.yaml': new Uint8Array([0x61, 0x3a, 0x20, 0xff, 0xfe, 0xc3, 0x28, 0x0a]) }],
    ['random binary', { 'm.yaml': new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)) }],
    ['an expression nested 5,000 deep', {
      'm.yaml': fixtureIntegration.replace('"{{ event.order.id }}"', `"{{ ${'('.repeat(5000)}event.order.id${')'.repeat(5000)} }}"`),
    }],
    ['an expression of 5,000 terms joined by &', {
      'm.yaml': fixtureIntegration.replace('"{{ event.order.id }}"', `"{{ ${Array(5000).fill('event.order.id').join(' & ')} }}"`),
    }],
    ['every value of the integration null', { 'm.yaml': fixtureIntegration.replace(/: [^\n]+$/gm, ': null') }],
    ['a provider event schema with an invalid patternProperties regex', {
      'm.yaml': `${badRegexProvider.replaceAll('acme', 'rx')}---\n${badRegexIntegration.replaceAll('acme', 'rx')}`,
    }],
  ];

  it.each(cases)('%s: diagnostics, no exception', async (_name, files) => {
    const dir = makeTempDir('worst');
    try {
      writeFiles(dir, files);
      const result = await validateManifests({ paths: [join(dir, 'm.yaml')], providerDirs: [providersDir], bundledProviders: false, cwd: dir });
      expect(result.diagnostics.length).toBeGreaterThan(0);
      for (const d of result.diagnostics) {
        expect(d.start.line).toBeGreaterThanOrEqual(1);
        expect(d.start.column).toBeGreaterThanOrEqual(1);
        expect(d.code).toMatch(/^PB_/);
      }
      // One problem, one line: no flood of identical diagnostics.
      const distinct = new Set(result.diagnostics.map((d) => `${d.code} ${d.start.line}:${d.start.column} ${d.message}`));
      expect(distinct.size).toBe(result.diagnostics.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
