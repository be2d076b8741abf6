import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { validateManifests } from '../engine/manifest/validate.js';
import { readCatalogueSnapshot } from '../engine/providers/catalogue.js';

const root = join(import.meta.dirname, '..');
const yamlFiles = (dir: string) => readdirSync(join(root, dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(dir, f));

describe('bundled examples and catalogue', () => {
  it('every manifest starts with the yaml-language-server $schema hint for its kind', () => {
    const expected: Record<string, string> = {
      integrations: '# yaml-language-server: $schema=../schemas/integration.schema.json',
      providers: '# yaml-language-server: $schema=../schemas/provider.schema.json',
    };
    for (const dir of Object.keys(expected)) {
      const files = yamlFiles(dir);
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        expect(readFileSync(join(root, file), 'utf8').split('\n')[0], file).toBe(expected[dir]);
      }
    }
  });

  it('validate clean, warnings included, when the catalogue is parsed from its YAML', async () => {
    const result = await validateManifests({
      paths: ['integrations', 'providers'],
      cwd: root,
      bundledProviders: false,
      providerDirs: [],
      catalogueSnapshot: false,
    });
    expect(result.diagnostics.map((d) => `${d.file}:${d.start.line}:${d.start.column} ${d.code} ${d.message}`)).toEqual([]);
    const names = result.integrations.map((i) => i.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'stripe-payment-followup',
        'github-issue-to-slack',
        'shopify-orders-to-sendgrid',
        'weekday-openai-summary',
        'graphql-example',
        'soap-example',
      ]),
    );
    const flagship = result.integrations.find((i) => i.name === 'stripe-payment-followup')!.document;
    expect(flagship.spec.trigger.webhook?.events).toContain('payment_intent.succeeded');
    expect(flagship.spec.steps.map((s) => s.call.split('.')[0])).toEqual(expect.arrayContaining(['twilio', 'mailchimp']));
    for (const name of ['stripe', 'twilio', 'slack', 'github', 'shopify', 'mailchimp', 'sendgrid', 'openai', 'http', 'graphql', 'soap']) {
      expect(result.registry.get(name), name).toBeDefined();
    }
  });

  it('every sample event of the catalogue matches its payload schema', async () => {
    const result = await validateManifests({ paths: [], cwd: root, catalogueSnapshot: false });
    // Provider schemas come from OpenAPI documents: annotations such as `example` are allowed.
    const ajv = new Ajv2020.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    let checked = 0;
    for (const provider of result.registry.values()) {
      for (const [event, definition] of Object.entries(provider.document.spec.webhooks?.events ?? {})) {
        if (definition.schema === undefined || definition.sample === undefined) continue;
        const validate = ajv.compile(definition.schema);
        expect(validate(definition.sample), `${provider.name} ${event}: ${ajv.errorsText(validate.errors)}`).toBe(true);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });

  it("the build's catalogue snapshot holds exactly what parsing the catalogue gives", async () => {
    const snapshot = readCatalogueSnapshot();
    expect(snapshot, 'npm run build writes dist/providers/catalogue.json').toBeDefined();
    const parsed = await validateManifests({ paths: [], cwd: root, catalogueSnapshot: false });
    const fromSnapshot = await validateManifests({ paths: [], cwd: root, catalogueSnapshot: true });
    expect(fromSnapshot.registry.names()).toEqual(parsed.registry.names());
    for (const name of parsed.registry.names()) {
      expect(fromSnapshot.registry.get(name)!.document, name).toEqual(parsed.registry.get(name)!.document);
      // The snapshot path skips parsing: no source is attached.
      expect(fromSnapshot.registry.get(name)!.source).toBeUndefined();
    }
  });
});
