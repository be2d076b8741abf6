import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { compareDiagnostics, makeDiagnostic, type Diagnostic } from '../diag/diagnostic.js';
import { PatchbayError } from '../diag/errors.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { packageRoot } from '../lib/package-root.js';
import { hashBytes, readCatalogueSnapshot } from '../providers/catalogue.js';
import { ProviderRegistry, type LoadedProvider } from '../providers/registry.js';
import type { IntegrationDocument } from '../types/integration.generated.js';
import { checkIntegration } from './integration-check.js';
import type { ProviderDocument } from '../types/provider.generated.js';
import { checkProvider, type SchemaProblem } from './provider-check.js';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ErrorObject } from 'ajv';
import { DocumentReporter } from './report.js';
import { checkSchema, loadSchemaValidators, pointerToPath, type DocumentKind } from './schema-check.js';
import { allowMarker, findCredentials } from '../lib/credentials.js';
import { locate, parseSource, positionAt, sourceLimits, type SourceDocument } from './source.js';

export interface ValidateOptions {
  /** Files and folders holding manifests; folders are searched for *.yaml and *.yml. */
  readonly paths: readonly string[];
  /** Extra folders of the user's own provider definitions. */
  readonly providerDirs?: readonly string[];
  /** Load the catalogue shipped in the package's providers/ (default true). */
  readonly bundledProviders?: boolean;
  /** Directory file names are shown relative to (default: process.cwd()). */
  readonly cwd?: string;
  /** Use the build's snapshot of the bundled catalogue for unchanged files (default true). */
  readonly catalogueSnapshot?: boolean;
}

/** An integration document that passed every check. */
export interface LoadedIntegration {
  readonly name: string;
  readonly document: IntegrationDocument;
  readonly source: SourceDocument;
}

export interface ValidationResult {
  /** Every problem found, sorted by file and position. */
  readonly diagnostics: Diagnostic[];
  /** Manifest files read from `paths` (providers loaded from elsewhere are not counted). */
  readonly files: number;
  /** Documents found in those files. */
  readonly documents: number;
  /** Integrations without errors, in file order. */
  readonly integrations: LoadedIntegration[];
  readonly registry: ProviderRegistry;
}

const manifestExtensions = /\.ya?ml$/i;

/**
 * Lists manifest files under `paths`, each once: files named directly are taken whatever their
 * extension; folders are searched recursively for *.yaml / *.yml, following symbolic links and
 * skipping dot-folders and node_modules. Throws PatchbayError PB_IO for a path that does not
 * exist, cannot be read or is not a regular file or folder, and (with `requireManifests`) for a
 * path that holds no manifest.
 */
export function findManifestFiles(paths: readonly string[], cwd: string, requireManifests = false): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visited = new Set<string>();
  let foundForPath = 0;
  const add = (file: string) => {
    foundForPath += 1;
    const real = realPath(file);
    if (seen.has(real)) return;
    seen.add(real);
    out.push(file);
  };
  const visit = (dir: string) => {
    // Symbolic links are followed (manifests are often linked in from a shared folder); the
    // set of visited real folders stops a link cycle.
    const real = realPath(dir);
    if (visited.has(real)) return;
    visited.add(real);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    } catch (error) {
      throw new PatchbayError('PB_IO', `cannot read folder ${displayName(dir, cwd)}: ${ioReason(error)}`, { cause: error });
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const full = join(dir, entry.name);
      let kind: 'dir' | 'file' | undefined = entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : undefined;
      if (entry.isSymbolicLink()) {
        try {
          const target = statSync(full);
          kind = target.isDirectory() ? 'dir' : target.isFile() ? 'file' : undefined;
        } catch {
          // A dangling link names nothing to validate.
          kind = undefined;
        }
      }
      if (kind === 'dir') visit(full);
      else if (kind === 'file' && manifestExtensions.test(entry.name)) add(full);
    }
  };
  for (const path of paths) {
    const full = resolve(cwd, path);
    let stats;
    try {
      stats = statSync(full);
    } catch (error) {
      throw new PatchbayError('PB_IO', `cannot read ${path}: ${ioReason(error)}`, { cause: error });
    }
    foundForPath = 0;
    visited.clear();
    if (stats.isDirectory()) visit(full);
    else if (stats.isFile()) add(full);
    // A FIFO or a device would block or never end.
    else throw new PatchbayError('PB_IO', `${path} is not a regular file or folder`);
    if (requireManifests && foundForPath === 0) {
      // A CI step pointed at the wrong folder must not pass by validating nothing.
      throw new PatchbayError('PB_IO', `no *.yaml or *.yml files under ${path}`);
    }
  }
  return out;
}

/** Says why a file operation failed, without the path (the caller names it). */
function ioReason(error: unknown): string {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'ELOOP':
      return 'too many symbolic links';
    default:
      return code ?? (error instanceof Error ? error.message : String(error));
  }
}

/** The path relative to `cwd` when it lies inside it, else as given: how files are shown. */
function displayName(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function realPath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    // A file that vanished between listing and reading is reported when it is read.
    return file;
  }
}

interface ClassifiedDocument {
  readonly source: SourceDocument;
  readonly kind: DocumentKind;
  readonly reporter: DocumentReporter;
  readonly origin: LoadedProvider['origin'];
  schemaValid: boolean;
}

/**
 * Validates every manifest under `paths` together with the provider catalogue, and returns all
 * problems at once. Never throws for a problem in the input; throws PatchbayError PB_IO only
 * when a named path cannot be read.
 */
export async function validateManifests(options: ValidateOptions): Promise<ValidationResult> {
  const cwd = options.cwd ?? process.cwd();
  const diagnostics: Diagnostic[] = [];
  const validators = await loadSchemaValidators();

  const manifestFiles = findManifestFiles(options.paths, cwd, true);
  const providerFiles: { file: string; origin: LoadedProvider['origin'] }[] = [];
  if (options.bundledProviders ?? true) {
    for (const file of findManifestFiles([join(packageRoot, 'providers')], cwd)) providerFiles.push({ file, origin: 'bundled' });
  }
  for (const file of findManifestFiles(options.providerDirs ?? [], cwd)) providerFiles.push({ file, origin: 'user' });

  // A file reached twice (the user validates the bundled providers/ itself) is read once, as the user's.
  const seen = new Map<string, LoadedProvider['origin']>();
  const ordered: { file: string; origin: LoadedProvider['origin']; counted: boolean }[] = [];
  const manifestReal = new Set(manifestFiles.map(realPath));
  for (const { file, origin } of providerFiles) {
    const real = realPath(file);
    if (seen.has(real) || manifestReal.has(real)) continue;
    seen.set(real, origin);
    ordered.push({ file, origin, counted: false });
  }
  for (const file of manifestFiles) {
    const real = realPath(file);
    if (seen.has(real)) continue;
    seen.set(real, 'user');
    ordered.push({ file, origin: 'user', counted: true });
  }

  const registry = new ProviderRegistry();
  const snapshot = (options.catalogueSnapshot ?? true) ? readCatalogueSnapshot() : undefined;
  const classified: ClassifiedDocument[] = [];
  let documentCount = 0;
  for (const { file, origin, counted } of ordered) {
    let bytes: Buffer;
    try {
      // Check the size first: a huge file is refused without being read into memory.
      const size = statSync(file).size;
      if (size > sourceLimits.maxFileBytes) {
        diagnostics.push(
          makeDiagnostic(
            'PB_YAML_TOO_LARGE',
            `file is ${size} bytes, more than the ${sourceLimits.maxFileBytes}-byte limit; split it into several files`,
            displayName(file, cwd),
            { line: 1, column: 1 },
          ),
        );
        continue;
      }
      bytes = readFileSync(file);
    } catch (error) {
      throw new PatchbayError('PB_IO', `cannot read ${displayName(file, cwd)}: ${ioReason(error)}`, { cause: error });
    }
    if (origin === 'bundled' && snapshot) {
      const entry = snapshot.files[relative(packageRoot, file)];
      if (entry && entry.sha256 === hashBytes(bytes)) {
        for (const document of entry.providers) registry.set({ name: document.metadata.name, document, origin });
        continue;
      }
    }
    const shown = displayName(file, cwd);
    const parsed = parseSource(shown, bytes);
    diagnostics.push(...parsed.diagnostics);
    for (const finding of findCredentials(parsed.text)) {
      const start = positionAt(parsed.lineCounter, finding.start);
      const end = positionAt(parsed.lineCounter, finding.end);
      const live = finding.kind === 'live';
      diagnostics.push(
        makeDiagnostic(
          live ? 'PB_SECRET_LIVE_KEY' : 'PB_SECRET_TEST_KEY',
          `this looks like ${live ? 'a real credential' : 'a test-mode credential'} (${finding.label}); remove it, reference it as { env: NAME } instead${
            live ? ', and rotate it: it is in the history now' : ''
          } (a reviewed false positive can be silenced with a "# ${allowMarker}" comment on its line)`,
          shown,
          start,
          end,
        ),
      );
    }
    if (counted) documentCount += parsed.documents.length;
    for (const source of parsed.documents) {
      const reporter = new DocumentReporter(source, diagnostics);
      const kind = classify(source, reporter);
      if (kind) classified.push({ source, kind, reporter, schemaValid: false, origin });
    }
  }

  for (const entry of classified) {
    entry.schemaValid = checkSchema(validators[entry.kind], entry.source.value, entry.reporter);
  }

  const integrations: LoadedIntegration[] = [];
  const firstByName = new Map<string, ClassifiedDocument>();
  const { validateSchema, validateValue } = schemaChecker();

  for (const entry of classified) {
    const value = entry.source.value as { metadata?: { name?: unknown } };
    const name = typeof value.metadata?.name === 'string' ? value.metadata.name : undefined;
    if (name === undefined) continue;
    const key = `${entry.kind}/${name}`;
    const first = firstByName.get(key);
    // A user's provider may replace a bundled one of the same name; any other repeat is an error.
    if (first && !(first.kind === 'Provider' && first.origin === 'bundled' && entry.origin === 'user')) {
      const where = locate(first.source, ['metadata', 'name']);
      const pos = positionAt(first.source.lineCounter, where.start);
      entry.reporter.at(
        ['metadata', 'name'],
        'PB_MANIFEST_DUPLICATE_NAME',
        `${entry.kind.toLowerCase()} "${name}" is already defined at ${first.source.file}:${pos.line}:${pos.column}; names must be unique`,
      );
      continue;
    }
    firstByName.set(key, entry);
    if (entry.kind === 'Provider' && entry.schemaValid) {
      const document = entry.source.value as ProviderDocument;
      checkProvider(document, entry.reporter, validateSchema, validateValue);
      registry.set({ name, document, source: entry.source, origin: entry.origin });
    }
  }

  for (const entry of classified) {
    if (entry.kind === 'Integration') checkIntegration(entry.source.value, entry.reporter, registry);
  }

  // An integration is usable when no error points into its document's range of its file.
  const errorFiles = new Map<string, { line: number }[]>();
  for (const d of diagnostics) {
    if (d.severity !== 'error') continue;
    const list = errorFiles.get(d.file) ?? [];
    list.push({ line: d.start.line });
    errorFiles.set(d.file, list);
  }
  for (const entry of classified) {
    if (entry.kind !== 'Integration' || !entry.schemaValid) continue;
    const range = entry.source.doc.range;
    const first = positionAt(entry.source.lineCounter, range[0]).line;
    const last = positionAt(entry.source.lineCounter, range[2]).line;
    const broken = (errorFiles.get(entry.source.file) ?? []).some((e) => e.line >= first && e.line <= last);
    if (broken) continue;
    const document = entry.source.value as IntegrationDocument;
    integrations.push({ name: document.metadata.name, document, source: entry.source });
  }

  diagnostics.sort(compareDiagnostics);
  const unique = diagnostics.filter(
    (d, i) => i === 0 || compareDiagnostics(d, diagnostics[i - 1]!) !== 0 || d.message !== diagnostics[i - 1]!.message,
  );
  return { diagnostics: unique, files: manifestFiles.length, documents: documentCount, integrations, registry };
}

const kinds: readonly DocumentKind[] = ['Integration', 'Provider'];

function classify(source: SourceDocument, reporter: DocumentReporter): DocumentKind | undefined {
  const value = source.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    reporter.at([], 'PB_MANIFEST_NOT_OBJECT', 'a manifest document must be a mapping with apiVersion, kind, metadata and spec');
    return undefined;
  }
  const { apiVersion, kind } = value as { apiVersion?: unknown; kind?: unknown };
  if (apiVersion !== 'patchbay/v1') {
    if (apiVersion === undefined) {
      reporter.at([], 'PB_MANIFEST_API_VERSION', 'missing apiVersion: add apiVersion: patchbay/v1 as the first key');
    } else {
      reporter.at(['apiVersion'], 'PB_MANIFEST_API_VERSION', `apiVersion ${JSON.stringify(apiVersion)} is not supported; use patchbay/v1`);
    }
    return undefined;
  }
  if (typeof kind !== 'string' || !(kinds as readonly string[]).includes(kind)) {
    if (kind === undefined) {
      reporter.at([], 'PB_MANIFEST_UNKNOWN_KIND', 'missing kind: write kind: Integration or kind: Provider');
    } else {
      reporter.at(
        ['kind'],
        'PB_MANIFEST_UNKNOWN_KIND',
        `unknown kind ${JSON.stringify(kind)}${typeof kind === 'string' ? didYouMean(kind, kinds) : ''}; use Integration or Provider`,
      );
    }
    return undefined;
  }
  return kind as DocumentKind;
}

/**
 * Functions that check a JSON Schema against the 2020-12 meta-schema, and a value against a
 * schema, each returning the first problem with its path (inside the schema, or inside the
 * value). The Ajv instance is built on first use only.
 */
function schemaChecker(): {
  validateSchema: (schema: unknown) => SchemaProblem | undefined;
  validateValue: (schema: unknown, value: unknown) => SchemaProblem | undefined;
} {
  let ajv: InstanceType<typeof Ajv2020.default> | undefined;
  // Provider input schemas come from OpenAPI documents and use its annotations (`example`,
  // `x-…`); only the structure is checked, so unknown keywords are allowed.
  const instance = () => (ajv ??= new Ajv2020.default({ strict: false, validateFormats: false, allErrors: false }));
  const firstProblem = (errors: ErrorObject[] | null | undefined): SchemaProblem => {
    const error = errors?.[0];
    if (!error) return { path: [], message: 'not valid' };
    const allowed = (error.params as { allowedValues?: unknown[] }).allowedValues;
    const detail = allowed ? ` (one of ${allowed.join(', ')})` : '';
    return { path: pointerToPath(error.instancePath), message: `${error.instancePath || 'the value'} ${error.message ?? 'is invalid'}${detail}` };
  };
  return {
    validateSchema: (schema) => {
      const checker = instance();
      if (checker.validateSchema(schema as object) === true) return undefined;
      return firstProblem(checker.errors);
    },
    validateValue: (schema, value) => {
      const checker = instance();
      let validate;
      try {
        validate = checker.compile(schema as object);
      } catch {
        // An uncompilable schema is already reported by validateSchema.
        return undefined;
      }
      return validate(value) ? undefined : firstProblem(validate.errors);
    },
  };
}
