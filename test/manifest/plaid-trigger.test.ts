import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateManifests } from '../../engine/manifest/validate.js';
import { makeTempDir, writeFiles } from '../support/cli.js';

// Plaid signs webhooks with keys fetched with the connection's own credentials: its webhook
// trigger needs no webhookSecrets, while every secret-based scheme still does.

function integration(provider: string, secrets: boolean): string {
  return `apiVersion: patchbay/v1
kind: Integration
metadata:
  name: ${provider}-hooks
spec:
  connections:
    source:
      provider: ${provider}
      auth: { type: ${provider === 'plaid' ? 'apiKey, key' : 'bearer, token'}: { env: SOURCE_KEY } }
${provider === 'plaid' ? '      variables: { environment: sandbox, clientId: 5f1e0c0ffee0c0ffee0c0ffe }\n' : ''}${secrets ? '      webhookSecrets: [ { env: SOURCE_WEBHOOK_SECRET } ]\n' : ''}  trigger:
    webhook: { connection: source, events: [ "*" ] }
  steps:
    - id: noop
      call: http.request
      with: { method: GET, path: ping }
`;
}

describe('webhook secrets of a trigger', () => {
  it('are not required for Plaid, and still are for Stripe', async () => {
    const dir = makeTempDir('patchbay-plaid-check-');
    writeFiles(dir, { 'integrations/plaid.yaml': integration('plaid', false), 'integrations/stripe.yaml': integration('stripe', false) });
    const result = await validateManifests({ paths: [join(dir, 'integrations')], providerDirs: [], cwd: dir });
    const noSecret = result.diagnostics.filter((diagnostic) => diagnostic.code === 'PB_TRIGGER_NO_SECRET').map((diagnostic) => diagnostic.file);
    expect(noSecret).toEqual(['integrations/stripe.yaml']);
  });
});
