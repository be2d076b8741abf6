import jsonata from 'jsonata';

/** A path read from the evaluation input, like `event.data.object.amount`. */
export interface InputReference {
  /** The leading names of the path, up to the first step that is not a plain name. */
  readonly names: readonly string[];
  /** Offset in the expression of each name's first character. */
  readonly offsets: readonly number[];
}

export interface CompiledExpression {
  readonly ok: true;
  readonly references: readonly InputReference[];
}

export interface ExpressionSyntaxError {
  readonly ok: false;
  /** Offset in the expression where the parser stopped. */
  readonly offset: number;
  readonly message: string;
}

interface AstNode {
  type: string;
  value?: unknown;
  position?: number;
  steps?: AstNode[];
  stages?: AstNode[];
  predicate?: AstNode[];
  expr?: AstNode;
  arguments?: AstNode[];
  procedure?: AstNode;
  lhs?: AstNode | AstNode[][];
  rhs?: AstNode;
  condition?: AstNode;
  then?: AstNode;
  else?: AstNode;
  expressions?: AstNode[];
  body?: AstNode;
  group?: { lhs: AstNode[][] };
  pattern?: AstNode;
  update?: AstNode;
  delete?: AstNode;
  terms?: { expression: AstNode }[];
}

const cache = new Map<string, CompiledExpression | ExpressionSyntaxError>();
const cacheLimit = 10_000;

/**
 * Compiles a JSONata expression and lists the input paths it reads from the root context
 * (`event…`, `steps…`, `vars…`). Paths inside predicates, lambdas and after a context change
 * are relative to something else and are not listed. Never throws for a bad expression.
 */
export function analyseExpression(source: string): CompiledExpression | ExpressionSyntaxError {
  // Manifests repeat expressions (`{{ event.id }}`); parsing is most of the cost.
  const hit = cache.get(source);
  if (hit) return hit;
  const result = analyseUncached(source);
  if (cache.size >= cacheLimit) cache.clear();
  cache.set(source, result);
  return result;
}

function analyseUncached(source: string): CompiledExpression | ExpressionSyntaxError {
  let ast: AstNode;
  try {
    ast = jsonata(source).ast() as AstNode;
  } catch (error) {
    const e = error as { position?: number; message?: string; code?: string };
    const offset = Math.max(0, Math.min(source.length, (e.position ?? 1) - 1));
    return { ok: false, offset, message: (e.message ?? String(error)).replace(/\s+/g, ' ') };
  }
  const references: InputReference[] = [];
  walk(ast, true, source, references);
  // The parser reuses one node for both sides of `a ?: b` and `a ?? b`: list each path once.
  const seen = new Set<string>();
  const unique = references.filter((r) => {
    const key = `${r.offsets[0]}:${r.names.join('.')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { ok: true, references: unique };
}

function nameStart(node: AstNode, source: string): number {
  const value = String(node.value);
  const end = node.position ?? value.length;
  const quoted = source[end - 1] === '`' || source[end - 1] === '"' || source[end - 1] === "'";
  return Math.max(0, end - value.length - (quoted ? 2 : 0));
}

function walk(node: AstNode | undefined, root: boolean, source: string, out: InputReference[]): void {
  if (!node || typeof node !== 'object') return;
  switch (node.type) {
    case 'path': {
      const steps = node.steps ?? [];
      if (root && steps[0]?.type === 'name') {
        const names: string[] = [];
        const offsets: number[] = [];
        for (const step of steps) {
          if (step.type !== 'name') break;
          names.push(String(step.value));
          offsets.push(nameStart(step, source));
          // A filter changes what the following names apply to only by selection, not shape,
          // but a non-name step (a block, a function) does: stop there.
        }
        out.push({ names, offsets });
      }
      steps.forEach((step, i) => {
        if (i === 0) {
          if (step.type !== 'name') walk(step, root, source, out);
        } else if (step.type !== 'name') {
          walk(step, false, source, out);
        }
        for (const stage of step.stages ?? []) walk(stage.expr, false, source, out);
        for (const predicate of step.predicate ?? []) walk(predicate.expr, false, source, out);
      });
      return;
    }
    case 'name':
      if (root) out.push({ names: [String(node.value)], offsets: [nameStart(node, source)] });
      return;
    case 'function':
    case 'partial':
      for (const arg of node.arguments ?? []) walk(arg, root, source, out);
      if (node.procedure?.type !== 'variable') walk(node.procedure, root, source, out);
      return;
    case 'lambda':
      // The body runs with the lambda's arguments as its context: not the root.
      return;
    case 'binary':
      walk(node.lhs as AstNode, root, source, out);
      walk(node.rhs, root, source, out);
      return;
    case 'bind':
      walk(node.rhs, root, source, out);
      return;
    case 'apply':
      walk(node.lhs as AstNode, root, source, out);
      walk(node.rhs, root, source, out);
      return;
    case 'condition':
      walk(node.condition, root, source, out);
      walk(node.then, root, source, out);
      walk(node.else, root, source, out);
      return;
    case 'block':
      for (const e of node.expressions ?? []) walk(e, root, source, out);
      return;
    case 'unary':
      if (node.value === '[') for (const e of node.expressions ?? []) walk(e, root, source, out);
      else if (node.value === '{') for (const pair of (node.lhs as AstNode[][]) ?? []) for (const e of pair) walk(e, root, source, out);
      else walk(node.expr, root, source, out);
      return;
    case 'filter':
      walk(node.expr, false, source, out);
      return;
    case 'sort':
      for (const term of node.terms ?? []) walk(term.expression, false, source, out);
      return;
    case 'transform':
      walk(node.pattern, false, source, out);
      walk(node.update, false, source, out);
      walk(node.delete, false, source, out);
      return;
    default:
      return;
  }
}
