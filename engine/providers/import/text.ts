import { findCredentials, maskCredentials } from '../../lib/credentials.js';

/**
 * Makes a description from an OpenAPI document fit a provider definition: HTML tags and
 * Markdown link targets removed, whitespace (newlines included) collapsed to single spaces, and
 * cut at a sentence or word boundary to at most `maxChars` characters with an ellipsis. Returns
 * undefined for empty text or `maxChars` 0. (Credential-looking text is removed from the whole
 * generated document at once, by {@link redactCredentials}.)
 */
export function shortenText(text: unknown, maxChars: number): string | undefined {
  if (typeof text !== 'string' || maxChars <= 0) return undefined;
  const flat = stripHtml(text).replace(/\s+/g, ' ').trim();
  if (flat === '') return undefined;
  if (flat.length <= maxChars) return flat;
  const cut = flat.slice(0, maxChars - 1);
  // Prefer ending at a sentence, then at a word, as long as that keeps most of the text.
  const sentence = cut.search(/[.!?](?=\s)[^.!?]*$/);
  if (sentence >= maxChars * 0.5) return cut.slice(0, sentence + 1);
  const space = cut.lastIndexOf(' ');
  return `${space >= maxChars * 0.5 ? cut.slice(0, space) : cut}…`;
}

// Descriptions are Markdown, which may hold HTML (Stripe's are all HTML). Only known tags are
// removed (inline ones without a trace, block ones leaving a space): `<api_key>` or `<id>` in a
// sentence are placeholders, not markup.
const htmlTag = /<\/?(?:p|a|code|pre|strong|em|b|i|u|br|hr|ul|ol|li|span|div|h[1-6]|table|thead|tbody|tr|td|th|blockquote|details|summary|sup|sub)(?:\s[^<>]*)?\/?>/gi;
const entities: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&nbsp;': ' ' };

const inlineTags = new Set(['a', 'code', 'strong', 'em', 'b', 'i', 'u', 'span', 'sup', 'sub']);

// Markdown links keep their text: the URLs are most of a description's length and the
// operation's `docsUrl` links the documentation anyway.
const markdownLink = /\[([^\[\]\n]{1,200})\]\((?:https?:\/\/|\/|#)[^()\s]{0,500}\)/g;

function stripHtml(text: string): string {
  let out = text.includes('](') ? text.replace(markdownLink, '$1') : text;
  if (!out.includes('<') && !out.includes('&')) return out;
  out = out.replace(htmlTag, (tag) => (inlineTags.has(/^<\/?([a-z0-9]+)/i.exec(tag)?.[1]?.toLowerCase() ?? '') ? '' : ' '));
  return out.replace(/&(?:amp|lt|gt|quot|#39|nbsp);/g, (entity) => entities[entity] ?? entity);
}

/**
 * The first sentence of a description (up to the first `. ` or line end), shortened to
 * `maxChars`; undefined when there is no text.
 */
export function firstSentence(text: unknown, maxChars: number): string | undefined {
  if (typeof text !== 'string') return undefined;
  const firstLine = stripHtml(text).trim().split(/\n\s*\n/)[0] ?? '';
  const match = /^(.*?[.!?])(\s|$)/s.exec(firstLine);
  return shortenText(match ? match[1] : firstLine, maxChars);
}

/**
 * Replaces every credential-looking part of a generated document (the formats `patchbay
 * validate` refuses, searched without needing a secret-named key) with `REDACTED`: a provider
 * file is committed, and validation refuses one that holds a key, even an example key quoted
 * from the provider's documentation. `REDACTED` has no YAML meaning in any scalar style, so the
 * document stays well-formed (the caller validates it again anyway). Returns the text and how
 * many parts were replaced.
 */
export function redactCredentials(text: string): { text: string; redacted: number } {
  const findings = findCredentials(text, { anywhere: true });
  if (findings.length === 0) return { text, redacted: 0 };
  let out = '';
  let at = 0;
  for (const finding of findings) {
    out += `${text.slice(at, finding.start)}REDACTED`;
    at = finding.end;
  }
  return { text: out + text.slice(at), redacted: findings.length };
}

/** True for a name usable as a `{placeholder}` and as an expression field: `[A-Za-z_][A-Za-z0-9_]*`. */
export function isIdentifier(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

/**
 * Turns any text into an identifier (`on-behalf-of` → `on_behalf_of`, `2fa` → `_2fa`): every
 * run of other characters becomes one underscore.
 */
export function toIdentifier(name: string): string {
  const replaced = name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+(?=[A-Za-z])/, '').replace(/_+$/, '');
  if (replaced === '') return '_';
  return /^[0-9]/.test(replaced) ? `_${replaced}` : replaced;
}

/** Escapes the characters that have a meaning in a regular expression (valid with the `u` flag too). */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Makes a value quoted from the description (a version, a tag, a server URL, an external
 * `$ref`, a parser's reason) fit for an error message: the query string of a URL becomes `?…`
 * and credential-looking text is masked. JSON pointers and paths of the document are not values
 * and are quoted as written: masking would cut pointers such as
 * `/paths/~1v1~1charges/post/requestBody` that happen to look like opaque tokens.
 */
export function maskQuoted(text: string): string {
  return maskCredentials(text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s?#"]*)\?[^\s#"]*/gi, '$1?…'));
}
