#!/usr/bin/env node
// Lists, for every operation of the providers with an official API description, the request
// parameters and body properties the description declares that the operation's `input` does not
// (so `patchbay validate` would refuse them as PB_STEP_UNKNOWN_INPUT).
//
//   node scripts/check-input-coverage.mjs [--specs DIR] [--only stripe,twilio] [--schemas] [--write]
//
// --specs   where the descriptions are (default test/fixtures/specs, the vendored copies, whose
//           request parameters and body schemas are the official ones; see its README)
// --schemas print each missing item's spec schema (resolved one level) to help writing inputs
// --write   add each missing item to the operation's `input.properties` in providers/*.yaml (and
//           query parameters to its `query` list), converted from the description: type, enum,
//           length/range/pattern constraints, the first sentence of the description; nested
//           objects kept shallow; array encodings (`style`/`explode`) as the description says.
//           Review the diff: the text is inserted, the files are not re-serialised.
//
// Deliberate omissions are listed, with a reason, in test/providers/input-coverage-exclusions.json
// (shared with test/providers/input-coverage.test.ts).
//
// Operations are matched to description paths by test/support/spec-match.mjs, as the tests do
// (method + full path shape, server path removed). Path parameters are reported when the
// operation's path has no placeholder at that position; header parameters only when the operation
// maps an input to that header. Exit status 1 when anything is missing.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { findSpecPath } from '../test/support/spec-match.mjs';

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
};
const specsDir = option('--specs') ?? join(root, 'test', 'fixtures', 'specs');
const only = option('--only')?.split(',');
const showSchemas = args.includes('--schemas');
const write = args.includes('--write');
const exclusions = JSON.parse(readFileSync(join(root, 'test', 'providers', 'input-coverage-exclusions.json'), 'utf8'));

/** Credential parameters: set by the connection's auth, never an input. */
const credentialParams = new Set(['token', 'key']);

const providers = new Map();
const providerFiles = new Map();
for (const file of readdirSync(join(root, 'providers')).filter((name) => /\.ya?ml$/.test(name)).sort()) {
  for (const document of parseAllDocuments(readFileSync(join(root, 'providers', file), 'utf8'), { merge: true })) {
    const value = document.toJS({ maxAliasCount: -1 });
    if (value?.kind === 'Provider') {
      providers.set(value.metadata.name, value);
      providerFiles.set(value.metadata.name, join(root, 'providers', file));
    }
  }
}
const index = JSON.parse(readFileSync(join(specsDir, 'index.json'), 'utf8'));

function deref(spec, node, seen = 0) {
  if (node === null || typeof node !== 'object' || typeof node.$ref !== 'string' || seen > 20) return node;
  const target = node.$ref.slice(2).split('/').reduce((at, key) => at?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  return deref(spec, target, seen + 1);
}

/** Top-level properties of a body schema: `allOf` merged, `oneOf`/`anyOf` object variants joined. */
function bodyProperties(spec, schema, out = new Map(), required = new Set(), depth = 0) {
  const resolved = deref(spec, schema);
  if (resolved === undefined || resolved === null || depth > 10) return { properties: out, required };
  for (const [name, property] of Object.entries(resolved.properties ?? {})) if (!out.has(name)) out.set(name, property);
  for (const name of resolved.required ?? []) required.add(name);
  for (const part of resolved.allOf ?? []) bodyProperties(spec, part, out, required, depth + 1);
  for (const part of [...(resolved.oneOf ?? []), ...(resolved.anyOf ?? [])]) bodyProperties(spec, part, out, new Set(), depth + 1);
  return { properties: out, required };
}

const mediaFor = { json: 'application/json', form: 'application/x-www-form-urlencoded', multipart: 'multipart/form-data' };

/** What the description declares for one operation: the names the input must cover, with schemas. */
export function specItems(spec, pathKey, method, operation) {
  const item = spec.paths[pathKey];
  const op = item[method];
  const params = new Map();
  for (const raw of [...(item.parameters ?? []), ...(op.parameters ?? [])]) {
    const param = deref(spec, raw);
    params.set(`${param.in}:${param.name}`, param);
  }
  const items = [];
  const mappedHeaders = new Set(Object.values(operation.headers ?? {}).map((name) => name.toLowerCase()));
  const ourPlaceholders = [...(operation.path ?? '').matchAll(/\{([^}+]*)\+?\}/g)].map((m) => m[1]);
  const specPlaceholders = [...pathKey.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
  for (const param of params.values()) {
    if (credentialParams.has(param.name)) continue;
    if (param.in === 'path') {
      // Covered by position: the operation's placeholder at the same index (input or variable).
      const position = specPlaceholders.indexOf(param.name);
      const ours = ourPlaceholders[ourPlaceholders.length - specPlaceholders.length + position];
      items.push({ where: 'path', name: ours ?? param.name, specName: param.name, schema: param.schema ?? param, required: true, param });
    } else if (param.in === 'query') {
      items.push({ where: 'query', name: param.name, schema: param.schema ?? param, required: param.required === true, param });
    } else if (param.in === 'header') {
      if (mappedHeaders.has(param.name.toLowerCase())) items.push({ where: 'header', name: param.name, schema: param.schema ?? param, required: param.required === true, param });
    } else if (param.in === 'formData') {
      items.push({ where: 'body', name: param.name, schema: param, required: param.required === true, param });
    } else if (param.in === 'body') {
      const { properties, required } = bodyProperties(spec, param.schema);
      for (const [name, schema] of properties) items.push({ where: 'body', name, schema, required: required.has(name) });
    }
  }
  const content = deref(spec, op.requestBody)?.content;
  if (content !== undefined) {
    const media = mediaFor[operation.body ?? 'json'];
    const entry = content[media] ?? Object.values(content)[0];
    const { properties, required } = bodyProperties(spec, entry?.schema);
    for (const [name, schema] of properties) items.push({ where: 'body', name, schema, required: required.has(name) });
  }
  return items;
}

function covered(operation, provider, item) {
  const properties = operation.input?.properties ?? {};
  if (item.where === 'path') return Object.hasOwn(properties, item.name) || Object.hasOwn(provider.spec.variables ?? {}, item.name);
  if (item.where === 'header') return Object.entries(operation.headers ?? {}).some(([input, name]) => name.toLowerCase() === item.name.toLowerCase() && Object.hasOwn(properties, input));
  return Object.hasOwn(properties, item.name);
}

/** Reports (and with --write, fills) every operation's missing inputs. */
function main() {
  const edits = [];
  let missingTotal = 0;
  for (const [name, entry] of Object.entries(index.openapi)) {
    if (only !== undefined && !only.includes(name)) continue;
    const provider = providers.get(name);
    const specs = entry.files.map(({ file }) => ({ file, spec: JSON.parse(readFileSync(join(specsDir, file), 'utf8')) }));
    for (const [operationName, operation] of Object.entries(provider.spec.operations)) {
      const found = findSpecPath(provider, operation, specs);
      if (found === undefined) {
        console.log(`${name}.${operationName}: no description path`);
        missingTotal += 1;
        continue;
      }
      const skip = exclusions[`${name}.${operationName}`] ?? {};
      const items = specItems(found.spec, found.pathKey, found.method, operation).filter((item) => !Object.hasOwn(skip, item.name));
      const missing = items.filter((item) => !covered(operation, provider, item));
      const queryNotMapped = items.filter((item) => item.where === 'query' && !(operation.query ?? []).includes(item.name));
      if (write) edits.push({ provider: name, operationName, operation, spec: found.spec, missing, queryNames: queryNotMapped.map((item) => item.name), mediaEncoding: bodyEncoding(found, operation) });
      const requiredHere = new Set(operation.input?.required ?? []);
    for (const item of items) {
      if (item.required && item.where !== 'path' && item.where !== 'header' && !missing.includes(item) && !requiredHere.has(item.name)) {
        console.log(`${name}.${operationName}: note: the description requires ${item.name}, the input does not`);
      }
    }
    if (missing.length === 0 && queryNotMapped.length === 0) continue;
      missingTotal += missing.length + queryNotMapped.length;
      console.log(`${name}.${operationName} (${found.method.toUpperCase()} ${found.pathKey}): ${missing.length} missing of ${items.length}`);
      for (const item of missing) {
        const schema = deref(found.spec, item.schema);
        const summary = showSchemas ? ` ${JSON.stringify({ ...schema, description: undefined }).slice(0, 400)}` : '';
        const flags = `${item.required ? ' required' : ''}${schema?.deprecated || item.param?.deprecated ? ' DEPRECATED' : ''}`;
        console.log(`  - ${item.where} ${item.name}${flags}${summary}`);
      }
      for (const item of queryNotMapped) console.log(`  - query ${item.name} not in the operation's query list`);
    }
  }
  if (write) applyEdits(edits);
  console.log(missingTotal === 0 ? 'every declared parameter and body property is an input' : `${missingTotal} missing`);
  process.exitCode = missingTotal === 0 ? 0 : 1;
}

// ---- --write: converting description schemas to input properties and inserting them ----

/** The requestBody `encoding` map of the media type the operation sends (form bodies). */
function bodyEncoding(found, operation) {
  const content = deref(found.spec, found.spec.paths[found.pathKey][found.method].requestBody)?.content;
  return content?.[mediaFor[operation.body ?? 'json']]?.encoding ?? {};
}

/** First sentence of a description, links reduced to their text, on one line, at most 160 characters. */
function shortText(text) {
  if (typeof text !== 'string') return undefined;
  let clean = text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const end = clean.search(/[.!?](\s|$)/);
  if (end > 0) clean = clean.slice(0, end + 1);
  if (clean.length > 160) clean = `${clean.slice(0, 157).replace(/\s+\S*$/, '')}…`;
  return clean === '' ? undefined : clean;
}

/** The alternatives of a schema (`anyOf`/`oneOf` flattened, `$ref`s and single `allOf`s resolved). */
function variantsOf(spec, schema, depth = 0) {
  let resolved = deref(spec, schema);
  if (resolved === undefined || resolved === null || depth > 8) return [];
  if (Array.isArray(resolved.allOf) && resolved.allOf.length === 1 && resolved.properties === undefined) {
    resolved = { ...deref(spec, resolved.allOf[0]), ...resolved, allOf: undefined };
  }
  const alternatives = [...(resolved.anyOf ?? []), ...(resolved.oneOf ?? [])];
  if (alternatives.length === 0) return [resolved];
  const own = { ...resolved, anyOf: undefined, oneOf: undefined };
  return alternatives.flatMap((alternative) => variantsOf(spec, alternative, depth + 1)).map((variant) => ({ ...own, ...variant }));
}

function typesOf(variant) {
  const types = new Set();
  if (Array.isArray(variant.type)) variant.type.forEach((type) => types.add(type));
  else if (typeof variant.type === 'string') types.add(variant.type);
  else if (Array.isArray(variant.enum)) {
    for (const value of variant.enum) types.add(value === null ? 'null' : typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'string');
  } else if (variant.const !== undefined) types.add(typeof variant.const);
  else if (variant.properties !== undefined) types.add('object');
  if (variant.nullable === true) types.add('null');
  return types;
}

const scalarTypes = new Set(['string', 'integer', 'number', 'boolean', 'null']);

/** A one-level schema for a nested value: type and enum, objects and arrays left open. */
function shallow(spec, schema) {
  const variants = variantsOf(spec, schema);
  const types = new Set(variants.flatMap((variant) => [...typesOf(variant)]));
  const out = {};
  if (types.size > 0) out.type = types.size === 1 ? [...types][0] : [...types];
  const enums = variants.filter((variant) => !(typesOf(variant).size === 1 && typesOf(variant).has('null')));
  if (enums.length > 0 && enums.every((variant) => Array.isArray(variant.enum) || variant.const !== undefined)) {
    out.enum = [...new Set(enums.flatMap((variant) => variant.enum ?? [variant.const]))];
    if (types.has('null') && !out.enum.includes(null)) out.enum.push(null);
  }
  return out;
}

/** The input property for one description item. */
function toInput(spec, item, mediaEncoding) {
  const property = item.schema ?? {};
  const variants = variantsOf(spec, property);
  const single = variants.length === 1 ? variants[0] : undefined;
  const input = shallow(spec, property);
  const description =
    shortText(item.param?.description) ??
    shortText(property.description) ??
    shortText(deref(spec, property)?.description) ??
    variants.map((variant) => shortText(variant.description)).find((text) => text !== undefined) ??
    shortText(deref(spec, property)?.title);
  const ordered = { type: input.type };
  if (ordered.type === undefined) delete ordered.type;
  if (description !== undefined) ordered.description = description;
  if (input.enum !== undefined) ordered.enum = input.enum;
  const types = new Set(Array.isArray(input.type) ? input.type : input.type === undefined ? [] : [input.type]);
  if (types.has('array')) {
    const array = variants.find((variant) => typesOf(variant).has('array'));
    if (array?.items !== undefined) {
      const items = shallow(spec, array.items);
      if (items.type === 'object' || (Array.isArray(items.type) && items.type.includes('object'))) delete items.enum;
      ordered.items = items;
    }
  }
  if (types.has('object')) {
    const object = variants.find((variant) => typesOf(variant).has('object'));
    const properties = Object.entries(object?.properties ?? {});
    const additional = object?.additionalProperties;
    if (properties.length > 0 && properties.length <= 6 && properties.every(([, inner]) => [...(typesOf(deref(spec, inner)))].every((type) => scalarTypes.has(type)) && typesOf(deref(spec, inner)).size > 0)) {
      ordered.properties = Object.fromEntries(properties.map(([key, inner]) => [key, shallow(spec, inner)]));
    } else if (properties.length === 0 && additional !== undefined && additional !== true && additional !== false) {
      const values = shallow(spec, additional);
      ordered.additionalProperties = Object.keys(values).length === 0 ? true : values;
    } else {
      ordered.additionalProperties = true;
    }
  }
  if (single !== undefined) {
    for (const key of ['minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minItems', 'maxItems']) {
      if (single[key] === undefined || typeof single[key] === 'boolean') continue;
      if (key === 'maxLength' && single[key] === 5000) continue; // Stripe's blanket limit, not a real constraint
      ordered[key] = single[key];
    }
  }
  // Array encodings, as the description declares them (the builder's defaults differ by target).
  if (types.has('array')) {
    if (item.where === 'query') {
      const style = item.param?.style ?? (item.param?.collectionFormat !== undefined ? 'form' : undefined);
      if (style !== undefined && style !== 'form') ordered.style = style;
      if (item.param?.explode === false || (item.param?.collectionFormat !== undefined && item.param.collectionFormat !== 'multi')) {
        ordered.style = style ?? 'form';
        ordered.explode = false;
      }
    } else if (item.where === 'body' && mediaEncoding !== undefined) {
      const encoding = mediaEncoding[item.name];
      if (item.param !== undefined) {
        // Swagger 2 formData: csv unless `multi`.
        ordered.style = 'form';
        if (item.param.collectionFormat !== 'multi') ordered.explode = false;
      } else if (encoding?.style !== undefined) {
        ordered.style = encoding.style;
        if (encoding.explode === false) ordered.explode = false;
      } else {
        ordered.style = 'form';
        if (encoding?.explode === false) ordered.explode = false;
      }
    }
  }
  return ordered;
}

const plainScalar = /^[A-Za-z_][A-Za-z0-9_.\-/<>]*$/;
const yamlWords = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

function flowScalar(value) {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (plainScalar.test(value) && !yamlWords.test(value)) return value;
  return JSON.stringify(value);
}

/** YAML flow text: `{ type: string, description: "…" }`. */
function flow(value) {
  if (Array.isArray(value)) return `[ ${value.map(flow).join(', ')} ]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([key, inner]) => `${flowScalar(key)}: ${key === 'description' || key === 'pattern' ? JSON.stringify(inner) : flow(inner)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  return flowScalar(value);
}

const indentOf = (line) => line.length - line.trimStart().length;

/** Inserts the missing inputs and query names into the provider files, as text. */
function applyEdits(edits) {
  const byFile = new Map();
  for (const edit of edits) {
    if (edit.missing.length === 0 && edit.queryNames.length === 0) continue;
    const file = providerFiles.get(edit.provider);
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file).push(edit);
  }
  for (const [file, fileEdits] of byFile) {
    const lines = readFileSync(file, 'utf8').split('\n');
    for (const edit of fileEdits) {
      const operationsAt = lines.findIndex((line) => line === '  operations:');
      const start = lines.findIndex((line, at) => at > operationsAt && line === `    ${edit.operationName}:`);
      if (start < 0) throw new Error(`${file}: operation ${edit.operationName} not found as a block`);
      let end = start + 1;
      while (end < lines.length && (lines[end].trim() === '' || indentOf(lines[end]) > 4)) end += 1;
      const inputAt = lines.findIndex((line, at) => at > start && at < end && line === '      input:');
      let inputEnd = inputAt + 1;
      while (inputEnd < end && (lines[inputEnd].trim() === '' || indentOf(lines[inputEnd]) > 6)) inputEnd += 1;
      const propertiesAt = lines.findIndex((line, at) => at > inputAt && at < inputEnd && line === '        properties:');
      if (inputAt < 0 || propertiesAt < 0) throw new Error(`${file}: ${edit.operationName} has no block-style input.properties`);
      let insertAt = propertiesAt + 1;
      while (insertAt < end && (lines[insertAt].trim() === '' || indentOf(lines[insertAt]) > 8)) insertAt += 1;
      const bodyMissing = edit.missing.filter((item) => item.where !== 'path' && item.where !== 'header');
      const added = bodyMissing.map((item) => `          ${flowScalar(item.name)}: ${flow(toInput(edit.spec, item, item.where === 'body' && edit.operation.body === 'form' ? edit.mediaEncoding : undefined))}`);
      lines.splice(insertAt, 0, ...added);
      for (const item of edit.missing.filter((missing) => missing.where === 'path' || missing.where === 'header')) {
        console.log(`  !! ${edit.provider}.${edit.operationName}: ${item.where} ${item.name} needs a hand edit`);
      }
      if (edit.queryNames.length > 0) {
        const queryAt = lines.findIndex((line, at) => at > start && at < inputAt && line.startsWith('      query: ['));
        if (queryAt >= 0) {
          const names = lines[queryAt].replace(/^      query: \[\s*/, '').replace(/\s*\]\s*$/, '').split(/\s*,\s*/).filter((name) => name !== '');
          lines[queryAt] = `      query: [ ${[...names, ...edit.queryNames.map(flowScalar)].join(', ')} ]`;
        } else {
          lines.splice(inputAt, 0, `      query: [ ${edit.queryNames.map(flowScalar).join(', ')} ]`);
        }
      }
      for (const item of edit.missing.filter((missing) => missing.required)) {
        console.log(`  !! ${edit.provider}.${edit.operationName}: ${item.name} is required by the description; add it to input.required by hand`);
      }
    }
    writeFileSync(file, lines.join('\n'));
    console.log(`wrote ${file}`);
  }
}

main();
