import { didYouMean } from '../lib/did-you-mean.js';
import { looksSecretName } from '../lib/credentials.js';
import { checkLiteralInput } from './check-literal-types.js';
import { record, text, type Json } from './json-access.js';
import type { DocPath, DocumentReporter } from './report.js';

const credentialHeaders = /^(authorization|proxy-authorization|cookie|x-api-key|api-key|x-auth-token|x-access-token)$/i;

// Expressions cannot read secrets (there is no `env` root), so any literal credential header is
// a secret written into the manifest: it belongs in the connection's auth.
export function checkLiteralCredentialHeaders(headers: Json | undefined, path: DocPath, reporter: DocumentReporter): void {
  if (!headers) return;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string' && value.trim() !== '' && (credentialHeaders.test(name) || looksSecretName(name))) {
      reporter.at(
        [...path, name],
        'PB_SECRET_LITERAL',
        `header ${name} carries a credential written in the manifest; configure it as the connection's auth with { env: NAME } instead`,
      );
    }
  }
}

/**
 * Checks inputs given to an operation against its input schema: unknown names (unless the schema
 * is open), required ones, "one of" groups (`anyOf`/`oneOf` of `required`, also under `allOf`),
 * and the literal parts of each value against its own schema (`checkLiteralInput`).
 * `suppliedByCursor` names an input a poll trigger fills in itself.
 */
export function checkInputs(
  inputs: unknown,
  schema: unknown,
  path: DocPath,
  ownerPath: DocPath,
  call: string,
  reporter: DocumentReporter,
  suppliedByCursor: unknown,
): void {
  const inputSchema = record(schema) ?? {};
  const properties = record(inputSchema.properties) ?? {};
  const required = Array.isArray(inputSchema.required) ? inputSchema.required.filter((r): r is string => typeof r === 'string') : [];
  const given = record(inputs) ?? {};
  const open = inputSchema.additionalProperties !== undefined && inputSchema.additionalProperties !== false;
  for (const [name, value] of Object.entries(given)) {
    if (Object.hasOwn(properties, name)) checkLiteralInput(value, properties[name], [...path, name], name, reporter);
  }
  if (!open) {
    for (const name of Object.keys(given)) {
      if (!Object.hasOwn(properties, name)) {
        const known = Object.keys(properties);
        reporter.at(
          [...path, name],
          'PB_STEP_UNKNOWN_INPUT',
          `${call} has no input "${name}"${didYouMean(name, known)}${known.length ? `; inputs: ${known.join(', ')}` : ''}`,
          { anchor: 'key' },
        );
      }
    }
  }
  // `anyOf: [{ required: [From] }, { required: [MessagingServiceSid] }]`, possibly under `allOf`:
  // one alternative of each group must be satisfied.
  const groups = [inputSchema, ...(Array.isArray(inputSchema.allOf) ? inputSchema.allOf : [])]
    .map((s) => record(s)?.anyOf ?? record(s)?.oneOf)
    .filter(Array.isArray);
  for (const group of groups) {
    const alternatives = (group as unknown[])
      .map((alt) => record(alt)?.required)
      .filter((req): req is string[] => Array.isArray(req) && req.every((r) => typeof r === 'string'));
    if (alternatives.length === 0 || alternatives.length !== (group as unknown[]).length) continue;
    const satisfied = alternatives.some((req) => req.every((r) => Object.hasOwn(given, r) || r === suppliedByCursor));
    if (!satisfied) {
      reporter.at(
        inputs === undefined ? [...ownerPath, 'call'] : path,
        'PB_STEP_MISSING_INPUT',
        `${call} needs one of ${alternatives.map((req) => req.join(' + ')).join(', ')}`,
        { anchor: inputs === undefined ? 'value' : 'key' },
      );
    }
  }
  for (const name of required) {
    if (!Object.hasOwn(given, name) && name !== suppliedByCursor) {
      reporter.at(
        inputs === undefined ? [...ownerPath, 'call'] : path,
        'PB_STEP_MISSING_INPUT',
        `${call} needs input "${name}"${describeInput(properties[name])}`,
        { anchor: inputs === undefined ? 'value' : 'key' },
      );
    }
  }
}

function describeInput(schema: unknown): string {
  const description = text(record(schema)?.description);
  if (!description) return '';
  const first = description.split(/(?<=\.)\s/)[0]!.trim();
  return ` (${first.length > 120 ? `${first.slice(0, 117)}…` : first})`;
}
