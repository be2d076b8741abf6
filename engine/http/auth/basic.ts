import { PatchbayError } from '../../diag/errors.js';
import type { OutboundRequest } from '../request.js';
import { withHeader, type Signer } from './signer.js';

export interface BasicOptions {
  readonly username: string;
  readonly password: string;
}

// RFC 7617 §2: neither part may hold control characters, and the user-id may not hold a colon
// (the first colon separates it from the password, which may hold colons).
const controlCharacter = /[\u0000-\u001f\u007f]/;

/**
 * HTTP basic authentication (RFC 7617), with the UTF-8 charset: `Authorization: Basic
 * base64(utf8(username ":" password))`. Throws PB_AUTH_BAD_SETTINGS when the user name holds a
 * colon or either part holds a control character (the message never holds the values).
 */
export function createBasicSigner(options: BasicOptions): Signer {
  const { username, password } = options;
  if (username.includes(':')) {
    throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'a basic-auth user name cannot contain ":" (RFC 7617): the server would split it there');
  }
  if (controlCharacter.test(username) || controlCharacter.test(password)) {
    throw new PatchbayError('PB_AUTH_BAD_SETTINGS', 'a basic-auth user name or password contains a control character (often a stray newline in the secret)');
  }
  const value = `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  return { sign: async (request: OutboundRequest) => withHeader(request, 'authorization', value) };
}
