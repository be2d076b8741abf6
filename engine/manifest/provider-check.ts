import type { ProviderDocument } from '../types/provider.generated.js';
import type { DocumentReporter } from './report.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { compilePattern } from '../lib/pattern.js';

/** The first problem found in a JSON Schema: where (a path inside the schema) and what. */
export interface SchemaProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

// `{name+}` is a greedy path placeholder (the value keeps its slashes).
const placeholder = /\{([A-Za-z_][A-Za-z0-9_]*)\+?\}/g;

/**
 * Checks a provider definition beyond its schema: every `{placeholder}` in the base URLs, hosts,
 * headers and operation paths is a declared variable, an input or `apiVersion`; inputs named by
 * `query`, `headers`, `rawBody`, `requestFromInputs` and rate limit tier keys exist; rate limit
 * tiers named by operations exist; regular expressions compile; each operation's `example` is
 * valid against its input schema. `validateSchema` checks a JSON Schema (operation inputs, event
 * payloads) and returns its first problem or undefined; `validateValue` checks a value against a
 * schema the same way.
 */
export function checkProvider(
  document: ProviderDocument,
  reporter: DocumentReporter,
  validateSchema: (schema: unknown) => SchemaProblem | undefined,
  validateValue?: (schema: unknown, value: unknown) => SchemaProblem | undefined,
): void {
  const spec = document.spec;
  const variables = Object.keys(spec.variables ?? {});
  const known = [...variables, 'apiVersion'];

  const checkPlaceholders = (template: string | undefined, path: (string | number)[], extra: string[]) => {
    if (template === undefined) return;
    for (const match of template.matchAll(placeholder)) {
      const name = match[1]!;
      if (!known.includes(name) && !extra.includes(name)) {
        reporter.at(
          path,
          'PB_PROVIDER_BAD_REFERENCE',
          `{${name}} is neither a declared variable nor an input${didYouMean(name, [...known, ...extra])}`,
        );
      }
    }
  };
  checkPlaceholders(spec.baseUrl, ['spec', 'baseUrl'], []);
  (spec.hosts ?? []).forEach((host, i) => checkPlaceholders(host, ['spec', 'hosts', i], []));
  for (const [header, value] of Object.entries(spec.headers ?? {})) checkPlaceholders(value, ['spec', 'headers', header], []);
  checkPagination(spec.pagination, ['spec', 'pagination'], reporter);

  for (const [name, variable] of Object.entries(spec.variables ?? {})) {
    if (variable.pattern !== undefined && compilePattern(variable.pattern) === undefined) {
      reporter.at(['spec', 'variables', name, 'pattern'], 'PB_MANIFEST_BAD_VALUE', `pattern is not a valid regular expression`);
    }
  }

  const tiers = Object.keys(spec.rateLimit?.tiers ?? {});
  for (const [name, operation] of Object.entries(spec.operations ?? {})) {
    const base = ['spec', 'operations', name];
    const inputs = Object.keys((operation.input as { properties?: object }).properties ?? {});
    checkPlaceholders(operation.path, [...base, 'path'], inputs);
    checkPlaceholders(operation.baseUrl, [...base, 'baseUrl'], []);
    checkPagination(operation.pagination, [...base, 'pagination'], reporter);
    const needInput = (input: string | undefined, path: (string | number)[], what: string) => {
      if (input !== undefined && !inputs.includes(input)) {
        reporter.at(path, 'PB_PROVIDER_BAD_REFERENCE', `${what} "${input}" is not an input${didYouMean(input, inputs)}`);
      }
    };
    for (const input of Object.keys(operation.headers ?? {})) needInput(input, [...base, 'headers', input], 'header input');
    needInput(operation.rawBody, [...base, 'rawBody'], 'rawBody');
    if (operation.body === 'raw' && operation.rawBody === undefined) {
      reporter.at([...base, 'body'], 'PB_MANIFEST_MISSING_FIELD', '`body: raw` needs `rawBody`, the input that holds the body');
    }
    for (const [part, input] of Object.entries(operation.requestFromInputs ?? {})) {
      needInput(input, [...base, 'requestFromInputs', part], `requestFromInputs.${part}`);
    }
    const tierKey = operation.rateLimitTier === undefined ? undefined : spec.rateLimit?.tiers?.[operation.rateLimitTier]?.keyInput;
    needInput(tierKey, [...base, 'rateLimitTier'], `the tier's keyInput`);
    if (operation.example !== undefined && validateValue !== undefined) {
      const problem = validateValue(operation.input, operation.example);
      if (problem) reporter.at([...base, 'example', ...problem.path], 'PB_PROVIDER_BAD_EXAMPLE', `example does not match the input schema: ${problem.message}`);
    }
    const problem = validateSchema(operation.input);
    if (problem) reporter.at([...base, 'input', ...problem.path], 'PB_PROVIDER_BAD_SCHEMA', `input schema is invalid: ${problem.message}`);
    if (operation.output !== undefined) {
      const outputProblem = validateSchema(operation.output);
      if (outputProblem) {
        reporter.at([...base, 'output', ...outputProblem.path], 'PB_PROVIDER_BAD_SCHEMA', `output schema is invalid: ${outputProblem.message}`);
      }
    }
    for (const [i, queryName] of (operation.query ?? []).entries()) {
      if (!inputs.includes(queryName)) {
        reporter.at([...base, 'query', i], 'PB_PROVIDER_BAD_REFERENCE', `query parameter "${queryName}" is not an input${didYouMean(queryName, inputs)}`);
      }
    }
    if (operation.rateLimitTier !== undefined && !tiers.includes(operation.rateLimitTier)) {
      reporter.at(
        [...base, 'rateLimitTier'],
        'PB_PROVIDER_BAD_REFERENCE',
        `rate limit tier "${operation.rateLimitTier}" is not declared in spec.rateLimit.tiers${didYouMean(operation.rateLimitTier, tiers)}`,
      );
    }
  }

  for (const [name, event] of Object.entries(spec.webhooks?.events ?? {})) {
    if (event.schema === undefined) continue;
    const problem = validateSchema(event.schema);
    if (problem) {
      reporter.at(
        ['spec', 'webhooks', 'events', name, 'schema', ...problem.path],
        'PB_PROVIDER_BAD_SCHEMA',
        `payload schema is invalid: ${problem.message}`,
      );
    }
  }
}

function checkPagination(
  pagination: ProviderDocument['spec']['pagination'],
  path: (string | number)[],
  reporter: DocumentReporter,
): void {
  if (pagination?.style === 'nextUrl' && pagination.nextUrlPath === undefined) {
    reporter.at([...path, 'style'], 'PB_MANIFEST_MISSING_FIELD', '`style: nextUrl` needs `nextUrlPath`, where the response holds the next page');
  }
}
