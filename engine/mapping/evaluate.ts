import { setFlagsFromString } from 'node:v8';
import jsonata from 'jsonata';
import type { Code } from '../diag/codes.js';
import { PatchbayError } from '../diag/errors.js';
import { caseFoldedSource } from './case-folded-regexp.js';
import { conditionExpression, parseTemplate } from './template.js';

/**
 * Step mappings (`with`, `if`) compiled once per revision and evaluated per run under limits, so
 * that a hostile or careless expression (infinite recursion, a string doubled forty times, a
 * nested loop over a large range) fails its run with a clear code instead of hanging or
 * exhausting the engine that other runs share.
 *
 * How the limits are enforced: JSONata 2 looks up two hooks in its environment on every
 * evaluation step (`Symbol.for('jsonata.__evaluate_entry')` and `…__evaluate_exit`). They are
 * bound into each compiled expression's environment (`Expression.assign` accepts a symbol at run
 * time, although its type says string). Each evaluation carries its own state, bound under a
 * name JSONata code cannot spell (it contains spaces), and found through the evaluation's base
 * frame. JSONata awaits between steps, so concurrent evaluations interleave and a failed one
 * stops at its next step: its state keeps the failure and every later step rethrows it.
 *
 * Limits are checked by reading the clock (every 256 steps), the evaluation depth JSONata keeps
 * (`base.depth`), and the size of every intermediate result; every sequence JSONata builds for
 * the evaluation refuses to grow past `maxItems` (a path step flattens nested arrays item by
 * item before any result is seen). A long evaluation also gives way to the event loop every few
 * milliseconds, so timers and network I/O of other runs are not held up until it ends. A few
 * built-ins can allocate or loop far beyond the limits in one call, so safer versions replace them:
 * `$pad` (the width allocates), `$join`, `$string` and `$clone` (their output is measured
 * first), `$distinct` (quadratic in JSONata), `$keys` and `$spread` (work grows with the sum of
 * keys); `$eval` is refused (it would bypass compile-time checks), and the range operator is
 * capped at `maxItems`.
 *
 * Regular expressions get their own defences, since V8 runs one `exec` to its end and no clock
 * check can interrupt it: `/^(a|aa)+$/` on 45 characters of event data backtracked for 90 s
 * (measured), and `/\s*x\s*$/` on 100,000 spaces takes 6 s. In layers:
 *
 * 1. Loading this module turns on V8's linear-time engine, process-wide:
 *    `--enable-experimental-regexp-engine-on-excessive-backtracks` makes any regular expression
 *    the engine can run in linear time switch to it after 50,000 backtracks (the 45-character case
 *    above: 90 s to 2 ms), and `--enable-experimental-regexp-engine` lets this module ask for
 *    that engine from the start (the `l` flag). The CLI sets the first flag before anything else
 *    loads; an engine embedded without the CLI gets both here. V8 reads them when a regular
 *    expression runs, so expressions compiled earlier are covered too.
 * 2. Every mapping regular expression runs on the linear engine from its first step when V8 can
 *    run it there (prepared once per compiled expression, handed to JSONata as its
 *    `RegexEngine`): quadratic patterns stay linear too (`/\s*x\s*$/` on 100,000 spaces: 6 s
 *    to 50 ms). V8's linear engine cannot run `i`, so a case-insensitive pattern runs rewritten
 *    with its case variants spelled out (`/a/i` as `/[aA]/`, see case-folded-regexp.ts). It
 *    cannot run backreferences, lookaheads or large counted repetitions (`a{1000}`) either, nor
 *    lookbehinds before Node 22: those run on the backtracking engine, unprotected by layers 1
 *    and 2.
 * 3. A regular expression refuses to run on a string longer than `maxRegexInputLength`
 *    (PB_MAPPING_TOO_LARGE), whatever calls it (`$match`, `$contains`, `$replace`, `$split`, or
 *    the regex value called as a function), so even the linear engine's time is bounded.
 * 4. Patterns that repeat a repeated group (`(a+)+`, the classic exponential form) are refused at
 *    compile time with PB_MAPPING_UNSAFE_REGEX, whichever engine would run them.
 */

/**
 * Limits on one `evaluateMapping` or `evaluateCondition` call. Every failure is terminal: a retry
 * would run the same expression on the same input.
 */
export interface MappingLimits {
  /**
   * Wall-clock budget of the whole call, all fields together, in milliseconds. Exceeding it
   * throws PB_MAPPING_TIMEOUT. @default 250
   */
  readonly timeoutMs?: number;
  /**
   * Nested evaluation frames (JSONata's own depth count: about three per level of a recursive
   * function call). Exceeding it throws PB_MAPPING_TOO_DEEP. Tail calls are optimised by
   * JSONata and do not nest: an infinite tail recursion ends on the timeout. @default 200
   */
  readonly maxDepth?: number;
  /** Characters in any string, intermediate or final. Exceeding it throws PB_MAPPING_TOO_LARGE. @default 1_048_576 */
  readonly maxStringLength?: number;
  /**
   * Items in any array or sequence, intermediate or final; the range operator (`[1..n]`) refuses
   * to allocate more. Exceeding it throws PB_MAPPING_TOO_LARGE. @default 100_000
   */
  readonly maxItems?: number;
  /**
   * Approximate JSON length, in characters, of each field's final value and of any value that
   * is compared (`=`, `!=`, `in`), cloned or distinct-ed, counting a value held by reference in
   * many places once per place (so an array of 100,000 references to one large value counts
   * in full). Exceeding it throws PB_MAPPING_TOO_LARGE. @default 33_554_432
   */
  readonly maxResultLength?: number;
  /**
   * Characters in a string a regular expression is run on (`$match`, `$contains`, `$replace`,
   * `$split` with a regex, or the regex called as a function): even in linear time, a long
   * subject holds the event loop in one uninterruptible step. Exceeding it throws
   * PB_MAPPING_TOO_LARGE. @default 100_000
   */
  readonly maxRegexInputLength?: number;
}

/** The limits used when a call does not set them. */
export const defaultMappingLimits: Readonly<Required<MappingLimits>> = Object.freeze({
  timeoutMs: 250,
  maxDepth: 200,
  maxStringLength: 1_048_576,
  maxItems: 100_000,
  maxResultLength: 33_554_432,
  maxRegexInputLength: 100_000,
});

// Layer 1 of the regular-expression defences (see the module comment). Process-wide on purpose:
// the fallback protects every regular expression of the engine, not only mappings. Setting a
// flag again is harmless, and the backtrack threshold is left at V8's default (50,000): that
// count includes every failed start position, so a lower one would move ordinary scans of long
// strings in every library onto the linear engine, which is about a hundred times slower per
// character than the backtracking one on input that does not backtrack.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
setFlagsFromString('--enable-experimental-regexp-engine');

/** Whether this V8 knows the `l` flag (it could drop the experimental flag some day). */
const linearFlag = ((): string => {
  try {
    return new RegExp('a', 'l').flags.includes('l') ? 'l' : '';
  } catch {
    // No such flag in this V8: mapping regular expressions run on the backtracking engine,
    // still with the fallback (if V8 kept it), the subject length limit and the compile check.
    return '';
  }
})();

/**
 * The form of each compiled mapping regular expression that runs: the same pattern and flags
 * plus `l` when V8 can run it in linear time, else the pattern itself. Keyed by the RegExp in
 * JSONata's AST, which JSONata hands to its `RegexEngine` on every evaluation.
 */
const runnableRegExps = new WeakMap<RegExp, RegExp>();

function runnableRegExp(pattern: RegExp): RegExp {
  let runnable = runnableRegExps.get(pattern);
  if (runnable === undefined) {
    runnable = pattern;
    if (linearFlag !== '') {
      // V8's linear engine cannot run `i`: the same pattern with the case variants spelled out can.
      const folded = pattern.flags.includes('i') ? caseFoldedSource(pattern.source) : undefined;
      try {
        runnable = folded === undefined ? new RegExp(pattern.source, pattern.flags + linearFlag) : new RegExp(folded, pattern.flags.replace('i', '') + linearFlag);
      } catch {
        // "Cannot be executed in linear time" (a backreference, a lookahead, a large counted
        // repetition, `i` the rewrite left alone): it runs as written, on the backtracking engine.
      }
    }
    runnableRegExps.set(pattern, runnable);
  }
  return runnable;
}

/** A mapping's regular expression: refuses subjects over the limit, then runs as RegExp does. */
class LimitedRegExp extends RegExp {
  constructor(
    pattern: RegExp,
    private readonly state: EvaluationState,
  ) {
    super(pattern);
  }

  override exec(subject: string): RegExpExecArray | null {
    if (subject.length > this.state.maxRegexInputLength) {
      tooLarge(this.state, `a regular expression is applied to a string of ${subject.length} characters; the limit is ${this.state.maxRegexInputLength}`);
    }
    return super.exec(subject);
  }
}

/** The longest expression compiled, as the manifest validation allows (PB_EXPR_TOO_LONG). */
const maxExpressionLength = 10_000;

/** One compiled `{{ }}` expression. */
export interface CompiledExpression {
  /** The field it belongs to, as messages name it: `steps[0].with.to`. */
  readonly field: string;
  /** The JSONata source, untrimmed. */
  readonly source: string;
  /** Set when the expression is a plain path (`event.data.object.id`): read without JSONata. */
  readonly fastPath: readonly string[] | undefined;
  /** The compiled JSONata expression, with the limit hooks and safer built-ins bound. */
  readonly jsonata: jsonata.Expression;
}

/** A compiled `with` value: literals stay, templates are compiled. */
export type MappingNode =
  | { readonly kind: 'literal'; readonly value: unknown }
  | { readonly kind: 'whole'; readonly expression: CompiledExpression }
  | { readonly kind: 'text'; readonly field: string; readonly pieces: readonly (string | CompiledExpression)[] }
  | { readonly kind: 'object'; readonly entries: readonly (readonly [string, MappingNode])[] }
  | { readonly kind: 'array'; readonly items: readonly MappingNode[] };

/** A mapping compiled by `compileMapping`: evaluate it with `evaluateMapping` as often as needed. */
export interface CompiledMapping {
  /** The path given at compile time (`steps[0].with`). */
  readonly path: string;
  readonly root: MappingNode;
}

/** A condition compiled by `compileCondition`. */
export interface CompiledCondition {
  readonly path: string;
  readonly expression: CompiledExpression;
}

/**
 * Compiles a step's `with` value (or any mapping value) once. Objects and arrays are walked;
 * a string that is exactly one `{{ expr }}` (spaces around allowed) evaluates to the
 * expression's value with its type; a string with text around or between `{{ }}` evaluates to
 * a string (non-strings stringified as JSONata's `$string` does, undefined as empty); strings
 * without `{{` and all other values are literals. `path` names the value in messages (`with`,
 * `steps[2].with`); nested fields extend it (`with.to`, `with.items[0]`).
 *
 * Throws (all terminal, each message naming the field): PB_EXPR_SYNTAX for an expression that is
 * not valid JSONata (with JSONata's code and position), PB_EXPR_UNTERMINATED for a `{{` never
 * closed, PB_EXPR_TOO_LONG for an expression over 10,000 characters, PB_MAPPING_UNSAFE_REGEX for
 * a regular expression that repeats a repeated group.
 */
export function compileMapping(value: unknown, path: string): CompiledMapping {
  return { path, root: compileNode(value, path) };
}

/**
 * Compiles a condition (`if`): `{{ expr }}` or a bare JSONata expression, as
 * `conditionExpression` reads it. Same errors as `compileMapping`.
 */
export function compileCondition(text: string, path: string): CompiledCondition {
  const { expression } = conditionExpression(text);
  return { path, expression: compileExpression(expression, path) };
}

/**
 * Evaluates a compiled mapping against `input` (the document `{ event, steps: { <id>: { output,
 * status } }, vars, trigger }`). Objects and arrays are rebuilt; a whole-template field whose
 * value is undefined is left out of its object (or array, as JSONata's array constructor does).
 * Values read from `input` are returned by reference, not copied: treat input and result as
 * read-only. Results are plain JSON values: JSONata sequences become arrays, functions are
 * dropped.
 *
 * Rejects (all terminal, each message naming the field): PB_MAPPING_TIMEOUT,
 * PB_MAPPING_TOO_DEEP, PB_MAPPING_TOO_LARGE (see `MappingLimits`), PB_MAPPING_ERROR for a
 * JSONata run-time error (with its code, e.g. T2001, and position). No message quotes a value
 * from `input`: where JSONata's message would (`Unable to cast value to a number: "Jane"`), the
 * value's type stands in for it (`<string>`), and an `$error`/`$assert` text is kept only when it
 * is a string literal of the expression. Messages may give lengths and counts of values.
 */
export async function evaluateMapping(compiled: CompiledMapping, input: unknown, limits?: MappingLimits): Promise<unknown> {
  return evaluateNode(compiled.root, input, newState(limits));
}

/**
 * Evaluates a compiled condition to a boolean with JSONata's truthiness (`$boolean`): empty
 * strings, 0, null, empty arrays and objects, functions and undefined are false. Rejects as
 * `evaluateMapping`.
 */
export async function evaluateCondition(compiled: CompiledCondition, input: unknown, limits?: MappingLimits): Promise<boolean> {
  return truthy(await runExpression(compiled.expression, input, newState(limits)));
}

// ---------------------------------------------------------------------------------------------
// Compiling

function compileNode(value: unknown, field: string): MappingNode {
  if (typeof value === 'string') return compileString(value, field);
  if (Array.isArray(value)) return { kind: 'array', items: value.map((item, index) => compileNode(item, `${field}[${index}]`)) };
  if (value !== null && typeof value === 'object') {
    return {
      kind: 'object',
      entries: Object.keys(value).map((key) => [key, compileNode((value as Record<string, unknown>)[key], childPath(field, key))] as const),
    };
  }
  return { kind: 'literal', value };
}

function childPath(parent: string, key: string): string {
  return /^[A-Za-z_$][\w$-]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

function compileString(text: string, field: string): MappingNode {
  const template = parseTemplate(text);
  if (template.unterminatedAt !== undefined) {
    throw new PatchbayError('PB_EXPR_UNTERMINATED', `${field}: the \`{{\` at offset ${template.unterminatedAt} has no matching \`}}\``);
  }
  if (template.parts.length === 0) return { kind: 'literal', value: text };
  if (template.whole) return { kind: 'whole', expression: compileExpression(template.parts[0]!.expression, field) };
  const pieces: (string | CompiledExpression)[] = [];
  let at = 0;
  for (const part of template.parts) {
    const open = part.offset - 2;
    if (open > at) pieces.push(text.slice(at, open));
    pieces.push(compileExpression(part.expression, field));
    at = part.offset + part.expression.length + 2;
  }
  if (at < text.length) pieces.push(text.slice(at));
  return { kind: 'text', field, pieces };
}

/** JSONata syntax and run-time errors are plain objects with these fields. */
interface JsonataFailure {
  readonly code?: unknown;
  readonly position?: unknown;
  readonly message?: unknown;
}

/** The parts of a JSONata AST node this module reads or marks. */
interface AstNode {
  type?: string;
  value?: unknown;
  steps?: AstNode[];
  lhs?: unknown;
  rhs?: AstNode;
  [measureMark]?: 'string' | 'result';
}

/** Marks the operands whose container values must be measured before JSONata uses them whole. */
const measureMark = Symbol('patchbay.measure');

function compileExpression(source: string, field: string): CompiledExpression {
  if (source.length > maxExpressionLength) {
    throw new PatchbayError('PB_EXPR_TOO_LONG', `${field}: the expression is ${source.length} characters long; the limit is ${maxExpressionLength}`);
  }
  let expression: jsonata.Expression;
  try {
    expression = jsonata(source);
  } catch (error) {
    const failure = error as JsonataFailure;
    throw new PatchbayError('PB_EXPR_SYNTAX', `${field}: JSONata ${String(failure.code)} at position ${String(failure.position)}: ${clip(String(failure.message))}`, {
      cause: error,
    });
  }
  const ast = expression.ast() as AstNode;
  prepareAst(ast, field);
  // The hook names are symbols; `assign` binds any key, whatever its type declaration says.
  expression.assign(entryHook as unknown as string, onEntry);
  expression.assign(exitHook as unknown as string, onExit);
  for (const [name, definition] of saferBuiltins) expression.assign(name, definition);
  return { field, source, fastPath: plainPath(ast), jsonata: expression };
}

/** The names of a path made only of plain names (`event.data.id`), which JSONata reads as property access. */
function plainPath(ast: AstNode): string[] | undefined {
  if (ast.type !== 'path' || !hasOnlyKeys(ast, 2, 'type', 'steps') || ast.steps === undefined) return undefined;
  const names: string[] = [];
  for (const step of ast.steps) {
    if (step.type !== 'name' || typeof step.value !== 'string' || !hasOnlyKeys(step, 3, 'type', 'value', 'position')) return undefined;
    names.push(step.value);
  }
  return names;
}

function hasOnlyKeys(node: object, count: number, ...keys: string[]): boolean {
  const own = Object.keys(node);
  return own.length <= count && own.every((key) => keys.includes(key));
}

/**
 * Walks the AST once: refuses regular expressions that can backtrack exponentially, and marks
 * the operands of `&` (stringified whole) and of `=`, `!=`, `in` (compared whole) so the exit
 * hook measures a container before JSONata walks it.
 */
function prepareAst(root: AstNode, field: string): void {
  const seen = new Set<object>();
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const node = pending.pop();
    if (node === null || typeof node !== 'object' || seen.has(node)) continue;
    seen.add(node);
    if (Array.isArray(node)) {
      pending.push(...node);
      continue;
    }
    const ast = node as AstNode;
    if (ast.type === 'regex' && ast.value instanceof RegExp) {
      if (repeatsRepeatedGroup(ast.value.source)) {
        throw new PatchbayError(
          'PB_MAPPING_UNSAFE_REGEX',
          `${field}: the regular expression /${clip(ast.value.source)}/ repeats a group that itself repeats, which can take exponential time; rewrite it without the nested repetition`,
        );
      }
      runnableRegExp(ast.value);
    }
    if (ast.type === 'binary') {
      const mark = ast.value === '&' ? 'string' : ast.value === '=' || ast.value === '!=' || ast.value === 'in' ? 'result' : undefined;
      if (mark !== undefined) {
        for (const operand of [ast.lhs, ast.rhs]) {
          if (operand !== null && typeof operand === 'object') (operand as AstNode)[measureMark] = mark;
        }
      }
    }
    for (const key of Object.keys(ast)) {
      const child = (ast as Record<string, unknown>)[key];
      if (child !== null && typeof child === 'object' && !(child instanceof RegExp)) pending.push(child);
    }
  }
}

/**
 * True when a regular expression repeats (`*`, `+`, `{n,}`, `{n,m}` with m > 1) a group that
 * contains an unbounded repetition: `(a+)+`, `(\w*)*$`, `(?:x{2,})+`. These backtrack
 * exponentially on a near-miss, and a regular expression cannot be interrupted. Ambiguous
 * alternations such as `(a|a)*` are not detected.
 */
export function repeatsRepeatedGroup(source: string): boolean {
  // One entry per open group: whether it contains an unbounded repetition.
  const groups: boolean[] = [false];
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      for (i++; i < source.length && source[i] !== ']'; i++) if (source[i] === '\\') i++;
    } else if (c === '(') {
      groups.push(false);
    } else if (c === ')') {
      const inner = groups.length > 1 ? groups.pop()! : false;
      const after = quantifier(source, i + 1);
      if (inner && after.repeats) return true;
      if (inner || after.unbounded) groups[groups.length - 1] = true;
      i += after.length;
    } else {
      const after = quantifier(source, i);
      if (after.length > 0) {
        if (after.unbounded) groups[groups.length - 1] = true;
        i += after.length - 1;
      }
    }
  }
  return false;
}

function quantifier(source: string, at: number): { length: number; repeats: boolean; unbounded: boolean } {
  const c = source[at];
  if (c === '*' || c === '+') return { length: source[at + 1] === '?' ? 2 : 1, repeats: true, unbounded: true };
  if (c === '?') return { length: 1, repeats: false, unbounded: false };
  if (c === '{') {
    const match = /^\{(\d+)(,(\d*))?\}\??/.exec(source.slice(at, at + 24));
    if (match !== null) {
      const unbounded = match[2] !== undefined && match[3] === '';
      const max = match[2] === undefined ? Number(match[1]) : unbounded ? Infinity : Number(match[3]);
      return { length: match[0].length, repeats: max > 1, unbounded };
    }
  }
  return { length: 0, repeats: false, unbounded: false };
}

// ---------------------------------------------------------------------------------------------
// Evaluation state and hooks

const entryHook = Symbol.for('jsonata.__evaluate_entry');
const exitHook = Symbol.for('jsonata.__evaluate_exit');
/** A binding name no JSONata variable can spell (names end at whitespace). */
const stateBinding = ' patchbay evaluation state';
const stateKey = Symbol('patchbay.evaluationState');

interface EvaluationState {
  readonly timeoutMs: number;
  readonly deadline: number;
  readonly maxDepth: number;
  readonly maxStringLength: number;
  readonly maxItems: number;
  readonly maxResultLength: number;
  readonly maxRegexInputLength: number;
  readonly bindings: Record<string, unknown>;
  /** Replaces JSONata's per-evaluation RegExp constructor: the linear form of each pattern, with the subject limit. */
  readonly regexEngine: new (pattern: RegExp) => RegExp;
  /** Replaces JSONata's per-evaluation options: its range operator and `$append` refuse sequences longer than this. */
  readonly jsonataOptions: { readonly sequence: number };
  /** Replaces JSONata's per-evaluation sequence factory: sequences that refuse to grow past `maxItems`. */
  readonly createSequence: (...items: unknown[]) => unknown[];
  entries: number;
  /** When the evaluation last let the event loop run (`performance.now()`). */
  yieldedAt: number;
  field: string;
  /** Set by the first limit exceeded; every later step of the same evaluation rethrows it. */
  failure: PatchbayError | undefined;
}

/** The frame every environment of one evaluation shares (`environment.base`): JSONata's `exec_env`. */
interface BaseFrame {
  depth: number;
  options: unknown;
  createSequence: (...items: unknown[]) => unknown[];
  RegexEngine: new (pattern: RegExp) => RegExp;
  lookup(name: string): unknown;
  [stateKey]?: EvaluationState;
}

interface Frame {
  readonly base: BaseFrame;
}

function newState(limits: MappingLimits = {}): EvaluationState {
  const timeoutMs = limits.timeoutMs ?? defaultMappingLimits.timeoutMs;
  const maxItems = limits.maxItems ?? defaultMappingLimits.maxItems;
  // One push per evaluation, shared by all its sequences: path steps flatten nested arrays item
  // by item (`[1..50000].$list` pushes 50,000 × the list), long before any result is seen.
  const push = function (this: unknown[], ...items: unknown[]): number {
    if (this.length + items.length > maxItems) tooLarge(state, `a sequence grew past the limit of ${maxItems} items`);
    return Array.prototype.push.apply(this, items);
  };
  const state: EvaluationState = {
    timeoutMs,
    deadline: performance.now() + timeoutMs,
    maxDepth: limits.maxDepth ?? defaultMappingLimits.maxDepth,
    maxStringLength: limits.maxStringLength ?? defaultMappingLimits.maxStringLength,
    maxItems,
    maxResultLength: limits.maxResultLength ?? defaultMappingLimits.maxResultLength,
    maxRegexInputLength: limits.maxRegexInputLength ?? defaultMappingLimits.maxRegexInputLength,
    bindings: {},
    // JSONata calls it with `new`: returning an object from a constructor makes that the result.
    regexEngine: function (pattern: RegExp) {
      return new LimitedRegExp(runnableRegExp(pattern), state);
    } as unknown as new (pattern: RegExp) => RegExp,
    jsonataOptions: { sequence: maxItems },
    createSequence(...items: unknown[]): unknown[] {
      const sequence = [] as unknown[] & { sequence?: boolean };
      sequence.push = push;
      sequence.sequence = true;
      if (items.length === 1) sequence.push(items[0]);
      return sequence;
    },
    entries: 0,
    yieldedAt: performance.now(),
    field: '',
    failure: undefined,
  };
  state.bindings[stateBinding] = state;
  return state;
}

function stateOf(base: BaseFrame): EvaluationState {
  const found = base[stateKey];
  if (found !== undefined) return found;
  const state = base.lookup(stateBinding) as EvaluationState | undefined;
  if (state === undefined) throw new Error('a mapping expression was evaluated without its limits (evaluate it through evaluateMapping)');
  base[stateKey] = state;
  // JSONata reads `base.options` when it allocates a range or appends, makes every sequence
  // with `base.createSequence`, and every regular expression with `base.RegexEngine`: all three
  // become this evaluation's.
  base.options = state.jsonataOptions;
  base.createSequence = state.createSequence;
  base.RegexEngine = state.regexEngine;
  return state;
}

function fail(state: EvaluationState, code: Code, detail: string): never {
  state.failure = new PatchbayError(code, `${state.field}: ${detail}`);
  throw state.failure;
}

function tooLarge(state: EvaluationState, what: string): never {
  return fail(state, 'PB_MAPPING_TOO_LARGE', `${what}; make the mapping produce less, or raise the mapping limits`);
}

function onEntry(_node: unknown, _input: unknown, environment: Frame): Promise<void> | undefined {
  const base = environment.base;
  const state = base[stateKey] ?? stateOf(base);
  if (state.failure !== undefined) throw state.failure;
  if (base.depth > state.maxDepth) {
    fail(state, 'PB_MAPPING_TOO_DEEP', `the evaluation nested deeper than ${state.maxDepth} frames (a recursive function that does not end?)`);
  }
  // Reading the clock on every step would cost more than the step; 256 steps take microseconds.
  if ((++state.entries & 255) === 0) return checkClock(state);
}

/**
 * Fails a late evaluation, and lets a long one give way. JSONata awaits between steps, but on
 * values already settled, so a long evaluation holds the microtask queue: other evaluations
 * interleave with it, yet timers and network I/O of every other run would wait for it to end.
 * Returning a promise settled by `setImmediate` every few milliseconds lets them in.
 */
function checkClock(state: EvaluationState): Promise<void> | undefined {
  const now = performance.now();
  if (now > state.deadline) timedOut(state);
  if (now - state.yieldedAt < yieldEveryMs) return undefined;
  state.yieldedAt = now;
  return new Promise((resolve) => setImmediate(resolve));
}

const yieldEveryMs = 5;

function timedOut(state: EvaluationState): never {
  return fail(state, 'PB_MAPPING_TIMEOUT', `the evaluation took longer than ${state.timeoutMs} ms (an endless recursion or a loop over too much data?)`);
}

function onExit(node: AstNode, _input: unknown, environment: Frame, result: unknown): void {
  if (typeof result === 'string') {
    const state = environment.base[stateKey]!;
    if (result.length > state.maxStringLength) tooLarge(state, `a string of ${result.length} characters exceeds the limit of ${state.maxStringLength}`);
  } else if (typeof result === 'object' && result !== null) {
    const state = environment.base[stateKey]!;
    if (state.failure !== undefined) throw state.failure;
    if (Array.isArray(result) && result.length > state.maxItems) tooLarge(state, `an array of ${result.length} items exceeds the limit of ${state.maxItems}`);
    const mark = node[measureMark];
    if (mark !== undefined) {
      const budget = mark === 'string' ? state.maxStringLength : state.maxResultLength;
      if (measure(result, budget).length > budget) tooLarge(state, `a value of more than ${budget} characters is ${mark === 'string' ? 'turned into a string' : 'compared'}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Safer built-ins

/** JSONata's own definition of a built-in function: `{ _jsonata_function, implementation, signature }`. */
interface FunctionDefinition {
  readonly _jsonata_function: true;
  readonly implementation: (this: Focus, ...args: never[]) => unknown;
  readonly signature: unknown;
}

/** What JSONata passes as `this` to a built-in. */
interface Focus {
  readonly environment: Frame;
  createSequence(): unknown[];
}

const originals = (await jsonata('{"pad": $pad, "join": $join, "string": $string, "clone": $clone, "distinct": $distinct, "keys": $keys, "spread": $spread, "eval": $eval}').evaluate(
  {},
)) as Record<'pad' | 'join' | 'string' | 'clone' | 'distinct' | 'keys' | 'spread' | 'eval', FunctionDefinition>;

function saferFunction(name: keyof typeof originals, implementation: (this: Focus, ...args: never[]) => unknown): readonly [string, FunctionDefinition] {
  const original = originals[name];
  if (original?._jsonata_function !== true) throw new Error(`jsonata no longer defines $${name} as expected`);
  return [name, { _jsonata_function: true, implementation, signature: original.signature }];
}

function call(name: keyof typeof originals, focus: Focus, args: unknown[]): unknown {
  return (originals[name].implementation as (this: Focus, ...args: unknown[]) => unknown).apply(focus, args);
}

const saferBuiltins: readonly (readonly [string, FunctionDefinition])[] = [
  saferFunction('pad', function (this: Focus, text: string | undefined, width: number, fill?: string) {
    const state = this.environment.base[stateKey]!;
    const length = Math.abs(Math.trunc(width)) * Math.max(1, fill?.length ?? 1);
    // The width is left out of the message: it may come from the data.
    if (text !== undefined && length > state.maxStringLength) tooLarge(state, `$pad to a width beyond the string limit of ${state.maxStringLength}`);
    return call('pad', this, [text, width, fill]);
  }),
  saferFunction('join', function (this: Focus, texts: string[] | undefined, separator?: string) {
    const state = this.environment.base[stateKey]!;
    if (Array.isArray(texts)) {
      let length = Math.max(0, texts.length - 1) * (separator?.length ?? 0);
      for (const text of texts) length += typeof text === 'string' ? text.length : 0;
      if (length > state.maxStringLength) tooLarge(state, `$join would build a string of ${length} characters; the limit is ${state.maxStringLength}`);
    }
    return call('join', this, [texts, separator]);
  }),
  saferFunction('string', function (this: Focus, value: unknown, prettify?: boolean) {
    const state = this.environment.base[stateKey]!;
    // Pretty printing adds indentation: measure against half the budget.
    const budget = prettify === true ? state.maxStringLength / 2 : state.maxStringLength;
    if (typeof value === 'object' && value !== null && measure(value, budget).length > budget) {
      tooLarge(state, `$string of a value of more than ${state.maxStringLength} characters`);
    }
    return call('string', this, [value, prettify]);
  }),
  saferFunction('clone', function (this: Focus, value: unknown) {
    const state = this.environment.base[stateKey]!;
    if (measure(value, state.maxResultLength).length > state.maxResultLength) tooLarge(state, `cloning a value of more than ${state.maxResultLength} characters`);
    return call('clone', this, [value]);
  }),
  saferFunction('distinct', function (this: Focus, values: unknown) {
    // JSONata compares every item with every kept item: fine for small arrays, hours for 100,000.
    if (!Array.isArray(values) || values.length <= 1_000) return call('distinct', this, [values]);
    const state = this.environment.base[stateKey]!;
    if (measure(values, state.maxResultLength).length > state.maxResultLength) tooLarge(state, `$distinct of a value of more than ${state.maxResultLength} characters`);
    const result = (values as { sequence?: boolean }).sequence === true ? this.createSequence() : [];
    const seen = new Set<unknown>();
    for (const value of values) {
      const key = typeof value === 'object' && value !== null ? `\u0000${canonicalJson(value)}` : value;
      if (!seen.has(key)) {
        seen.add(key);
        result.push(value);
      }
    }
    return result;
  }),
  saferFunction('keys', function (this: Focus, value: unknown) {
    checkKeyWork(this, value, '$keys');
    return call('keys', this, [value]);
  }),
  saferFunction('spread', function (this: Focus, value: unknown) {
    checkKeyWork(this, value, '$spread');
    return call('spread', this, [value]);
  }),
  saferFunction('eval', function (this: Focus) {
    const state = this.environment.base[stateKey]!;
    return fail(state, 'PB_MAPPING_ERROR', '$eval is not available in mappings: an evaluated string escapes the checks made when a revision is compiled; write the expression itself');
  }),
];

/** `$keys` and `$spread` of an array visit every key of every item: bound that sum. */
function checkKeyWork(focus: Focus, value: unknown, name: string): void {
  if (!Array.isArray(value)) return;
  const state = focus.environment.base[stateKey]!;
  let keys = 0;
  for (const item of value) {
    if (item !== null && typeof item === 'object') keys += Object.keys(item).length;
    if (keys > state.maxItems) tooLarge(state, `${name} over more than ${state.maxItems} keys in all`);
  }
}

/** JSON with object keys sorted, so objects JSONata deems equal (any key order) have one text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(item).sort()) sorted[key] = (item as Record<string, unknown>)[key];
    return sorted;
  });
}

// ---------------------------------------------------------------------------------------------
// Evaluating

async function evaluateNode(node: MappingNode, input: unknown, state: EvaluationState): Promise<unknown> {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'whole':
      return finish(await runExpression(node.expression, input, state), node.expression.field, state);
    case 'text':
      return evaluateText(node, input, state);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, child] of node.entries) {
        const value = await evaluateNode(child, input, state);
        if (value === undefined) continue;
        if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
        else out[key] = value;
      }
      return out;
    }
    case 'array': {
      const out: unknown[] = [];
      for (const item of node.items) {
        const value = await evaluateNode(item, input, state);
        if (value !== undefined) out.push(value);
      }
      return out;
    }
  }
}

async function evaluateText(node: Extract<MappingNode, { kind: 'text' }>, input: unknown, state: EvaluationState): Promise<string> {
  let text = '';
  for (const piece of node.pieces) {
    if (typeof piece === 'string') {
      text += piece;
      continue;
    }
    const value = await runExpression(piece, input, state);
    text += stringify(value, state);
    if (text.length > state.maxStringLength) tooLarge(state, `the text built is longer than ${state.maxStringLength} characters`);
  }
  return text;
}

/** Reads a plain path, as JSONata would; `notPlain` when the data holds an array on the way (JSONata maps over it). */
const notPlain = Symbol('notPlain');

function readPath(input: unknown, names: readonly string[]): unknown {
  let value = input;
  for (const name of names) {
    if (value === null || typeof value !== 'object') return undefined;
    if (Array.isArray(value)) return notPlain;
    if (!Object.prototype.hasOwnProperty.call(value, name)) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

async function runExpression(expression: CompiledExpression, input: unknown, state: EvaluationState): Promise<unknown> {
  state.field = expression.field;
  if (expression.fastPath !== undefined && !Array.isArray(input)) {
    const value = readPath(input, expression.fastPath);
    if (value !== notPlain) return value;
  }
  if (performance.now() > state.deadline) timedOut(state);
  try {
    return await expression.jsonata.evaluate(input, state.bindings);
  } catch (error) {
    throw await mappingError(error, expression, state);
  }
}

/**
 * The PatchbayError for a failed evaluation. Its message names the field, JSONata's code and
 * position, and JSONata's message with every value it quoted from the data replaced by that
 * value's type (`Unable to cast value to a number: <string>`): messages end up in dead-letter
 * reasons and logs, where a customer's name or a field the manifest redacts must not. The
 * JSONata error is not kept as the cause either, since it holds the same values.
 */
async function mappingError(error: unknown, expression: CompiledExpression, state: EvaluationState): Promise<PatchbayError> {
  if (state.failure !== undefined) return state.failure;
  if (error instanceof PatchbayError) return error;
  const field = expression.field;
  if (error instanceof RangeError) {
    // The engine's own limits on strings, arrays and the stack, met inside a single built-in.
    // Its message is left out: some quote an argument (`Invalid count value: -5`).
    if (/call stack/i.test(error.message)) return new PatchbayError('PB_MAPPING_TOO_DEEP', `${field}: the evaluation ran out of stack`);
    return new PatchbayError('PB_MAPPING_TOO_LARGE', `${field}: the evaluation built a value too large for the runtime`);
  }
  const failure = (error ?? {}) as JsonataFailure;
  const code = typeof failure.code === 'string' && /^[A-Z]\d{4}$/.test(failure.code) ? failure.code : undefined;
  if (code === undefined) {
    // Not one of JSONata's errors (a TypeError inside a built-in, say): its text is anyone's.
    const kind = error instanceof Error ? error.name : typeof error;
    return new PatchbayError('PB_MAPPING_ERROR', `${field}: the evaluation failed with ${kind} (its message is not shown: it may quote the data)`);
  }
  const where = `JSONata ${code} at position ${typeof failure.position === 'number' ? failure.position : '?'}`;
  if (code === 'D2014' || code === 'D2015') {
    return new PatchbayError('PB_MAPPING_TOO_LARGE', `${field}: ${where}: a sequence longer than ${state.maxItems} items`);
  }
  const message = await messageWithoutData(error as Record<string, unknown>, expression.source);
  return new PatchbayError('PB_MAPPING_ERROR', `${field}: ${where}: ${message === undefined ? 'JSONata gave no message for this code' : clip(message)}`);
}

/** Fields of a JSONata error that its message templates may insert and that never come from the data. */
const jsonataSignatureFields = new Set(['code', 'position', 'index', 'type']);
/** Fields that come from the expression when its source holds them (an operator, a function name, an `$error` text). */
const jsonataExpressionFields = new Set(['token', 'functionName', 'message']);

/**
 * JSONata's message for `failure`, rebuilt by JSONata's own templates with each value from the
 * data stood in for by its type. JSONata inserts an error's fields into its code's template
 * (`{{value}}` as JSON, `{{{message}}}` as is): a copy of the error whose `value`, `value2`,
 * `exp`… are markers goes through the same templates (by failing inside a tiny expression), and
 * the markers then become `<string>`, `<number>`…. An operator or function name, and the text
 * of `$error`/`$assert`, are kept when the expression's source holds them (they come from the
 * manifest then); otherwise they are replaced too. Undefined for a code JSONata has no template
 * for (its message would be whatever the thrower wrote).
 */
async function messageWithoutData(failure: Record<string, unknown>, source: string): Promise<string | undefined> {
  const standIns = new Map<string, string>();
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(failure)) {
    if (key === 'stack') continue;
    const value = failure[key];
    if (jsonataSignatureFields.has(key) && (typeof value === 'string' || typeof value === 'number')) {
      copy[key] = value;
    } else if (jsonataExpressionFields.has(key) && typeof value === 'string' && inSource(key, value, source)) {
      copy[key] = value;
    } else if (key !== 'message') {
      const marker = `\uE000${standIns.size}\uE000`;
      standIns.set(marker, `<${typeOf(value)}>`);
      copy[key] = marker;
    } else if (failure.code === 'D3137' || failure.code === 'D3141') {
      // `$error(text)` and `$assert(cond, text)` make the text the whole message.
      copy.message = '<a message built from the data>';
    }
  }
  let populated: unknown;
  try {
    await templateRunner.evaluate(undefined, {
      fail: () => {
        throw copy;
      },
    });
  } catch (thrown) {
    populated = thrown === copy ? copy.message : undefined;
  }
  if (typeof populated !== 'string') return undefined;
  let message = populated;
  for (const [marker, standIn] of standIns) message = message.split(`"${marker}"`).join(standIn).split(marker).join(standIn);
  return message;
}

/**
 * Whether the expression's source holds `value`: an operator or function name anywhere (they are
 * its tokens), a message only as a whole string literal (`$error('no customer')`), since a short
 * text from the data could occur anywhere in the source by chance.
 */
function inSource(key: string, value: string, source: string): boolean {
  if (value === '') return false;
  if (key !== 'message') return source.includes(value);
  return source.includes(`'${value}'`) || source.includes(`"${value}"`);
}

/** Fails with the error it is given, so JSONata writes that error's message from its template. */
const templateRunner = jsonata('$fail()');

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (isFunction(value)) return 'function';
  return typeof value;
}

/** A whole-template field's value: measured, then made plain JSON. */
function finish(value: unknown, field: string, state: EvaluationState): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? undefined : value;
  const measured = measure(value, state.maxResultLength);
  if (measured.length > state.maxResultLength) {
    state.field = field;
    tooLarge(state, `the value is more than ${state.maxResultLength} characters long as JSON`);
  }
  return measured.plain ? value : toPlain(value);
}

/** A value as JSONata's `$string` writes it, with undefined as the empty string. */
function stringify(value: unknown, state: EvaluationState): string {
  if (typeof value === 'string') return value;
  if (value === undefined || isFunction(value)) return '';
  if (typeof value === 'object' && value !== null && measure(value, state.maxStringLength).length > state.maxStringLength) {
    tooLarge(state, `a value of more than ${state.maxStringLength} characters is put into text`);
  }
  return JSON.stringify(value, jsonataNumbers) ?? '';
}

/** JSONata prints non-integers with 15 significant digits (`0.1 + 0.2` is `0.3`) and functions as "". */
function jsonataNumbers(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isInteger(value) && Number.isFinite(value)) return Number(value.toPrecision(15));
  return isFunction(value) ? '' : value;
}

function isFunction(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (value === null || typeof value !== 'object') return false;
  const flags = value as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
  return flags._jsonata_function === true || flags._jsonata_lambda === true;
}

/**
 * The approximate JSON length of a value (stopping soon after `budget`), counting a value held
 * in many places once per place, and whether it is plain JSON (no JSONata sequence flags,
 * functions or undefined items). Iterative: a deeply nested value cannot overflow the stack.
 */
function measure(root: unknown, budget: number): { length: number; plain: boolean } {
  let length = 0;
  let plain = true;
  const pending: unknown[] = [root];
  while (pending.length > 0 && length <= budget) {
    const value = pending.pop();
    if (typeof value === 'string') length += value.length + 2;
    else if (typeof value === 'number') length += 8;
    else if (typeof value === 'boolean' || value === null) length += 5;
    else if (value === undefined || isFunction(value)) plain = false;
    else if (Array.isArray(value)) {
      length += 2 + value.length;
      // JSONata marks its sequences (and only them) with extra properties beside `sequence`.
      if ((value as { sequence?: boolean }).sequence === true) plain = false;
      for (let i = 0; i < value.length; i++) pending.push(value[i]);
    } else if (typeof value === 'object') {
      length += 2;
      for (const key of Object.keys(value)) {
        length += key.length + 4;
        pending.push((value as Record<string, unknown>)[key]);
      }
    }
  }
  return { length, plain };
}

/** A copy holding only JSON: sequences become arrays, functions and undefined items are dropped. Iterative. */
function toPlain(root: unknown): unknown {
  const holder: unknown[] = [];
  const pending: [unknown, unknown[] | Record<string, unknown>, string | undefined][] = [[root, holder, undefined]];
  while (pending.length > 0) {
    const [value, into, key] = pending.pop()!;
    if (value === undefined || isFunction(value)) continue;
    let copy: unknown = value;
    if (Array.isArray(value)) copy = [];
    else if (value !== null && typeof value === 'object') copy = {};
    if (key === undefined) (into as unknown[]).push(copy);
    else Object.defineProperty(into, key, { value: copy, enumerable: true, writable: true, configurable: true });
    if (Array.isArray(value)) {
      // Pushed in reverse so items are copied, and appended, in order.
      for (let i = value.length - 1; i >= 0; i--) pending.push([value[i], copy as unknown[], undefined]);
    } else if (copy !== value) {
      const keys = Object.keys(value as object);
      for (let i = keys.length - 1; i >= 0; i--) pending.push([(value as Record<string, unknown>)[keys[i]!], copy as Record<string, unknown>, keys[i]]);
    }
  }
  return holder[0];
}

/** JSONata's `$boolean`, with undefined as false. */
function truthy(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.length === 1 ? truthy(value[0]) : value.some((item) => truthy(item));
  if (typeof value === 'string') return value.length > 0;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (typeof value === 'boolean') return value;
  if (isFunction(value)) return false;
  return typeof value === 'object' && Object.keys(value).length > 0;
}

/** Keeps quoted parser messages and values short. */
function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
