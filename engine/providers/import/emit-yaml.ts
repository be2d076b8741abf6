import { Document, isMap, isScalar, isSeq, Scalar, type Node } from 'yaml';

/** Collections whose one-line form is at most this long are written inline (`{ type: string }`). */
const maxFlowChars = 100;

/**
 * Writes a provider document as YAML in the catalogue's style: `comments` as `#` lines first,
 * then block mappings, with small collections inline and long text on one line (no folding).
 * Deterministic for the same value.
 */
export function toProviderYaml(value: unknown, comments: readonly string[]): string {
  const document = new Document(value, { version: '1.2' });
  if (document.contents) inlineSmall(document.contents as Node, 0);
  const body = document.toString({ lineWidth: 0, minContentWidth: 0, flowCollectionPadding: true, indentSeq: true });
  const header = comments.map((line) => `# ${line.replace(/[\r\n]+/g, ' ')}`.trimEnd()).join('\n');
  return header === '' ? body : `${header}\n${body}`;
}

/**
 * Marks collections short enough to read on one line as flow style; returns the one-line length
 * of `node` (an estimate: JSON-like, which is what flow YAML looks like). Mappings down to the
 * operations (`spec.operations.<name>`) stay in block style so the outline reads like the
 * hand-written providers; lists may be inline anywhere.
 */
function inlineSmall(node: Node, depth: number): number {
  if (isMap(node)) {
    let length = 2;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      // Patchbay reads YAML with merge keys on: a property named `<<` must stay a name.
      if (isScalar(pair.key) && key === '<<') pair.key.type = Scalar.QUOTE_DOUBLE;
      const valueLength = pair.value ? inlineSmall(pair.value as Node, depth + 1) : 4;
      length += key.length + 2 + valueLength + 2;
    }
    if (depth >= 4 && length <= maxFlowChars) node.flow = true;
    return length;
  }
  if (isSeq(node)) {
    let length = 2;
    for (const item of node.items) length += inlineSmall(item as Node, depth + 1) + 2;
    // A list of names (`query`, `required`) reads well on one line however long.
    if (depth >= 1 && (length <= maxFlowChars || node.items.every((item) => isScalar(item)))) node.flow = true;
    return length;
  }
  if (isScalar(node)) return JSON.stringify(node.value ?? null).length;
  return 4;
}
