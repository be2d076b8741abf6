import { describe, expect, it } from 'vitest';
import { createSigner, type AuthSchemeSettings, type ResolvedAuth } from '../../../engine/http/auth/create-signer.js';
import type { ProviderAuthScheme } from '../../../engine/types/provider.generated.js';

describe('createSigner', () => {
  it("accepts a provider's declared scheme as it is loaded", () => {
    const scheme: ProviderAuthScheme = { type: 'bearer', description: 'a personal access token', header: 'X-Token', prefix: '' };
    // Compile-time check: the generated type is assignable to the settings createSigner reads.
    const settings: AuthSchemeSettings = scheme;
    expect(settings.header).toBe('X-Token');
  });

  it('gives only renewable credentials an invalidate()', () => {
    const renewable: [AuthSchemeSettings, ResolvedAuth][] = [
      [{ type: 'oauth2', tokenUrl: 'https://auth.example/token' }, { type: 'oauth2', grant: 'clientCredentials', clientId: 'id', clientSecret: 'not-a-real-secret' }],
      [{ type: 'jwt' }, { type: 'jwt', algorithm: 'HS256', privateKey: 'not-a-real-hmac-secret', issuer: 'me' }],
    ];
    const fixed: [AuthSchemeSettings, ResolvedAuth][] = [
      [{ type: 'none' }, { type: 'none' }],
      [{ type: 'bearer' }, { type: 'bearer', token: 'not-a-real-token' }],
      [{ type: 'basic' }, { type: 'basic', username: 'u', password: 'not-a-real-password' }],
      [{ type: 'apiKey', name: 'x-api-key' }, { type: 'apiKey', key: 'not-a-real-key' }],
      [{ type: 'awsSigV4', service: 'sqs' }, { type: 'awsSigV4', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-real-key', region: 'eu-west-1' }],
    ];
    for (const [scheme, auth] of renewable) expect(typeof createSigner(scheme, auth).invalidate).toBe('function');
    for (const [scheme, auth] of fixed) expect(createSigner(scheme, auth).invalidate).toBeUndefined();
  });
});
