import type { ProviderAuthScheme, ProviderVariable } from '../../types/provider.generated.js';
import type { OpenApiVersion } from './read-document.js';
import { escapeRegExp, isIdentifier, shortenText, toIdentifier } from './text.js';

/** A server URL template with its variables, as OpenAPI 3.x `servers` entries carry. */
export interface ServerTemplate {
  /** Absolute URL without a trailing slash, with `{variable}` placeholders. */
  readonly url: string;
  /** Declared variables of this server (OpenAPI `servers[].variables`). */
  readonly variables: Record<string, { default?: unknown; enum?: unknown; description?: unknown }>;
}

const placeholder = /\{([^{}]+)\}/g;

/**
 * Reads an OpenAPI 3.x server object into a template; undefined when it has no URL or the URL
 * is relative (no `scheme://`), which the importer cannot call without `--base-url`.
 */
export function serverTemplate(server: unknown): ServerTemplate | undefined {
  if (server === null || typeof server !== 'object') return undefined;
  const { url, variables } = server as { url?: unknown; variables?: unknown };
  if (typeof url !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url.trim())) return undefined;
  const vars = variables !== null && typeof variables === 'object' ? (variables as ServerTemplate['variables']) : {};
  return { url: url.trim().replace(/\/+$/, ''), variables: vars };
}

/**
 * The Swagger 2.0 server: `https` when listed (else the first scheme, else https) + `host` +
 * `basePath`. Undefined without a host.
 */
export function swaggerServer(doc: Record<string, unknown>): ServerTemplate | undefined {
  if (typeof doc.host !== 'string' || doc.host.trim() === '') return undefined;
  const schemes = Array.isArray(doc.schemes) ? doc.schemes.filter((s): s is string => typeof s === 'string') : [];
  const scheme = schemes.includes('https') ? 'https' : (schemes[0] ?? 'https');
  const basePath = typeof doc.basePath === 'string' ? doc.basePath : '';
  return { url: `${scheme}://${doc.host.trim()}${basePath.startsWith('/') || basePath === '' ? basePath : `/${basePath}`}`.replace(/\/+$/, ''), variables: {} };
}

/**
 * Turns the provider's base server into `baseUrl` and connection `variables`: each `{name}`
 * becomes a variable (renamed to an identifier when it is not one), with the server's default,
 * description, and an enum as an anchored `pattern` plus `examples`. `notes` receives renames.
 */
export function baseServerVariables(
  server: ServerTemplate,
  notes: string[],
): { baseUrl: string; variables: Record<string, ProviderVariable> } {
  const variables: Record<string, ProviderVariable> = {};
  const baseUrl = server.url.replace(placeholder, (_match, raw: string) => {
    const name = isIdentifier(raw) ? raw : toIdentifier(raw);
    if (name !== raw) notes.push(`server variable {${raw}} renamed to {${name}} (variables are identifiers)`);
    if (variables[name]) return `{${name}}`;
    const declared = server.variables[raw] ?? {};
    const variable: ProviderVariable = {};
    const description = shortenText(declared.description, 300);
    if (description !== undefined) variable.description = description;
    if (declared.default !== undefined && declared.default !== null && typeof declared.default !== 'object') variable.default = String(declared.default);
    if (Array.isArray(declared.enum)) {
      const values = declared.enum.filter((v) => typeof v === 'string' || typeof v === 'number').map(String);
      if (values.length > 0) {
        variable.pattern = `^(?:${values.map(escapeRegExp).join('|')})$`;
        variable.examples = values.slice(0, 20);
      }
    }
    variables[name] = variable;
    return `{${name}}`;
  });
  return { baseUrl, variables };
}

/**
 * The host an allowed-hosts list needs for a server URL: a leading label that is a variable
 * becomes `*` (`{shop}.myshopify.com` → `*.myshopify.com`); other variables take their default.
 * Undefined when a variable elsewhere in the host has no default.
 */
export function serverHost(server: ServerTemplate): string | undefined {
  const afterScheme = server.url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const authority = afterScheme.split(/[/?#]/)[0] ?? '';
  const hostPort = authority.includes('@') ? authority.slice(authority.lastIndexOf('@') + 1) : authority;
  const labels = hostPort.split('.');
  const out: string[] = [];
  for (const [i, label] of labels.entries()) {
    if (!label.includes('{')) {
      out.push(label);
      continue;
    }
    if (i === 0 && /^\{[^{}]+\}$/.test(label) && labels.length > 2) {
      out.push('*');
      continue;
    }
    let missing = false;
    const replaced = label.replace(placeholder, (_m, name: string) => {
      const value = server.variables[name]?.default;
      if (value === undefined || value === null || typeof value === 'object') {
        missing = true;
        return '';
      }
      return String(value);
    });
    if (missing) return undefined;
    out.push(replaced);
  }
  const host = out.join('.').toLowerCase();
  return /^(\*\.)?[a-z0-9.-]+(:[0-9]+)?$/.test(host) ? host : undefined;
}

/** Auth schemes converted from `securitySchemes` / `securityDefinitions`, and what operations need to know about them. */
export interface ConvertedAuth {
  readonly auth: ProviderAuthScheme[];
  /** OpenAPI scheme names that became (or merged into) the provider's `oauth2` scheme. */
  readonly oauthSchemes: Set<string>;
  /** Parameters the auth supplies (`header:x-api-key`, `query:key`, lower-case): dropped from inputs. */
  readonly suppliedParameters: Set<string>;
}

/**
 * Converts OpenAPI security schemes to provider auth schemes: http bearer → bearer, http basic →
 * basic, apiKey in a header or query → apiKey with `in`/`name`, oauth2 → oauth2 with the token
 * and authorization URLs of its flows and their scopes merged, openIdConnect → oauth2 described
 * as such. Connections pick a scheme by type, so a second scheme of a type already present is
 * merged (oauth2 scopes) or left out with a note; unsupported ones (cookie keys, digest, mutual
 * TLS) too. A document without any yields one `none` scheme, with a note.
 */
export function convertSecuritySchemes(doc: Record<string, unknown>, version: OpenApiVersion, notes: string[]): ConvertedAuth {
  const components = doc.components as { securitySchemes?: unknown } | undefined;
  const raw = version === '2.0' ? doc.securityDefinitions : components?.securitySchemes;
  const schemes = raw !== null && typeof raw === 'object' ? (raw as Record<string, Record<string, unknown>>) : {};
  const auth: ProviderAuthScheme[] = [];
  const oauthSchemes = new Set<string>();
  const suppliedParameters = new Set<string>();
  const byType = new Map<string, ProviderAuthScheme>();
  const add = (name: string, scheme: ProviderAuthScheme) => {
    const existing = byType.get(scheme.type);
    if (existing) {
      if (scheme.type === 'oauth2') {
        existing.scopes = { ...(scheme.scopes ?? {}), ...(existing.scopes ?? {}) };
        existing.tokenUrl ??= scheme.tokenUrl;
        existing.authorizeUrl ??= scheme.authorizeUrl;
        oauthSchemes.add(name);
        return;
      }
      notes.push(`security scheme "${name}" left out: a ${scheme.type} scheme is already imported (connections choose a scheme by type)`);
      return;
    }
    byType.set(scheme.type, scheme);
    auth.push(scheme);
    if (scheme.type === 'oauth2') oauthSchemes.add(name);
  };

  for (const [name, scheme] of Object.entries(schemes)) {
    if (scheme === null || typeof scheme !== 'object') continue;
    const description = shortenText(scheme.description, 300);
    const withDescription = (s: ProviderAuthScheme): ProviderAuthScheme => (description === undefined ? s : { ...s, description });
    const type = String(scheme.type ?? '');
    if (type === 'http' || type === 'basic') {
      const httpScheme = type === 'basic' ? 'basic' : String(scheme.scheme ?? '').toLowerCase();
      if (httpScheme === 'bearer') add(name, withDescription({ type: 'bearer' }));
      else if (httpScheme === 'basic') add(name, withDescription({ type: 'basic' }));
      else notes.push(`security scheme "${name}" (http ${httpScheme || 'without scheme'}) left out: only bearer and basic are supported`);
    } else if (type === 'apiKey') {
      const location = scheme.in;
      if ((location === 'header' || location === 'query') && typeof scheme.name === 'string' && scheme.name !== '') {
        add(name, withDescription({ type: 'apiKey', in: location, name: scheme.name }));
        suppliedParameters.add(`${location}:${scheme.name.toLowerCase()}`);
      } else {
        notes.push(`security scheme "${name}" (apiKey in ${String(location)}) left out: keys go in a header or the query`);
      }
    } else if (type === 'oauth2') {
      add(name, withDescription(oauthScheme(scheme, version)));
    } else if (type === 'openIdConnect') {
      const url = typeof scheme.openIdConnectUrl === 'string' ? scheme.openIdConnectUrl : undefined;
      const text = `OpenID Connect${url ? `; discovery document: ${url}` : ''}${description ? `. ${description}` : ''}`;
      add(name, { type: 'oauth2', description: text });
    } else {
      notes.push(`security scheme "${name}" (${type || 'without type'}) left out: not supported`);
    }
  }
  if (auth.length === 0) {
    auth.push({ type: 'none', description: 'The OpenAPI description declares no usable security scheme; replace this with how the API authenticates.' });
    notes.push('no usable security scheme in the document: auth is `none`; edit it to the scheme the API uses');
  }
  return { auth, oauthSchemes, suppliedParameters };
}

function oauthScheme(scheme: Record<string, unknown>, version: OpenApiVersion): ProviderAuthScheme {
  const out: ProviderAuthScheme = { type: 'oauth2' };
  const scopes: Record<string, string> = {};
  const addScopes = (raw: unknown) => {
    if (raw === null || typeof raw !== 'object') return;
    for (const [scope, text] of Object.entries(raw as Record<string, unknown>)) {
      if (!Object.hasOwn(scopes, scope)) scopes[scope] = shortenText(text, 200) ?? scope;
    }
  };
  if (version === '2.0') {
    if (typeof scheme.tokenUrl === 'string') out.tokenUrl = scheme.tokenUrl;
    if (typeof scheme.authorizationUrl === 'string') out.authorizeUrl = scheme.authorizationUrl;
    addScopes(scheme.scopes);
  } else {
    const flows = (scheme.flows ?? {}) as Record<string, Record<string, unknown> | undefined>;
    for (const flow of ['authorizationCode', 'clientCredentials', 'password', 'implicit']) {
      const f = flows[flow];
      if (!f || typeof f !== 'object') continue;
      if (out.tokenUrl === undefined && typeof f.tokenUrl === 'string') out.tokenUrl = f.tokenUrl;
      if (out.authorizeUrl === undefined && typeof f.authorizationUrl === 'string') out.authorizeUrl = f.authorizationUrl;
      addScopes(f.scopes);
    }
  }
  if (Object.keys(scopes).length > 0) out.scopes = scopes;
  return out;
}
