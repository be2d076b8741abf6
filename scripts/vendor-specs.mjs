#!/usr/bin/env node
// Copies into test/fixtures/specs/ the parts of the providers' official API descriptions that
// the request tests need, so they run on a clean clone without ../shared/specs:
//
// - OpenAPI/Swagger descriptions (Prism mocks, test/providers/prism.test.ts): for each bundled
//   provider with one, the paths its operations use, cut by ../shared/specs/tools/trim-openapi.mjs
//   (which keeps every component those paths reach) and written as <provider>[-<part>].json;
// - the Shopify Admin GraphQL introspection (test/providers/shopify-graphql.test.ts), as is;
// - AWS Smithy models (test/providers/aws-smithy.test.ts): only the operations the `aws`
//   provider uses and the shapes they reach, written as aws-<service>.json;
// - index.json (which file serves which provider) and README.md (sources, licences, commands).
//
// Usage: node scripts/vendor-specs.mjs [--specs DIR]   (default: ../shared/specs from the repo root)
// Run it again whenever a provider gains an operation on a path not vendored yet.

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const specsArg = args.indexOf('--specs');
const specsDir = resolve(specsArg >= 0 ? args[specsArg + 1] : join(root, '..', 'shared', 'specs'));
const outDir = join(root, 'test', 'fixtures', 'specs');
const trimTool = join(specsDir, 'tools', 'trim-openapi.mjs');

/**
 * Which descriptions may serve each provider, relative to the specs folder. A provider's
 * operations are matched against all of its candidates; each candidate that serves at least one
 * is trimmed to the paths it serves. The licence lines repeat what each folder's SOURCES.md says.
 */
const candidates = {
  stripe: {
    files: ['stripe/spec3.trimmed.json'],
    source: 'stripe/openapi `openapi/spec3.yaml` @ 63a674638635c68de26b9f3add13e58198f4df44 (2023-09-12), via the shared `spec3.trimmed.json` (`--unexpand --relax-form-required`, see stripe/SOURCES.md)',
    licence: 'MIT (Stripe, Inc.); modified (trimmed)',
  },
  twilio: {
    files: ['twilio/twilio_api_v2010.json'],
    source: 'twilio/twilio-oai `spec/json/twilio_api_v2010.json` @ d50069b44ea8cd23141385bdb6db48f16ff75bb5 (2026-04-14)',
    licence: 'MIT (Copyright (C) 2023, Twilio, Inc.; the document\'s own `info.license` says Apache-2.0); modified (trimmed)',
  },
  slack: {
    files: ['slack/slack_web_openapi_v2.mock.json'],
    source: 'slackapi/slack-api-specs `web-api/slack_web_openapi_v2.json` @ bc08db49625630e3585bf2f1322128ea04f2a7f3, via the shared `slack_web_openapi_v2.mock.json` (`--drop-param token`)',
    licence: 'MIT (Copyright (c) 2017 SlackAPI); modified (trimmed)',
  },
  openai: {
    files: ['openai/openapi.trimmed.json'],
    source: 'openai/openai-openapi `openapi.yaml` @ f85dbe223d40e1a31cba812ab2d755c7e98a92a3 (2026-08-21, one description link removed), via the shared `openapi.trimmed.json` (`--fix-typeless-nullable`)',
    licence: 'MIT (OpenAI); modified (trimmed)',
  },
  github: {
    files: ['github/api.github.com.trimmed.json'],
    source: 'npm `@octokit/openapi@23.0.2` `generated/api.github.com.json` (= github/rest-api-description + `x-octokit`), via the shared `api.github.com.trimmed.json` (`--fix-typeless-nullable`)',
    licence: 'MIT (GitHub); modified (trimmed)',
  },
  sendgrid: {
    files: 'sendgrid/tsg_*_v3.json',
    source: 'twilio/sendgrid-oai `spec/json/` @ dbe0e0d2e67a0c3c55b222d54df2acda2b9027a7 (2026-01-22)',
    licence: 'MIT (Twilio SendGrid); modified (trimmed)',
  },
  googlemaps: {
    files: ['googlemaps/google-maps-platform-openapi3.json'],
    source: 'googlemaps/openapi-specification `dist/google-maps-platform-openapi3.json` @ ef437434d55ad2d988c0fc8c0b3d14fe2dcb7441 (2023-10-03)',
    licence: 'Apache-2.0 (Google LLC); modified (trimmed)',
  },
};

const smithyModels = {
  s3: 's3-2006-03-01.json',
  sqs: 'sqs-2012-11-05.json',
  sns: 'sns-2010-03-31.json',
  sesv2: 'sesv2-2019-09-27.json',
  lambda: 'lambda-2015-03-31.json',
  eventbridge: 'eventbridge-2015-10-07.json',
};

const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** The bundled providers, parsed from providers/*.yaml. */
function loadProviders() {
  const providers = new Map();
  const dir = join(root, 'providers');
  for (const file of readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(dir, file), 'utf8'), { merge: true })) {
      const value = document.toJS({ maxAliasCount: -1 });
      if (value?.kind === 'Provider') providers.set(value.metadata.name, value);
    }
  }
  return providers;
}

/** `{anything}` and `{anything+}` → `{}`, so templates compare by shape. */
const shape = (path) => path.replace(/\{[^}]*\}/g, '{}');

/** The path part of a base URL template, with placeholders kept as `{name}`. */
function basePath(template) {
  if (template === undefined) return '';
  const filled = template.replace(/\{([^}]*)\}/g, (_, name) => `__${name}__`);
  const path = decodeURIComponent(new URL(filled).pathname).replace(/__([^_]+)__/g, '{$1}');
  return path.replace(/\/+$/, '');
}

/** The server base path(s) of a description: OpenAPI `servers`, Swagger `basePath`. */
function serverPaths(spec, pathItem) {
  if (spec.swagger !== undefined) return [(spec.basePath ?? '').replace(/\/+$/, '')];
  const servers = pathItem?.servers ?? spec.servers ?? [];
  const paths = servers.map((server) => basePath(server.url));
  return paths.length === 0 ? [''] : paths;
}

/** The spec path key serving `method` + `fullPath`, or undefined. */
function matchPath(spec, method, fullPath) {
  for (const [key, item] of Object.entries(spec.paths ?? {})) {
    if (key.includes('?') || item?.[method] === undefined) continue;
    for (const prefix of serverPaths(spec, item)) {
      if (prefix !== '' && !fullPath.startsWith(prefix)) continue;
      if (shape(fullPath.slice(prefix.length)) === shape(key)) return key;
    }
  }
  return undefined;
}

/** Every operation's method and full path (base URL path + operation path). */
function operationTargets(provider) {
  const targets = [];
  for (const [name, operation] of Object.entries(provider.spec.operations)) {
    const method = (operation.method ?? 'POST').toLowerCase();
    const fullPath = basePath(operation.baseUrl ?? provider.spec.baseUrl) + (operation.path ?? '');
    targets.push({ name, method, fullPath });
  }
  return targets;
}

function candidateFiles(pattern) {
  if (Array.isArray(pattern)) return pattern;
  const dir = dirname(pattern);
  const re = new RegExp(`^${basename(pattern).replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
  return readdirSync(join(specsDir, dir)).filter((name) => re.test(name)).sort().map((name) => `${dir}/${name}`);
}

const escapeRegex = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function vendorOpenApi(providers, index, readme, commands, scratch) {
  for (const [provider, config] of Object.entries(candidates)) {
    const document = providers.get(provider);
    if (document === undefined) continue;
    const targets = operationTargets(document);
    const unmatched = new Set(targets.map((target) => target.name));
    const files = [];
    for (const file of candidateFiles(config.files)) {
      const spec = JSON.parse(readFileSync(join(specsDir, file), 'utf8'));
      const keys = new Set();
      const used = new Set();
      for (const target of targets) {
        const key = matchPath(spec, target.method, target.fullPath);
        if (key === undefined) continue;
        keys.add(key);
        used.add(target.method);
        unmatched.delete(target.name);
      }
      if (keys.size === 0) continue;
      // One file per provider, or one per SendGrid description (`sendgrid-mail.json`).
      const part = Array.isArray(config.files) ? '' : `-${basename(file, '.json').replace(/^tsg_|_v3$/g, '').replace(/_/g, '-')}`;
      const out = `${provider}${part}.json`;
      const stripped = structuredClone(spec);
      const removed = dropResponseBodies(stripped);
      const input = join(scratch, basename(file));
      writeFileSync(input, JSON.stringify(stripped));
      const argv = [trimTool, '--in', input, '--out', join(outDir, out), '--compact', '--methods', [...used].sort().join(','), '--source', `${config.source}: ${file}`];
      for (const key of [...keys].sort()) argv.push('--include', `^${escapeRegex(key)}$`);
      execFileSync(process.execPath, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
      const trimmed = JSON.parse(readFileSync(join(outDir, out), 'utf8'));
      trimmed['x-trimmed'] = { ...trimmed['x-trimmed'], responseBodiesRemoved: removed };
      writeFileSync(join(outDir, out), JSON.stringify(trimmed));
      commands.push(`node ../shared/specs/tools/trim-openapi.mjs ${argv.slice(1).map((arg) => (arg === input ? `<${file} without response bodies>` : arg.startsWith(outDir) ? relative(root, arg) : arg)).map(quote).join(' ')}`);
      files.push({ file: out, from: file, paths: [...keys].sort() });
    }
    index.openapi[provider] = { files, unmatched: [...unmatched].sort() };
    readme.push(`| ${provider} | ${files.map((f) => `\`${f.file}\` (${f.paths.length} paths, from \`${f.from}\`)`).join('<br>')} | ${config.source} | ${config.licence} |`);
    if (unmatched.size > 0) console.warn(`${provider}: no description path for ${[...unmatched].join(', ')}`);
  }
}

/**
 * Reduces every response to its status, description and headers: response bodies (their
 * schemas and examples; Swagger 2 `schema` and `examples`) are removed. They are most of some
 * descriptions' bytes (Google Maps: 1.4 of 1.6 MB are response examples; Stripe's and OpenAI's
 * object schemas) and these tests only check requests. Prism then answers 2xx with no body.
 * Runs before trimming, so the components only responses used are dropped by trim-openapi.
 * Request parameters and bodies are untouched. Returns how many bodies were removed.
 */
function dropResponseBodies(spec) {
  let removed = 0;
  const responses = [];
  for (const item of Object.values(spec.paths ?? {})) {
    for (const method of methods) responses.push(...Object.values(item?.[method]?.responses ?? {}));
  }
  responses.push(...Object.values(spec.components?.responses ?? {}), ...Object.values(spec.responses ?? {}));
  for (const response of responses) {
    if (response === null || typeof response !== 'object') continue;
    for (const key of ['content', 'schema', 'examples']) {
      if (response[key] !== undefined) {
        delete response[key];
        removed += 1;
      }
    }
  }
  return removed;
}

function quote(arg) {
  return /^[A-Za-z0-9_./,=-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * For each `aws` operation, finds its Smithy model (the model whose `endpointPrefix` is a label of
 * the operation's host, else whose signing name is its `awsService`) and its Smithy operation:
 * by `X-Amz-Target` (awsJson), by the `Action` field (awsQuery), else by method and URI
 * (restJson1, restXml). Writes each model pruned to those operations and the shapes they reach,
 * without documentation, as aws-<service>.json, and records the mapping in index.json; the test
 * then checks each request against its operation, so a wrong mapping cannot pass.
 */
function vendorSmithy(providers, index, readme) {
  const aws = providers.get('aws');
  if (aws === undefined) return;
  const models = Object.entries(smithyModels).map(([service, file]) => {
    const model = JSON.parse(readFileSync(join(specsDir, 'aws', file), 'utf8'));
    const serviceId = Object.keys(model.shapes).find((id) => model.shapes[id].type === 'service');
    const traits = model.shapes[serviceId].traits ?? {};
    return {
      service,
      file,
      model,
      serviceId,
      endpointPrefix: traits['aws.api#service']?.endpointPrefix,
      signingName: traits['aws.auth#sigv4']?.name,
      wanted: new Set(),
    };
  });
  index.smithy = { models: {}, operations: {}, unmatched: [] };
  for (const [name, operation] of Object.entries(aws.spec.operations)) {
    const template = operation.baseUrl ?? aws.spec.baseUrl ?? '';
    const host = template.replace(/^[a-z]+:\/\//, '').split('/')[0] ?? '';
    const labels = host.split('.');
    const model =
      models.find((candidate) => labels.includes(candidate.endpointPrefix)) ??
      models.find((candidate) => operation.awsService !== undefined && [candidate.signingName, candidate.endpointPrefix].includes(operation.awsService));
    const shapeId = model === undefined ? undefined : smithyOperation(model, operation, template);
    if (shapeId === undefined) {
      index.smithy.unmatched.push(name);
      console.warn(`aws: no Smithy operation for ${name}`);
      continue;
    }
    model.wanted.add(shapeId);
    index.smithy.operations[name] = { service: model.service, shape: shapeId };
  }
  for (const { service, file, model, serviceId, wanted } of models) {
    if (wanted.size === 0) continue;
    const shapes = model.shapes;
    const keep = new Set();
    const visit = (id) => {
      if (keep.has(id) || shapes[id] === undefined) return;
      keep.add(id);
      const shapeDef = shapes[id];
      for (const ref of [shapeDef.input, shapeDef.output, shapeDef.member, shapeDef.key, shapeDef.value, ...(shapeDef.errors ?? [])]) if (ref?.target) visit(ref.target);
      for (const member of Object.values(shapeDef.members ?? {})) visit(member.target);
    };
    for (const id of wanted) visit(id);
    const pruned = { smithy: model.smithy, metadata: model.metadata, shapes: {} };
    const serviceShape = { ...shapes[serviceId], operations: [...wanted].sort().map((target) => ({ target })) };
    delete serviceShape.resources;
    pruned.shapes[serviceId] = withoutDocs(serviceShape);
    for (const id of [...keep].sort()) pruned.shapes[id] = withoutDocs(shapes[id]);
    const out = `aws-${service}.json`;
    writeFileSync(join(outDir, out), JSON.stringify(pruned));
    index.smithy.models[service] = { file: out, operations: [...wanted].sort() };
    readme.push(`| aws (${service}) | \`${out}\` (${wanted.size} operations, ${keep.size} shapes) | aws/api-models-aws \`${service}/service/…/${file}\` @ 56c8953e87aeead95ae5e66a3ca6a355731db6ad (2025-04-02) | Apache-2.0, NOTICE "Copyright Amazon.com, Inc. or its affiliates. All Rights Reserved."; modified (pruned to the operations used, documentation removed) |`);
  }
}

const docTraits = new Set(['smithy.api#documentation', 'smithy.api#examples', 'smithy.api#externalDocumentation', 'smithy.rules#endpointTests', 'smithy.rules#endpointRuleSet']);

/** A shape without documentation traits (on itself and its members): most of a model's bytes. */
function withoutDocs(shapeDef) {
  const strip = (traits) => (traits === undefined ? undefined : Object.fromEntries(Object.entries(traits).filter(([key]) => !docTraits.has(key))));
  const copy = { ...shapeDef };
  if (copy.traits !== undefined) copy.traits = strip(copy.traits);
  if (copy.members !== undefined) {
    copy.members = Object.fromEntries(Object.entries(copy.members).map(([key, member]) => [key, member.traits === undefined ? member : { ...member, traits: strip(member.traits) }]));
  }
  return copy;
}

/** The Smithy operation shape id an `aws` operation calls, or undefined. */
function smithyOperation(model, operation, baseTemplate) {
  const shapes = model.model.shapes;
  const operations = Object.keys(shapes).filter((id) => shapes[id].type === 'operation');
  const byName = (name) => operations.find((id) => id.split('#')[1] === name);
  const headers = Object.fromEntries(Object.entries(operation.fixed?.headers ?? {}).map(([key, value]) => [key.toLowerCase(), value]));
  const target = headers['x-amz-target'];
  if (target !== undefined) return byName(target.split('.').pop());
  const action = operation.fixed?.body?.Action ?? operation.fixed?.query?.Action;
  if (action !== undefined) return byName(action);
  const method = operation.method ?? 'POST';
  const fullPath = basePath(baseTemplate) + (operation.path ?? '');
  const fixedQuery = operation.fixed?.query ?? {};
  // S3 serves several operations on one method and URI; its URIs carry a literal `x-id` query
  // that tells them apart, and the catalogue sends it as a fixed query parameter.
  const matches = operations.filter((id) => {
    const http = shapes[id].traits?.['smithy.api#http'];
    if (http === undefined || http.method !== method || shape(http.uri.split('?')[0]) !== shape(fullPath)) return false;
    const literal = new URLSearchParams(http.uri.split('?')[1] ?? '');
    return [...literal].every(([key, value]) => Object.hasOwn(fixedQuery, key) && (value === '' || fixedQuery[key] === value));
  });
  return matches.length === 1 ? matches[0] : undefined;
}

function main() {
  statSync(trimTool);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const providers = loadProviders();
  const index = { openapi: {}, smithy: { models: {}, operations: {}, unmatched: [] }, graphql: {} };
  const readme = [];
  const commands = [];
  const scratch = mkdtempSync(join(tmpdir(), 'patchbay-vendor-'));
  try {
    vendorOpenApi(providers, index, readme, commands, scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  vendorSmithy(providers, index, readme);

  copyFileSync(join(specsDir, 'shopify', 'admin_2026-07.json.gz'), join(outDir, 'shopify-admin_2026-07.json.gz'));
  index.graphql.shopify = { file: 'shopify-admin_2026-07.json.gz', apiVersion: '2026-07' };
  readme.push('| shopify (GraphQL) | `shopify-admin_2026-07.json.gz` (introspection, byte-identical) | npm `@shopify/dev-mcp@1.16.0` `dist/data/admin_2026-07.json.gz` | ISC (Copyright 2025-present, Shopify Inc.); unmodified |');

  writeFileSync(join(outDir, 'LICENSES.md'), licencesText());
  writeFileSync(join(outDir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);

  const sizes = readdirSync(outDir).map((name) => [name, statSync(join(outDir, name)).size]);
  const total = sizes.reduce((sum, [, size]) => sum + size, 0);
  writeFileSync(join(outDir, 'README.md'), readmeText(readme, commands, sizes, total));
  console.log(`vendored ${sizes.length} files, ${(total / 1024).toFixed(0)} KiB, into ${relative(root, outDir)}`);
}

/**
 * The verbatim licence (and NOTICE) sections of every source's SOURCES.md, identical texts
 * given once, so the vendored copies carry their notices as MIT, ISC and Apache-2.0 require.
 */
function licencesText() {
  const folders = ['stripe', 'twilio', 'slack', 'openai', 'github', 'sendgrid', 'googlemaps', 'shopify', 'aws'];
  const seen = new Map();
  let out = '# Licences of the vendored descriptions\n\nCopied verbatim from the SOURCES.md of each source in `../shared/specs` by `scripts/vendor-specs.mjs`.\n';
  for (const folder of folders) {
    const text = readFileSync(join(specsDir, folder, 'SOURCES.md'), 'utf8');
    for (const match of text.matchAll(/^## ((?:License|NOTICE)[^\n]*)\n+```\n([\s\S]*?)```/gm)) {
      const [, title, body] = match;
      out += `\n## ${folder}: ${title}\n\n`;
      if (seen.has(body)) {
        out += `Same text as ${seen.get(body)} above.\n`;
        continue;
      }
      seen.set(body, `${folder}: ${title}`);
      out += `\`\`\`\n${body}\`\`\`\n`;
    }
  }
  return out;
}

function readmeText(rows, commands, sizes, total) {
  return `# Vendored API descriptions (test fixtures)

Generated by \`node scripts/vendor-specs.mjs\` from the shared provider descriptions (\`../shared/specs\`, see its
README and each folder's SOURCES.md). Do not edit by hand: change the catalogue and run the script again.
Tests use them so a clean clone needs nothing outside the repository:

* \`test/providers/prism.test.ts\`: every operation of a provider below is built from its \`example\` and sent to a
  Prism mock of its official description, which must accept it;
* \`test/providers/aws-smithy.test.ts\`: every \`aws\` operation is checked against the Smithy models;
* \`test/providers/shopify-graphql.test.ts\`: every Shopify GraphQL document is validated against the introspection.

OpenAPI files keep only the paths the bundled operations use (and every component those paths reach), cut by
\`trim-openapi.mjs\`, which refuses to write a document with a dangling \`$ref\`. Before trimming, the script
removes the *bodies of responses* (schemas and examples: most of the bytes, e.g. 1.4 of Google Maps' 1.6 MB are
response examples); statuses, headers, and every request parameter and body schema are kept, so Prism validates
requests exactly as the official description says and answers 2xx without a body. The count is recorded under
\`x-trimmed.responseBodiesRemoved\`.
\`index.json\` says which file serves which provider. Smithy files keep only the operations the \`aws\` provider uses and the shapes they reach.

| provider | file(s) | source | licence |
|---|---|---|---|
${rows.join('\n')}

The licence texts (MIT, ISC, Apache-2.0 and AWS's NOTICE), verbatim, are in \`LICENSES.md\` beside this file.
Modified files are marked "modified" above, as Apache-2.0 §4(b) asks.

## Commands

From the repository root, with the shared specs at \`../shared/specs\`:

\`\`\`
node scripts/vendor-specs.mjs
\`\`\`

which runs, for the OpenAPI files:

\`\`\`
${commands.join('\n')}
\`\`\`

## Sizes

${sizes.map(([name, size]) => `* \`${name}\`: ${(size / 1024).toFixed(0)} KiB`).join('\n')}

Total: ${(total / 1024).toFixed(0)} KiB, besides this README.
`;
}

main();
