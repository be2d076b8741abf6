import { isScalar } from 'yaml';
import { didYouMean } from '../lib/did-you-mean.js';
import { analyseExpression, type InputReference } from '../mapping/references.js';
import { conditionExpression, parseTemplate, type TemplatePart } from '../mapping/template.js';
import { checkSchemaPath } from './event-paths.js';
import { record, type Json } from './json-access.js';
import { formatPath, type DocPath, type DocumentReporter } from './report.js';
import { mapValueOffset } from './scalar-offsets.js';
import { nodeAt } from './source.js';

/** Roots an expression may read; everything else at the root is undefined at run time. */
export const expressionRoots = ['event', 'steps', 'vars', 'trigger'] as const;

/** Fields of a step's result visible to later steps as `steps.<id>.<field>`. */
const stepResultFields = ['output', 'status', 'error'];

/** A step's id and its position, for telling earlier steps from later ones. */
export interface StepInfo {
  readonly id: string;
  readonly index: number;
}

/** Where a string sits, for pointing inside it at an expression's column. */
export interface StringSite {
  readonly path: DocPath;
  readonly value: string;
}


/** What an expression may refer to where it is written, and where to report. */
export interface ExpressionContext {
  readonly reporter: DocumentReporter;
  readonly stepIds: Map<string, StepInfo>;
  readonly vars: Json;
  readonly eventSchemas: { schemas: unknown[]; label: string };
  /** Index of the step whose fields are checked; -1 for the trigger and policy (no step output yet). */
  readonly currentStep: number | undefined;
}

/** Checks every `{{ }}` in a value (strings, lists and mappings, recursively). */
export function checkTemplates(value: unknown, path: DocPath, context: ExpressionContext): void {
  if (typeof value === 'string') {
    const parsed = parseTemplate(value);
    if (parsed.unterminatedAt !== undefined) {
      const offset = siteOffset({ path, value }, context, parsed.unterminatedAt);
      context.reporter.atOffsets(offset, offset + 2, 'PB_EXPR_UNTERMINATED', `"{{" at ${formatPath(path)} has no closing "}}"`);
    }
    for (const part of parsed.parts) checkExpression(part, { path, value }, context);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkTemplates(item, [...path, i], context));
    return;
  }
  const object = record(value);
  if (object) for (const [key, item] of Object.entries(object)) checkTemplates(item, [...path, key], context);
}

/** Checks a condition (`if`, `orderBy`): one expression, with or without `{{ }}`. */
export function checkCondition(site: StringSite, context: ExpressionContext): void {
  const parsed = parseTemplate(site.value);
  // A condition is one expression: `{{ a }} and {{ b }}` would be read as text, always truthy.
  if (parsed.unterminatedAt !== undefined || (parsed.parts.length > 0 && !parsed.whole)) {
    const offset = siteOffset(site, context, parsed.unterminatedAt ?? 0);
    context.reporter.atOffsets(
      offset,
      offset + 2,
      parsed.unterminatedAt !== undefined ? 'PB_EXPR_UNTERMINATED' : 'PB_EXPR_SYNTAX',
      parsed.unterminatedAt !== undefined
        ? `"{{" at ${formatPath(site.path)} has no closing "}}"`
        : `${formatPath(site.path)} must be one expression: write it as a single {{ … }} (e.g. {{ a and b }}) or without braces`,
    );
    return;
  }
  checkExpression(conditionExpression(site.value), site, context);
}

// The redactor's grammar (engine/lib/redact.ts): `*` for any one key or element, digits for one element.
const redactPathPattern = /^(event|trigger|steps\.([A-Za-z_][A-Za-z0-9_]*|\*)\.(output|error))(\.([A-Za-z_$][\w$-]*|\*|[0-9]+))*$/;

/**
 * `redact` paths must name data that exists: a misspelt path silently leaves personal data in
 * the database, so unknown steps are errors and unknown event paths warnings, as in expressions.
 */
export function checkRedactPaths(redact: unknown, context: ExpressionContext): void {
  if (!Array.isArray(redact)) return;
  redact.forEach((entry, i) => {
    if (typeof entry !== 'string') return;
    const path: DocPath = ['spec', 'redact', i];
    if (!redactPathPattern.test(entry)) {
      context.reporter.at(
        path,
        'PB_MANIFEST_BAD_VALUE',
        `redact path "${entry}" must be a dotted path under event, trigger or steps.<id>.output (\`*\` for any key or element), e.g. event.data.object.billing_details`,
      );
      return;
    }
    // Only the part before the first wildcard or index can be checked against steps and schemas.
    const all = entry.split('.');
    const firstWild = all.findIndex((name, k) => k > 0 && (name === '*' || /^[0-9]+$/.test(name)));
    const names = firstWild < 0 ? all : all.slice(0, firstWild);
    if (names[0] === 'steps' && names.length < 3) return;
    // Reuse the expression checks: a redact path is a path an expression could read.
    checkReference(
      { names, offsets: names.map((_, k) => names.slice(0, k).join('.').length + (k > 0 ? 1 : 0)) },
      { expression: entry, offset: 0 },
      { path, value: entry },
      { ...context, currentStep: undefined },
    );
  });
}

/** Longest expression accepted, as the schema's `expression` type says; longer ones are unreviewable. */
const maxExpressionLength = 10_000;

function checkExpression(part: TemplatePart, site: StringSite, context: ExpressionContext): void {
  const { reporter } = context;
  if (part.expression.length > maxExpressionLength) {
    const offset = siteOffset(site, context, part.offset);
    reporter.atOffsets(
      offset,
      offset + 1,
      'PB_EXPR_TOO_LONG',
      `expression is ${part.expression.length} characters long, more than ${maxExpressionLength}; move the logic into steps or shorter expressions`,
    );
    return;
  }
  const result = analyseExpression(part.expression);
  if (!result.ok) {
    const offset = siteOffset(site, context, part.offset + result.offset);
    reporter.atOffsets(offset, offset + 1, 'PB_EXPR_SYNTAX', `invalid expression: ${result.message}`);
    return;
  }
  for (const reference of result.references) checkReference(reference, part, site, context);
}

function checkReference(reference: InputReference, part: TemplatePart, site: StringSite, context: ExpressionContext): void {
  const { reporter, stepIds, vars, eventSchemas, currentStep } = context;
  const [root, second] = reference.names;
  const at = (nameIndex: number) => siteOffset(site, context, part.offset + (reference.offsets[nameIndex] ?? 0));
  const report = (nameIndex: number, code: Parameters<DocumentReporter['atOffsets']>[2], message: string) => {
    const start = at(nameIndex);
    reporter.atOffsets(start, start + (reference.names[nameIndex]?.length ?? 1), code, message);
  };
  if (root === undefined) return;
  if (!(expressionRoots as readonly string[]).includes(root)) {
    report(
      0,
      'PB_EXPR_UNKNOWN_ROOT',
      `"${root}" is not defined${didYouMean(root, expressionRoots)}; expressions read event, steps.<id>.output, vars and trigger`,
    );
    return;
  }
  if (root === 'steps' && second !== undefined) {
    const target = stepIds.get(second);
    if (!target) {
      report(1, 'PB_EXPR_UNKNOWN_STEP', `no step "${second}"${didYouMean(second, stepIds.keys())}`);
      return;
    }
    if (currentStep !== undefined && target.index >= currentStep) {
      report(
        1,
        'PB_EXPR_FORWARD_STEP',
        currentStep < 0
          ? `steps.${second} is not available here: no step has run yet`
          : target.index === currentStep
            ? `step "${second}" cannot read its own output`
            : `step "${second}" runs after this one; only earlier steps' outputs can be read`,
      );
      return;
    }
    const field = reference.names[2];
    if (field !== undefined && !stepResultFields.includes(field)) {
      report(2, 'PB_EXPR_UNKNOWN_STEP', `steps.${second} has no "${field}"${didYouMean(field, stepResultFields)}; use steps.${second}.output`);
    }
    return;
  }
  if (root === 'vars' && second !== undefined && !Object.hasOwn(vars, second)) {
    report(1, 'PB_EXPR_UNKNOWN_VAR', `vars.${second} is not defined in spec.vars${didYouMean(second, Object.keys(vars))}`);
    return;
  }
  if (root === 'event' && reference.names.length > 1 && eventSchemas.schemas.length > 0) {
    const rest = reference.names.slice(1);
    const checks = eventSchemas.schemas.map((schema) => checkSchemaPath(schema, rest));
    if (checks.some((c) => c.ok)) return;
    const failed = checks[0] as Extract<ReturnType<typeof checkSchemaPath>, { ok: false }>;
    const bad = failed.index + 1;
    const shown = ['event', ...rest.slice(0, failed.index + 1)].join('.');
    const hint = failed.suggestion
      ? ` (did you mean "${['event', ...rest.slice(0, failed.index), failed.suggestion].join('.')}"?)`
      : '';
    report(bad, 'PB_EXPR_UNKNOWN_EVENT_PATH', `${shown} is not in the payload of ${eventSchemas.label}${hint}`);
  }
}

/** Maps an offset inside a string value to its offset in the file, for every scalar style. */
function siteOffset(site: StringSite, context: ExpressionContext, offsetInValue: number): number {
  const node = nodeAt(context.reporter.source, site.path);
  if (!isScalar(node) || !node.range) return context.reporter.source.doc.range[0];
  return mapValueOffset(context.reporter.source.text, node, site.value, offsetInValue);
}
