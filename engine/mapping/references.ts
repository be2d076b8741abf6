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
  expression?: AstNode;
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
    if (error instanceof RangeError) {
      return { ok: false, offset: 0, message: 'expression is nested too deeply to parse; split it into smaller parts' };
    }
    const e = error as { position?: number; message?: string; code?: string };
    const offset = Math.max(0, Math.min(source.length, (e.position ?? 1) - 1));
    return { ok: false, offset, message: (e.message ?? String(error)).replace(/\s+/g, ' ') };
  }
  const references: InputReference[] = [];
  walk(ast, true, source, references);
  references.sort((a, b) => (a.offsets[0] ?? 0) - (b.offsets[0] ?? 0));
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

// Iterative on purpose: an expression of thousands of chained operators would overflow the
// stack of a recursive walk (and the parser accepts such expressions).
function walk(start: AstNode, startRoot: boolean, source: string, out: InputReference[]): void {
  const stack: [AstNode | undefined, boolean][] = [[start, startRoot]];
  const push = (node: AstNode | undefined, root: boolean) => {
    if (node && typeof node === 'object') stack.push([node, root]);
  };
  while (stack.length > 0) {
    const [node, root] = stack.pop()!;
    if (!node) continue;
    // Any node can carry filters (`[1, 2][$ > $$.vars.min]`); they run relative to each item.
    for (const predicate of node.predicate ?? []) push(predicate.expr, false);
    if (node.type !== 'path') for (const stage of node.stages ?? []) push(stage.expr, false);
    switch (node.type) {
      case 'path': {
        const steps = node.steps ?? [];
        // `$$.x` reads the root from anywhere; `$.x` reads the context, which is the root here.
        const first = steps[0];
        const rootVariable = first?.type === 'variable' && (first.value === '$' || (first.value === '' && root));
        const from = rootVariable ? 1 : 0;
        if ((root || rootVariable) && steps[from]?.type === 'name') {
          const names: string[] = [];
          const offsets: number[] = [];
          // Names up to the first step that is not a plain name: a block or a function call
          // changes the shape of what follows.
          for (const step of steps.slice(from)) {
            if (step.type !== 'name') break;
            names.push(String(step.value));
            offsets.push(nameStart(step, source));
          }
          out.push({ names, offsets });
        }
        steps.forEach((step, i) => {
          if (step.type !== 'name' && step.type !== 'variable') push(step, i === 0 ? root : false);
          for (const stage of step.stages ?? []) push(stage.expr, false);
          for (const predicate of step.predicate ?? []) push(predicate.expr, false);
        });
        break;
      }
      case 'name':
        if (root) out.push({ names: [String(node.value)], offsets: [nameStart(node, source)] });
        break;
      case 'function':
      case 'partial':
        for (const arg of node.arguments ?? []) push(arg, root);
        if (node.procedure?.type !== 'variable') push(node.procedure, root);
        break;
      case 'lambda':
        // JSONata evaluates a lambda's body in the context where the lambda was written (the
        // arguments arrive as variables), so its paths read what the enclosing expression reads.
        push(node.body, root);
        break;
      case 'binary':
      case 'apply':
        push(node.lhs as AstNode, root);
        push(node.rhs, root);
        break;
      case 'bind':
        push(node.rhs, root);
        break;
      case 'condition':
        push(node.condition, root);
        push(node.then, root);
        push(node.else, root);
        break;
      case 'block':
        for (const e of node.expressions ?? []) push(e, root);
        break;
      case 'unary':
        if (node.value === '[') for (const e of node.expressions ?? []) push(e, root);
        else if (node.value === '{') for (const pair of (node.lhs as AstNode[][]) ?? []) for (const e of pair) push(e, root);
        else push(node.expression ?? node.expr, root);
        break;
      case 'filter':
        push(node.expr, false);
        break;
      case 'sort':
        for (const term of node.terms ?? []) push(term.expression, false);
        break;
      case 'transform':
        push(node.pattern, false);
        push(node.update, false);
        push(node.delete, false);
        break;
      default:
        break;
    }
  }
}
