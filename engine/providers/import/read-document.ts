import { gunzipSync } from 'node:zlib';
import { Composer, Parser, type CST, type Document } from 'yaml';
import { PatchbayError } from '../../diag/errors.js';
import { maskQuoted } from './text.js';

/** Largest OpenAPI document `provider import` reads (also after decompression), in bytes. */
export const maxImportBytes = 64 * 1024 * 1024;

/**
 * Deepest nesting of objects and lists the importer reads, counted with local `$ref`s followed.
 * Real descriptions stay under 30 (Stripe's 25); the YAML composer and the reference resolver
 * recurse and overflow the stack somewhere past 1,000 levels, so a document nested deeper is
 * refused with PB_IMPORT_TOO_DEEP before they see it.
 */
export const maxNestingDepth = 256;

/** The OpenAPI dialects the importer understands. */
export type OpenApiVersion = '2.0' | '3.0' | '3.1';

/** A parsed API description that is OpenAPI 3.x or Swagger 2.0. */
export interface ApiDocument {
  /** The document as plain data (still holding its `$ref`s). */
  readonly value: Record<string, unknown>;
  readonly version: OpenApiVersion;
  /** The `openapi` / `swagger` field as written (`3.0.3`). */
  readonly declaredVersion: string;
}

/**
 * Reads an API description from its bytes: gzip is unpacked, JSON and YAML are parsed, and the
 * result must be an OpenAPI 3.x or Swagger 2.0 document. `sourceName` is how the file is named in
 * messages. Throws PatchbayError with code
 * - PB_IMPORT_INPUT_TOO_LARGE: more than {@link maxImportBytes}, compressed or not;
 * - PB_IMPORT_SYNTAX: not valid JSON/YAML, with `file:line:col` in the message;
 * - PB_IMPORT_TOO_DEEP: YAML nested deeper than {@link maxNestingDepth} (checked before the
 *   recursive composer runs; JSON's parser does not recurse, and the parsed value's depth is
 *   checked, `$ref`s followed, by `dereferenceDocument`);
 * - PB_IMPORT_NOT_OPENAPI: binary data, or another kind of document (a Smithy model, a GraphQL
 *   introspection result, an AsyncAPI document, a Patchbay manifest) with what to use instead.
 */
export function readApiDocument(bytes: Uint8Array, sourceName: string): ApiDocument {
  if (bytes.byteLength > maxImportBytes) {
    throw new PatchbayError('PB_IMPORT_INPUT_TOO_LARGE', `${sourceName} is ${bytes.byteLength} bytes, more than the ${maxImportBytes}-byte import limit`);
  }
  let compressed = false;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    compressed = true;
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: maxImportBytes });
    } catch (error) {
      if (error instanceof RangeError || (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new PatchbayError('PB_IMPORT_INPUT_TOO_LARGE', `${sourceName} unpacks to more than the ${maxImportBytes}-byte import limit`, {
          cause: error,
        });
      }
      throw new PatchbayError('PB_IMPORT_NOT_OPENAPI', `${sourceName}:1:1: gzip data that does not unpack (${maskQuoted((error as Error).message)}); not an OpenAPI document`, {
        cause: error,
      });
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (error) {
    throw new PatchbayError('PB_IMPORT_NOT_OPENAPI', `${sourceName}:1:1: binary data, not UTF-8 text; an OpenAPI document is JSON or YAML`, { cause: error });
  }
  const value = parseText(text, sourceName);
  return classify(value, text, sourceName, compressed);
}

function parseText(text: string, sourceName: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(text);
    } catch (error) {
      // V8's messages carry a position only sometimes, and differ between Node versions: the
      // position and wording come from our own scan of the text.
      const problem = locateJsonError(text);
      const where = lineColumn(text, problem?.offset ?? 0);
      const reason = problem?.message ?? maskQuoted((error as Error).message.split('\n')[0] ?? 'invalid JSON');
      throw new PatchbayError('PB_IMPORT_SYNTAX', `${sourceName}:${where.line}:${where.column}: not valid JSON: ${reason}`, { cause: error });
    }
  }
  // parseDocument's steps, with the (iterative) parser's tree measured before the (recursive)
  // composer walks it: a document nested thousands of levels deep would overflow its stack.
  const composer = new Composer({ uniqueKeys: true, version: '1.2' });
  let document: Document.Parsed | undefined;
  for (const composed of composer.compose(depthChecked(new Parser().parse(text), text, sourceName), true, text.length)) {
    if (document !== undefined) {
      const at = lineColumn(text, composed.range[0]);
      throw new PatchbayError('PB_IMPORT_SYNTAX', `${sourceName}:${at.line}:${at.column}: not valid YAML: a second document (after \`---\`); an OpenAPI description is one document`);
    }
    document = composed;
  }
  const problem = document?.errors[0];
  if (document === undefined || problem) {
    const at = lineColumn(text, problem?.pos[0] ?? 0);
    throw new PatchbayError('PB_IMPORT_SYNTAX', `${sourceName}:${at.line}:${at.column}: not valid YAML: ${maskQuoted(problem?.message ?? 'no document')}`);
  }
  try {
    return document.toJS({ maxAliasCount: 10_000 });
  } catch (error) {
    if (error instanceof RangeError) {
      // The tree was measured, so this is not expected; still, never show a stack overflow.
      throw new PatchbayError('PB_IMPORT_TOO_DEEP', `${sourceName}:1:1: the YAML is nested too deeply to read (more than ${maxNestingDepth} levels)`, { cause: error });
    }
    // Too many alias expansions ("billion laughs"): refuse rather than build a huge value.
    throw new PatchbayError('PB_IMPORT_SYNTAX', `${sourceName}:1:1: not usable YAML: ${maskQuoted((error as Error).message)}`, { cause: error });
  }
}

/** Passes the parser's documents on, refusing one whose collections nest deeper than {@link maxNestingDepth}. */
function* depthChecked(tokens: Iterable<CST.Token>, text: string, sourceName: string): Generator<CST.Token> {
  for (const token of tokens) {
    const offset = deepCollectionOffset(token, maxNestingDepth);
    if (offset !== undefined) {
      const at = lineColumn(text, offset);
      throw new PatchbayError(
        'PB_IMPORT_TOO_DEEP',
        `${sourceName}:${at.line}:${at.column}: the YAML nests mappings and lists deeper than ${maxNestingDepth} levels here; no OpenAPI description needs that many, so it is not read`,
      );
    }
    yield token;
  }
}

/**
 * The offset of the first collection (block or flow mapping or sequence) of a parser token that
 * lies deeper than `maxDepth` collections; undefined when none does. Iterative.
 */
function deepCollectionOffset(root: CST.Token, maxDepth: number): number | undefined {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (token === null || typeof token !== 'object') continue;
    const node = token as { type?: string; offset?: number; value?: unknown; items?: { key?: unknown; value?: unknown }[] };
    if (Array.isArray(node.items)) {
      if (depth + 1 > maxDepth) return node.offset ?? 0;
      for (const item of node.items) stack.push([item.key, depth + 1], [item.value, depth + 1]);
    } else if (node.type === 'document') {
      stack.push([node.value, depth]);
    }
  }
  return undefined;
}

function classify(value: unknown, text: string, sourceName: string, compressed: boolean): ApiDocument {
  const at = (key: string) => {
    const where = keyPosition(text, key);
    return `${sourceName}:${where.line}:${where.column}`;
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new PatchbayError(
      'PB_IMPORT_NOT_OPENAPI',
      `${sourceName}:1:1: the document is ${Array.isArray(value) ? 'a list' : value === null ? 'empty' : `a single ${typeof value}`}, not an OpenAPI description (a mapping with an \`openapi\` or \`swagger\` field)`,
    );
  }
  const doc = value as Record<string, unknown>;
  if ('smithy' in doc) {
    throw new PatchbayError(
      'PB_IMPORT_NOT_OPENAPI',
      `${at('smithy')}: this is an AWS Smithy model (smithy ${maskQuoted(String(doc.smithy))}), not OpenAPI; AWS operations are in the bundled \`aws\` provider (SigV4 signing), not imported from Smithy`,
    );
  }
  const data = doc.data as Record<string, unknown> | undefined;
  if ('__schema' in doc || (data !== null && typeof data === 'object' && '__schema' in data)) {
    throw new PatchbayError(
      'PB_IMPORT_NOT_OPENAPI',
      `${compressed ? `${sourceName}:1:1` : at('__schema')}: this is a GraphQL introspection result${compressed ? ' (gzip-compressed)' : ''}, not OpenAPI; call GraphQL APIs through the bundled \`graphql\` provider (or a \`style: graphql\` provider) with your documents`,
    );
  }
  if ('asyncapi' in doc) {
    throw new PatchbayError('PB_IMPORT_NOT_OPENAPI', `${at('asyncapi')}: this is an AsyncAPI document (event channels), not OpenAPI; it has no HTTP operations to import`);
  }
  if (doc.apiVersion === 'patchbay/v1') {
    throw new PatchbayError('PB_IMPORT_NOT_OPENAPI', `${at('apiVersion')}: this is already a Patchbay manifest, not an OpenAPI description`);
  }
  // YAML reads an unquoted `swagger: 2.0` or `openapi: 3.0` as a number.
  const declared = (value: unknown) => (typeof value === 'number' && Number.isInteger(value) ? value.toFixed(1) : String(value));
  if ('swagger' in doc) {
    if (declared(doc.swagger) !== '2.0') {
      throw new PatchbayError('PB_IMPORT_NOT_OPENAPI', `${at('swagger')}: Swagger version ${maskQuoted(JSON.stringify(doc.swagger) ?? String(doc.swagger))} is not supported; only Swagger 2.0 and OpenAPI 3.x are`);
    }
    return { value: doc, version: '2.0', declaredVersion: '2.0' };
  }
  if ('openapi' in doc) {
    const version = declared(doc.openapi);
    if (/^3\.0(\.|$)/.test(version)) return { value: doc, version: '3.0', declaredVersion: version };
    // 3.1 and later 3.x minor versions share JSON Schema 2020-12 schemas.
    if (/^3\.[1-9][0-9]*(\.|$)/.test(version)) return { value: doc, version: '3.1', declaredVersion: version };
    throw new PatchbayError('PB_IMPORT_NOT_OPENAPI', `${at('openapi')}: OpenAPI version ${maskQuoted(JSON.stringify(doc.openapi) ?? String(doc.openapi))} is not supported; only Swagger 2.0 and OpenAPI 3.x are`);
  }
  throw new PatchbayError(
    'PB_IMPORT_NOT_OPENAPI',
    `${sourceName}:1:1: not an OpenAPI description: the top level has no \`openapi\` (3.x) or \`swagger\` (2.0) field`,
  );
}

/**
 * Finds the first JSON syntax error in `text`: its offset and what was expected there; undefined
 * when the text is valid JSON. Iterative (a stack of open containers), so deep nesting cannot
 * overflow the call stack; linear in the text's length.
 */
export function locateJsonError(text: string): { offset: number; message: string } | undefined {
  const n = text.length;
  let i = 0;
  const stack: ('object' | 'array')[] = [];
  const space = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      i += 1;
    }
  };
  const fail = (message: string) => ({ offset: Math.min(i, n), message });
  const shown = () => (i >= n ? 'the end of the document' : JSON.stringify(text[i]));
  const string = (): { offset: number; message: string } | undefined => {
    i += 1;
    for (;;) {
      if (i >= n) return fail('a string is not closed');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i += 1;
        return undefined;
      }
      if (c === 0x5c) {
        const next = text[i + 1];
        if (next === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return fail('\\u must be followed by four hex digits');
          i += 6;
          continue;
        }
        if (next === undefined || !'"\\/bfnrt'.includes(next)) return fail('invalid escape in a string');
        i += 2;
        continue;
      }
      if (c < 0x20) return fail('a control character (such as a line break) inside a string');
      i += 1;
    }
  };
  const member = (): { offset: number; message: string } | undefined => {
    space();
    if (text[i] !== '"') return fail(`expected a double-quoted property name, found ${shown()}`);
    const problem = string();
    if (problem) return problem;
    space();
    if (text[i] !== ':') return fail(`expected ':' after the property name, found ${shown()}`);
    i += 1;
    return undefined;
  };
  const number = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  for (;;) {
    // A value is expected at i.
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      i += 1;
      space();
      if (text[i] === (c === '{' ? '}' : ']')) {
        i += 1;
      } else {
        stack.push(c === '{' ? 'object' : 'array');
        if (c === '{') {
          const problem = member();
          if (problem) return problem;
        }
        continue;
      }
    } else if (c === '"') {
      const problem = string();
      if (problem) return problem;
    } else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      number.lastIndex = i;
      if (!number.test(text)) return fail('invalid number');
      i = number.lastIndex;
    } else if (text.startsWith('true', i) || text.startsWith('null', i)) {
      i += 4;
    } else if (text.startsWith('false', i)) {
      i += 5;
    } else {
      return fail(`expected a value, found ${shown()}`);
    }
    // After a value: a comma, or closing brackets.
    for (;;) {
      space();
      const top = stack.at(-1);
      if (top === undefined) return i < n ? fail(`unexpected ${shown()} after the end of the document`) : undefined;
      if (text[i] === ',') {
        i += 1;
        if (top === 'object') {
          const problem = member();
          if (problem) return problem;
        }
        break;
      }
      if (text[i] === (top === 'object' ? '}' : ']')) {
        i += 1;
        stack.pop();
        continue;
      }
      return fail(`expected ',' or '${top === 'object' ? '}' : ']'}', found ${shown()}`);
    }
  }
}

/** 1-based line and column (UTF-16 units) of an offset in `text`. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = text.indexOf('\n'); i !== -1 && i < end; i = text.indexOf('\n', i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { line, column: end - lineStart + 1 };
}

/** Where a top-level-looking key is written (`"key":` in JSON, `key:` at a line start in YAML); 1:1 if not found. */
function keyPosition(text: string, key: string): { line: number; column: number } {
  const match = new RegExp(`"${key}"\\s*:|^['"]?${key}['"]?\\s*:`, 'm').exec(text);
  return lineColumn(text, match?.index ?? 0);
}
