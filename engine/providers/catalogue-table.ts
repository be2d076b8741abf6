import type { ProviderDocument } from '../types/provider.generated.js';

/**
 * Renders the README's catalogue table from provider documents, one row per provider sorted by
 * name: auth types, the pinned API version, the rate limit, the webhook verification scheme, and
 * the operations. The README copy is checked against this by a test, so the manual can never
 * promise an operation the catalogue lacks.
 */
export function renderCatalogueTable(providers: readonly ProviderDocument[]): string {
  const rows = [...providers]
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    .map((provider) => {
      const spec = provider.spec;
      const auth = [...new Set(spec.auth.map((scheme) => scheme.type))].join(', ');
      const version = spec.apiVersion?.default !== undefined ? `\`${spec.apiVersion.default}\` (${spec.apiVersion.in ?? 'header'})` : '—';
      const limit = spec.rateLimit === undefined ? '—' : `${spec.rateLimit.requests}/${spec.rateLimit.per}${tierCount(spec.rateLimit.tiers)}${spec.rateLimit.concurrency ? `, ${spec.rateLimit.concurrency} at once` : ''}`;
      const webhooks = spec.webhooks === undefined ? '—' : `${spec.webhooks.verification.scheme}${spec.webhooks.events ? ` (${Object.keys(spec.webhooks.events).length} events)` : ''}`;
      const operations = Object.keys(spec.operations).sort();
      return `| \`${provider.metadata.name}\` | ${auth} | ${version} | ${limit} | ${webhooks} | ${operations.length}: ${operations.map((o) => `\`${o}\``).join(', ')} |`;
    });
  return ['| provider | auth | pinned version | rate limit | webhooks | operations |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

function tierCount(tiers: Record<string, unknown> | undefined): string {
  const count = Object.keys(tiers ?? {}).length;
  return count === 0 ? '' : ` + ${count} tier${count === 1 ? '' : 's'}`;
}
