import { PatchbayError } from '../../diag/errors.js';

/**
 * Decoding a delivery's body into text and JSON with refusals that locate the problem (byte
 * offset, line and column) and never quote the body: a webhook body may hold personal data.
 */

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Decodes `bytes` as strict UTF-8 (a leading byte order mark is dropped). Raises
 * PB_WEBHOOK_BAD_BODY naming the byte offset of the first invalid sequence.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch (error) {
    throw new PatchbayError('PB_WEBHOOK_BAD_BODY', `the body is not valid UTF-8 (first invalid byte at offset ${invalidUtf8Offset(bytes)})`, { cause: error });
  }
}

/** The offset of the first byte that does not start or continue a valid UTF-8 sequence (the length when all are valid). */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index] ?? 0;
    let length: number;
    let min = 0x80;
    let max = 0xbf;
    if (lead < 0x80) {
      index += 1;
      continue;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) min = 0xa0;
      if (lead === 0xed) max = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) min = 0x90;
      if (lead === 0xf4) max = 0x8f;
    } else {
      return index;
    }
    for (let k = 1; k < length; k += 1) {
      const next = bytes[index + k];
      const low = k === 1 ? min : 0x80;
      const high = k === 1 ? max : 0xbf;
      if (next === undefined || next < low || next > high) return index;
    }
    index += length;
  }
  return bytes.length;
}

/**
 * Parses JSON text. Raises PB_WEBHOOK_BAD_BODY with the line and column (1-based, in characters)
 * of the first syntax error and its character offset, found by a small scanner: JSON.parse's own
 * message quotes the body on recent Node versions and gives no position on others.
 */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // JSON.parse's message quotes the body on Node 22+; the scanner below locates the error
    // without it, so the native error is deliberately not kept as the cause.
    const offset = jsonErrorOffset(text);
    const { line, column } = lineColumnOf(text, offset);
    const where = offset >= text.length ? 'the body ends early' : `at line ${line}, column ${column}`;
    throw new PatchbayError('PB_WEBHOOK_BAD_BODY', `the body is not valid JSON: ${where} (offset ${offset})`);
  }
}

/** 1-based line and column of a character offset. */
export function lineColumnOf(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let index = 0; index < offset && index < text.length; index += 1) {
    if (text.charCodeAt(index) === 0x0a) {
      line += 1;
      lineStart = index + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const whitespace = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * The offset of the first JSON syntax error in `text` (RFC 8259), or `text.length` when the text
 * ends early. Iterative (a stack of open containers), so deep nesting cannot overflow. Only called
 * after JSON.parse failed; for valid text it returns -1.
 */
export function jsonErrorOffset(text: string): number {
  let index = 0;
  const stack: ('{' | '[')[] = [];
  const skip = (): void => {
    while (index < text.length && whitespace.has(text.charCodeAt(index))) index += 1;
  };
  const literal = (word: string): boolean => {
    for (let k = 0; k < word.length; k += 1) {
      if (text[index + k] !== word[k]) {
        index += k;
        return false;
      }
    }
    index += word.length;
    return true;
  };
  const string = (): boolean => {
    index += 1;
    while (index < text.length) {
      const code = text.charCodeAt(index);
      if (code === 0x22) {
        index += 1;
        return true;
      }
      if (code < 0x20) return false;
      if (code === 0x5c) {
        const escape = text[index + 1];
        if (escape === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(index + 2, index + 6))) {
            index += 2;
            while (index < text.length && /[0-9a-fA-F]/.test(text[index] ?? '')) index += 1;
            return false;
          }
          index += 6;
          continue;
        }
        if (escape === undefined || !'"\\/bfnrt'.includes(escape)) {
          index += 1;
          return false;
        }
        index += 2;
        continue;
      }
      index += 1;
    }
    return false;
  };
  const number = (): boolean => {
    const match = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(index, index + 1024));
    if (match === null || match[0] === '' || match[0] === '-') return false;
    index += match[0].length;
    const next = text[index];
    return next === undefined || !/[0-9.eE+-]/.test(next);
  };
  // `key` parses `"name" :` inside an object; the loop alternates between expecting a value and
  // what may follow one, with the open containers on `stack`.
  const key = (): boolean => {
    skip();
    if (text[index] !== '"' || !string()) return false;
    skip();
    if (text[index] !== ':') return false;
    index += 1;
    return true;
  };
  let expectValue = true;
  for (;;) {
    skip();
    const char = text[index];
    if (expectValue) {
      if (char === '{' || char === '[') {
        stack.push(char);
        index += 1;
        skip();
        if (text[index] === (char === '{' ? '}' : ']')) {
          stack.pop();
          index += 1;
          expectValue = false;
        } else if (char === '{' && !key()) {
          return index;
        }
        continue;
      }
      let ok: boolean;
      if (char === '"') ok = string();
      else if (char === 't') ok = literal('true');
      else if (char === 'f') ok = literal('false');
      else if (char === 'n') ok = literal('null');
      else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) ok = number();
      else ok = false;
      if (!ok) return index;
      expectValue = false;
      continue;
    }
    const open = stack[stack.length - 1];
    if (open === undefined) return index < text.length ? index : -1;
    if (char === ',') {
      index += 1;
      if (open === '{' && !key()) return index;
      expectValue = true;
    } else if ((open === '{' && char === '}') || (open === '[' && char === ']')) {
      stack.pop();
      index += 1;
    } else {
      return index;
    }
  }
}
