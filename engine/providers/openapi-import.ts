import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PatchbayError } from '../diag/errors.js';
import { packageRoot } from '../lib/package-root.js';
import type { ProviderAuthScheme, ProviderDocument, ProviderOperation } from '../types/provider.generated.js';
import { toProviderYaml } from './import/emit-yaml.js';
import { chooseLevels, detailLevels } from './import/fit.js';
import {
  baselineFeatures,
  describeOperation,
  listOperations,
  operationName,
  renderOperation,
  shapeOperation,
  type OperationShape,
  type ProviderFeatures,
  type RawOperation,
  type ShapeContext,
} from './import/operations.js';
import { readApiDocument, type ApiDocument } from './import/read-document.js';
import { dereferenceDocument } from './import/references.js';
import type { SchemaNotes } from './import/schema-convert.js';
import { baseServerVariables, convertSecuritySchemes, serverHost, serverTemplate, swaggerServer, type ServerTemplate } from './import/servers-auth.js';
import { firstSentence, maskQuoted, redactCredentials, shortenText } from './import/text.js';

export { maxImportBytes, maxNestingDepth } from './import/read-document.js';
export { baselineFeatures, type ProviderFeatures } from './import/operations.js';

/** The largest provider document the importer writes: `patchbay validate` refuses documents over 256 KiB. */
export const defaultMaxDocumentBytes = 255 * 1024;

/** How {@link importOpenApi} names, selects and sizes the provider it makes. */
export interface OpenApiImportOptions {
  /** The provider's `metadata.name` (a DNS label; checked by the caller). */
  readonly name: string;
  /** How the input is named in messages and in the generated header (a file name). */
  readonly sourceName: string;
  /**
   * Keep only operations matching one of these: a tag (case-insensitive) or operationId, a path
   * prefix (starting with `/`), or a regular expression over the path (starting with `^`).
   * Empty or absent: every operation.
   */
  readonly include?: readonly string[];
  /** Base URL used instead of the document's servers (for every operation). */
  readonly baseUrl?: string;
  /**
   * What the provider schema in use accepts (default {@link baselineFeatures}): methods, body
   * encodings, and whether operations may set `baseUrl`, `contentType` and `responseFormat`.
   * Operations whose server differs from the provider's get a `baseUrl` when allowed, and are
   * reported otherwise.
   */
  readonly features?: ProviderFeatures;
  /** Size limit of the generated YAML, in bytes (default {@link defaultMaxDocumentBytes}). */
  readonly maxDocumentBytes?: number;
  /** Value of the `# yaml-language-server: $schema=` header line; omitted: no such line. */
  readonly schemaHint?: string;
}

/** An operation of the document that was not imported, and why. */
export interface SkippedOperation {
  /** `METHOD /path (operationId)`. */
  readonly operation: string;
  readonly reason: string;
}

/** Something the import changed or left out that a reviewer should know. */
export interface ImportNote {
  /** The provider operation it concerns; absent for the provider as a whole. */
  readonly operation?: string;
  readonly message: string;
}

/** The provider {@link importOpenApi} made, and the report of what it left out or changed. */
export interface OpenApiImportResult {
  /** The generated provider (before credential-looking text is redacted from the YAML). */
  readonly document: ProviderDocument;
  /** The document as YAML, with its header comments and credential-looking text redacted, ready to write. */
  readonly yaml: string;
  /** `openapi` / `swagger` as the document declares it. */
  readonly declaredVersion: string;
  /** Operations under the document's `paths`. */
  readonly totalOperations: number;
  /** Operations `include` did not select. */
  readonly excludedOperations: number;
  /** Operations in the provider: `totalOperations - excludedOperations - skipped.length`. */
  readonly importedOperations: number;
  readonly skipped: SkippedOperation[];
  readonly notes: ImportNote[];
  /** `include` values that matched no operation. */
  readonly unmatchedIncludes: string[];
  /** Operations written with leaner schemas than the richest level, to fit the size limit. */
  readonly reducedOperations: number;
  /** Schemas cut at the depth or size bound or at a recursive reference. */
  readonly truncatedSchemas: number;
}

/**
 * Turns an OpenAPI 3.x or Swagger 2.0 description (JSON or YAML, optionally gzip-compressed)
 * into a Patchbay provider definition: servers → `baseUrl`, `variables` and `hosts`; security
 * schemes → `auth`; each operation → an operation named after its operationId, with its
 * parameters and request body as inputs and its 2xx JSON response as output. Local `$ref`s are
 * resolved; recursive ones and deep or huge schemas are cut with "(truncated)". When the result
 * would pass `maxDocumentBytes`, the largest operations get leaner schemas (no output, shorter
 * descriptions, less depth) until it fits. The result is not validated here (the caller runs
 * `patchbay validate`'s checks). Messages quote JSON pointers and paths of the document as
 * written and mask the values they quote (versions, tags, server URLs). Throws PatchbayError:
 * PB_IMPORT_INPUT_TOO_LARGE, PB_IMPORT_SYNTAX, PB_IMPORT_NOT_OPENAPI (see `readApiDocument`);
 * PB_IMPORT_BAD_REF (external or dangling `$ref`, or a cycle of bare `$ref`s);
 * PB_IMPORT_TOO_DEEP (objects and lists nested past {@link maxNestingDepth}); PB_USAGE (an
 * `include` regex or `baseUrl` that is invalid); PB_IMPORT_NO_BASE_URL (no absolute server and no `baseUrl`);
 * PB_IMPORT_NO_OPERATIONS (nothing selected or nothing importable);
 * PB_IMPORT_OUTPUT_TOO_LARGE (over the limit even at the leanest level).
 */
export async function importOpenApi(bytes: Uint8Array, options: OpenApiImportOptions): Promise<OpenApiImportResult> {
  const sourceName = options.sourceName;
  const api = readApiDocument(bytes, sourceName);
  const matchers = compileIncludes(options.include ?? []);
  const override = options.baseUrl === undefined ? undefined : baseUrlOverride(options.baseUrl);
  const doc = await dereferenceDocument(api, sourceName);
  const notes: ImportNote[] = [];
  const globalNotes: string[] = [];

  const auth = convertSecuritySchemes(doc, api.version, globalNotes);
  const oauth = auth.auth.find((scheme) => scheme.type === 'oauth2');
  const scopes: Record<string, string> | undefined = oauth ? { ...(oauth.scopes ?? {}) } : undefined;
  const features = options.features ?? baselineFeatures;
  const context: ShapeContext = { doc, version: api.version, auth, scopes, serverOverride: override !== undefined, features };

  // Select and shape operations.
  const all = listOperations(doc);
  const matched = new Set<string>();
  const selected = all.filter((raw) => {
    if (matchers.length === 0) return true;
    let hit = false;
    for (const matcher of matchers) {
      if (!matcher.test(raw)) continue;
      matched.add(matcher.value);
      hit = true;
    }
    return hit;
  });
  const unmatchedIncludes = matchers.filter((m) => !matched.has(m.value)).map((m) => m.value);
  if (selected.length === 0) {
    if (matchers.length > 0) {
      const tags = [...new Set(all.flatMap((raw) => raw.tags))].slice(0, 30);
      throw new PatchbayError(
        'PB_IMPORT_NO_OPERATIONS',
        `--include ${matchers.map((m) => JSON.stringify(m.value)).join(', ')} matched none of the ${all.length} operations of ${sourceName}${
          tags.length > 0 ? `; its tags include ${maskQuoted(tags.join(', '))}` : ''
        }`,
      );
    }
    throw new PatchbayError('PB_IMPORT_NO_OPERATIONS', `${sourceName} has no operations under \`paths\``);
  }
  const skipped: SkippedOperation[] = [];
  const shapes: { raw: RawOperation; shape: OperationShape }[] = [];
  const usedNames = new Set<string>();
  for (const raw of selected) {
    let name = operationName(raw);
    const opNotes: string[] = [];
    if (usedNames.has(name)) {
      let i = 2;
      while (usedNames.has(`${name}_${i}`)) i += 1;
      opNotes.push(`named "${name}_${i}": "${name}" is taken by another operation`);
      name = `${name}_${i}`;
    }
    const shaped = shapeOperation(raw, name, context, opNotes);
    if ('skip' in shaped) {
      skipped.push({ operation: describeOperation(raw), reason: shaped.skip });
      continue;
    }
    usedNames.add(name);
    shapes.push({ raw, shape: shaped });
    for (const message of opNotes) notes.push({ operation: name, message });
  }
  if (shapes.length === 0) {
    throw new PatchbayError(
      'PB_IMPORT_NO_OPERATIONS',
      `none of the ${selected.length} selected operations of ${sourceName} can be imported: ${skipped
        .slice(0, 3)
        .map((s) => `${s.operation}: ${maskQuoted(s.reason)}`)
        .join('; ')}`,
    );
  }

  // Servers: the provider's base URL is the server most operations use.
  const documentServer = override ?? documentBaseServer(doc, api);
  const effective = shapes.map(({ shape }) => (override ? override : (shape.server ?? documentServer)));
  const missing = effective.findIndex((server) => server === undefined);
  if (missing !== -1) {
    const written = firstServerUrl(doc, api);
    throw new PatchbayError(
      'PB_IMPORT_NO_BASE_URL',
      `${sourceName} gives no absolute server URL${written === undefined ? '' : ` (its server is "${maskQuoted(written)}")`} for ${describeOperation(shapes[missing]!.raw)}; pass --base-url https://…`,
    );
  }
  const base = mostCommonServer(effective as ServerTemplate[], documentServer);
  const { baseUrl, variables } = baseServerVariables(base, globalNotes);
  const hosts: string[] = [];
  const addHost = (server: ServerTemplate | undefined) => {
    const host = server ? serverHost(server) : undefined;
    if (host !== undefined && !hosts.includes(host)) hosts.push(host);
  };
  addHost(base);
  if (!override) for (const server of documentServers(doc, api)) addHost(server);
  const operationBaseUrls = new Map<string, string>();
  shapes.forEach(({ shape }, i) => {
    const server = effective[i]!;
    if (server.url === base.url) return;
    addHost(server);
    const url = substituteDefaults(server);
    if (features.operationBaseUrl && url !== undefined) {
      operationBaseUrls.set(shape.name, url);
    } else {
      notes.push({
        operation: shape.name,
        message: `its server ${server.url} differs from the provider's ${base.url}, ${
          features.operationBaseUrl ? 'and it has a variable without a default' : 'and provider operations cannot set their own base URL'
        }: it will be called at ${base.url}`,
      });
    }
  });

  if (oauth && scopes && Object.keys(scopes).length > 0) oauth.scopes = scopes;
  const info = (doc.info ?? {}) as Record<string, unknown>;
  const title = shortenText(info.title, 80);
  const spec: Omit<ProviderDocument['spec'], 'operations'> = {
    displayName: title ?? options.name,
    auth: auth.auth as [ProviderAuthScheme, ...ProviderAuthScheme[]],
  };
  const docsUrl = (doc.externalDocs as { url?: unknown } | undefined)?.url;
  if (typeof docsUrl === 'string' && /^https?:\/\//i.test(docsUrl)) spec.docsUrl = docsUrl;
  spec.style = 'rest';
  spec.baseUrl = baseUrl;
  if (hosts.length > 0) spec.hosts = hosts;
  if (Object.keys(variables).length > 0) spec.variables = variables;
  const metadata: ProviderDocument['metadata'] = { name: options.name };
  const description = metadataDescription(info, sourceName);
  if (description !== undefined) metadata.description = description;

  // Fit the operations into the size limit.
  const maxBytes = options.maxDocumentBytes ?? defaultMaxDocumentBytes;
  const render = (index: number, level: number, schemaNotes: SchemaNotes): ProviderOperation => {
    const { shape } = shapes[index]!;
    return renderOperation(shape, detailLevels[level]!, api.version, schemaNotes, operationBaseUrls.get(shape.name));
  };
  const scratch = (): SchemaNotes => ({ badPatterns: new Set(), truncated: 0 });
  const sizes: number[][] = shapes.map((_, i) => [JSON.stringify(render(i, 0, scratch())).length]);
  const comments = (reduced: number) => headerComments(options, sourceName, info, api, reduced, shapes.length);
  const documentFor = (operations: Record<string, ProviderOperation>): ProviderDocument => ({
    apiVersion: 'patchbay/v1',
    kind: 'Provider',
    metadata,
    // Key order as in the hand-written providers: where to call, then auth, then operations.
    spec: (({ auth: schemes, ...rest }) => ({ ...rest, auth: schemes, operations }))(spec),
  });
  const overhead = toProviderYaml(documentFor({}), comments(shapes.length)).length;
  let budget = maxBytes - overhead;
  for (let attempt = 0; attempt < 6; attempt += 1) {
    if (budget <= 0) break;
    const needAll = sizes.reduce((sum, row) => sum + row[0]!, 0) > budget;
    if (needAll && sizes[0]!.length === 1) {
      sizes.forEach((row, i) => {
        for (let level = 1; level < detailLevels.length; level += 1) row.push(JSON.stringify(render(i, level, scratch())).length);
      });
    }
    const levels = needAll ? chooseLevels(sizes, budget) : shapes.map(() => 0);
    if (levels === undefined) break;
    const schemaNotes = scratch();
    const operations: Record<string, ProviderOperation> = {};
    levels.forEach((level, i) => {
      operations[shapes[i]!.shape.name] = render(i, level, schemaNotes);
    });
    const reduced = levels.filter((level) => level > 0).length;
    const document = documentFor(operations);
    const { text: yaml, redacted } = redactCredentials(toProviderYaml(document, comments(reduced)));
    const yamlBytes = Buffer.byteLength(yaml);
    if (yamlBytes <= maxBytes) {
      if (redacted > 0) globalNotes.push(`${redacted} credential-looking strings (example keys in descriptions) replaced by REDACTED`);
      for (const pattern of schemaNotes.badPatterns) {
        globalNotes.push(`pattern ${JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 80)}…` : pattern)} dropped: not a valid regular expression`);
      }
      if (reduced > 0) {
        globalNotes.push(
          `${reduced} of ${shapes.length} operations were written with leaner schemas (fewer descriptions, less depth, no output) to stay under the ${maxBytes}-byte manifest limit; import fewer operations with --include for full detail`,
        );
      }
      return {
        document,
        yaml,
        declaredVersion: api.declaredVersion,
        totalOperations: all.length,
        excludedOperations: all.length - selected.length,
        importedOperations: shapes.length,
        skipped,
        notes: [...globalNotes.map((message) => ({ message })), ...notes],
        unmatchedIncludes,
        reducedOperations: reduced,
        truncatedSchemas: schemaNotes.truncated,
      };
    }
    // JSON sizes only estimate the YAML; shrink the budget by how far off they were.
    budget = Math.floor(budget * (maxBytes / yamlBytes) * 0.97);
  }
  throw new PatchbayError(
    'PB_IMPORT_OUTPUT_TOO_LARGE',
    `${shapes.length} operations do not fit the ${maxBytes}-byte manifest limit even with minimal schemas; import a part with --include (a tag, an operationId or a path prefix)`,
  );
}

/**
 * What the provider schema shipped with this package (`schemas/provider.schema.json`) accepts on
 * an operation, read from the schema file itself so the importer follows the schema as it grows.
 * Falls back to {@link baselineFeatures} when the file cannot be read or parsed.
 */
export function providerSchemaFeatures(): ProviderFeatures {
  let operation: { properties?: Record<string, { enum?: unknown }> } | undefined;
  try {
    const schema = JSON.parse(readFileSync(join(packageRoot, 'schemas', 'provider.schema.json'), 'utf8')) as {
      $defs?: { operation?: typeof operation };
    };
    operation = schema.$defs?.operation;
  } catch {
    // The schema ships with the package; without it validation reports the problem itself.
    return baselineFeatures;
  }
  const properties = operation?.properties ?? {};
  const strings = (value: unknown) => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  const methods = strings(properties.method?.enum);
  const bodies = strings(properties.body?.enum);
  return {
    methods: methods.length > 0 ? methods : baselineFeatures.methods,
    bodies: bodies.length > 0 ? bodies : baselineFeatures.bodies,
    operationBaseUrl: Object.hasOwn(properties, 'baseUrl'),
    contentType: Object.hasOwn(properties, 'contentType'),
    responseFormat: Object.hasOwn(properties, 'responseFormat'),
  };
}

interface IncludeMatcher {
  readonly value: string;
  test(raw: RawOperation): boolean;
}

function compileIncludes(values: readonly string[]): IncludeMatcher[] {
  return values.map((value) => {
    if (value.startsWith('^')) {
      let pattern: RegExp;
      try {
        pattern = new RegExp(value, 'u');
      } catch (error) {
        throw new PatchbayError('PB_USAGE', `--include ${JSON.stringify(value)} is not a valid regular expression: ${(error as Error).message}`, { cause: error });
      }
      return { value, test: (raw) => pattern.test(raw.path) };
    }
    if (value.startsWith('/')) return { value, test: (raw) => raw.path.startsWith(value) };
    const lower = value.toLowerCase();
    return {
      value,
      test: (raw) => raw.operationId === value || operationName(raw) === value || raw.tags.some((tag) => tag.toLowerCase() === lower),
    };
  });
}

function baseUrlOverride(value: string): ServerTemplate {
  const server = serverTemplate({ url: value });
  if (server === undefined || !/^https?:\/\//i.test(server.url)) {
    throw new PatchbayError('PB_USAGE', `--base-url must be an absolute http(s) URL such as https://api.example.com/v1`);
  }
  return server;
}

/** The absolute servers the document declares at its top level, in order. */
function documentServers(doc: Record<string, unknown>, api: ApiDocument): ServerTemplate[] {
  if (api.version === '2.0') {
    const server = swaggerServer(doc);
    return server ? [server] : [];
  }
  const servers = Array.isArray(doc.servers) ? doc.servers : [];
  return servers.map(serverTemplate).filter((s): s is ServerTemplate => s !== undefined);
}

/** `servers[0]` when it is absolute (Swagger 2.0: scheme, host and basePath). */
function documentBaseServer(doc: Record<string, unknown>, api: ApiDocument): ServerTemplate | undefined {
  if (api.version === '2.0') return swaggerServer(doc);
  const first = Array.isArray(doc.servers) ? doc.servers[0] : undefined;
  return serverTemplate(first);
}

function firstServerUrl(doc: Record<string, unknown>, api: ApiDocument): string | undefined {
  if (api.version === '2.0') return typeof doc.basePath === 'string' ? doc.basePath : undefined;
  const first = Array.isArray(doc.servers) ? (doc.servers[0] as { url?: unknown } | undefined) : undefined;
  return typeof first?.url === 'string' ? first.url : undefined;
}

/** The server most operations use; the document's own server wins a tie. */
function mostCommonServer(servers: ServerTemplate[], preferred: ServerTemplate | undefined): ServerTemplate {
  const counts = new Map<string, { server: ServerTemplate; count: number }>();
  for (const server of servers) {
    const entry = counts.get(server.url) ?? { server, count: 0 };
    entry.count += 1;
    counts.set(server.url, entry);
  }
  let best: { server: ServerTemplate; count: number } | undefined;
  for (const entry of counts.values()) {
    const better = !best || entry.count > best.count || (entry.count === best.count && entry.server.url === preferred?.url);
    if (better) best = entry;
  }
  return best!.server;
}

/** A server URL with its variables replaced by their defaults; undefined when one has none. */
function substituteDefaults(server: ServerTemplate): string | undefined {
  let missing = false;
  const url = server.url.replace(/\{([^{}]+)\}/g, (_m, name: string) => {
    const value = server.variables[name]?.default;
    if (value === undefined || value === null || typeof value === 'object') {
      missing = true;
      return '';
    }
    return String(value);
  });
  return missing ? undefined : url;
}

function metadataDescription(info: Record<string, unknown>, sourceName: string): string | undefined {
  const title = shortenText(info.title, 80);
  const sentence = firstSentence(info.description, 200);
  if (title && sentence && !sentence.toLowerCase().startsWith(title.toLowerCase())) return shortenText(`${title}: ${sentence}`, 240);
  return title ?? sentence ?? shortenText(`Imported from ${basename(sourceName)}`, 240);
}

function headerComments(
  options: OpenApiImportOptions,
  sourceName: string,
  info: Record<string, unknown>,
  api: ApiDocument,
  reduced: number,
  operations: number,
): string[] {
  const lines: string[] = [];
  if (options.schemaHint !== undefined) lines.push(`yaml-language-server: $schema=${options.schemaHint}`);
  const title = shortenText(info.title, 80);
  const version = shortenText(info.version, 40);
  const dialect = api.version === '2.0' ? 'Swagger 2.0' : `OpenAPI ${shortenText(api.declaredVersion, 20) ?? api.version}`;
  lines.push(
    `Generated by \`patchbay provider import\` from ${basename(sourceName)} (${[title, version].filter(Boolean).join(' ')}${title || version ? ', ' : ''}${dialect}).`,
  );
  lines.push('Review auth, hosts, rate limits and retries before use: the description does not say them.');
  if (reduced > 0) {
    lines.push(`${reduced} of ${operations} operations have leaner schemas to fit the manifest size limit (use --include for full detail).`);
  }
  return lines;
}
