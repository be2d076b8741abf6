import type { ProviderOperation } from '../../types/provider.generated.js';
import type { OpenApiVersion } from './read-document.js';
import { convertSchema, excludedFor, type JsonSchema, type SchemaDetail, type SchemaNotes } from './schema-convert.js';
import { serverTemplate, type ConvertedAuth, type ServerTemplate } from './servers-auth.js';
import { firstSentence, isIdentifier, shortenText, toIdentifier } from './text.js';

type Method = NonNullable<ProviderOperation['method']>;
type BodyEncoding = NonNullable<ProviderOperation['body']>;

/**
 * What the provider schema in use accepts on an operation. The schema grows (HEAD, raw bodies,
 * per-operation base URLs arrived after the importer), so the command reads it from the schema
 * file; the importer uses a field only when it is there.
 */
export interface ProviderFeatures {
  /** The `operation.method` enum. */
  readonly methods: readonly string[];
  /** The `operation.body` enum. */
  readonly bodies: readonly string[];
  /** `operation.baseUrl` exists. */
  readonly operationBaseUrl: boolean;
  /** `operation.contentType` exists. */
  readonly contentType: boolean;
  /** `operation.responseFormat` exists. */
  readonly responseFormat: boolean;
}

/** The fields of the first provider schema: a safe default when the schema in use is not known. */
export const baselineFeatures: ProviderFeatures = {
  methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
  bodies: ['none', 'json', 'form', 'xml', 'multipart'],
  operationBaseUrl: false,
  contentType: false,
  responseFormat: false,
};

const minNodesPerInput = 12;

// Headers the request builder derives from the auth and the encoded body; an input for one would
// contradict it (a `Content-Encoding: gzip` over a body nobody compressed).
const managedHeaders = new Set(['authorization', 'content-type', 'content-length', 'content-encoding', 'host', 'transfer-encoding']);

// Parameters that carry the caller's credential (Slack's `token`, a key header): the connection's
// auth supplies it, and an input would invite a literal secret into an integration.
const credentialParameter = /^(authorization|proxy-authorization|x-api-key|api[-_]?key|x-auth-token|x-access-token|access[-_]token|token)$/i;

const pathItemMethods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** One operation of the OpenAPI document, as found under `paths`. */
export interface RawOperation {
  /** Upper-case HTTP method. */
  readonly method: string;
  /** The `paths` key. */
  readonly path: string;
  readonly pathItem: Record<string, unknown>;
  readonly operation: Record<string, unknown>;
  readonly operationId: string | undefined;
  readonly tags: readonly string[];
}

/** Every operation under `paths`, in document order. */
export function listOperations(doc: Record<string, unknown>): RawOperation[] {
  const out: RawOperation[] = [];
  const paths = doc.paths;
  if (paths === null || typeof paths !== 'object') return out;
  for (const [path, item] of Object.entries(paths as Record<string, unknown>)) {
    if (item === null || typeof item !== 'object') continue;
    const pathItem = item as Record<string, unknown>;
    for (const method of pathItemMethods) {
      const operation = pathItem[method];
      if (operation === null || typeof operation !== 'object') continue;
      const op = operation as Record<string, unknown>;
      out.push({
        method: method.toUpperCase(),
        path,
        pathItem,
        operation: op,
        operationId: typeof op.operationId === 'string' && op.operationId.trim() !== '' ? op.operationId.trim() : undefined,
        tags: Array.isArray(op.tags) ? op.tags.filter((t): t is string => typeof t === 'string') : [],
      });
    }
  }
  return out;
}

/** How an operation is shown in the report: `POST /v1/customers (PostCustomers)`. */
export function describeOperation(raw: RawOperation): string {
  return `${raw.method} ${raw.path}${raw.operationId ? ` (${raw.operationId})` : ''}`;
}

/**
 * The operation's name in the provider: its operationId with `/` as `.` and other characters
 * than letters, digits, `_`, `.` and `-` as `_` (a step calls it as `<provider>.<name>`), or,
 * without one, the method and path (`get_v1_customers_customer`).
 */
export function operationName(raw: RawOperation): string {
  // `issues/create` reads best as `issues.create`, the catalogue's style.
  const clean = (text: string) =>
    text
      .replace(/\//g, '.')
      .replace(/[^A-Za-z0-9_.-]+/g, '_')
      .replace(/\.{2,}/g, '.')
      .replace(/^[._-]+|[._-]+$/g, '');
  const fromId = raw.operationId ? clean(raw.operationId) : '';
  if (fromId !== '') return fromId;
  const fromPath = clean(`${raw.method.toLowerCase()}_${raw.path.replace(/[{}]/g, '').replace(/\//g, '_')}`).replace(/_+/g, '_');
  return fromPath === '' ? raw.method.toLowerCase() : fromPath;
}

/** An input of an operation and where it goes. */
interface InputSlot {
  readonly name: string;
  readonly schema: unknown;
  /** The parameter's own description, preferred over its schema's. */
  readonly description: unknown;
  readonly required: boolean;
  readonly kind: 'path' | 'query' | 'header' | 'body';
  /** A file part of a multipart body: given as base64 text. */
  readonly file?: boolean;
}

/** An operation with its inputs placed, before its schemas are converted at some detail. */
export interface OperationShape {
  readonly name: string;
  readonly summary: string;
  readonly docsUrl: string | undefined;
  readonly method: Method;
  readonly path: string;
  readonly body: BodyEncoding;
  /** The media type to send when it is not the encoding's usual one. */
  readonly contentType: string | undefined;
  /** For `body: raw`: the input holding the body. */
  readonly rawBody: string | undefined;
  readonly query: string[];
  readonly headers: Record<string, string>;
  readonly inputs: InputSlot[];
  /** The body accepts properties beyond those listed (a free-form object). */
  readonly openInput: boolean;
  /** Input names of which each alternative must be given in full (`oneOf` bodies). */
  readonly alternatives: string[][] | undefined;
  readonly output: unknown;
  /** How a non-JSON answer is read (`text`, `xml`, `binary`). */
  readonly responseFormat: NonNullable<ProviderOperation['responseFormat']> | undefined;
  readonly scopes: string[] | undefined;
  /** The operation's own server when it differs from the provider's base server. */
  readonly server: ServerTemplate | undefined;
}

/** Everything shaping needs to know about the document. */
export interface ShapeContext {
  readonly doc: Record<string, unknown>;
  readonly version: OpenApiVersion;
  readonly auth: ConvertedAuth;
  /** Scopes known to the provider's oauth2 scheme; scopes operations use are added to it. */
  readonly scopes: Record<string, string> | undefined;
  /** `--base-url` given: servers of paths and operations are ignored. */
  readonly serverOverride: boolean;
  readonly features: ProviderFeatures;
}

/**
 * Places an operation's inputs: path parameters (renamed to identifiers so `{name}` works),
 * query parameters (listed in `query`), header parameters (an identifier input mapped to the
 * header name in `headers`), and the request body's properties (JSON → `json`, form-urlencoded
 * → `form`, multipart → `multipart`, XML → `xml`; JSON is chosen when several are offered;
 * other media types, and JSON bodies that are not objects, go `raw` from one input when the
 * schema has raw bodies). Parameters the auth supplies (the API key parameter, credential-named
 * header or query parameters) and headers the request builder derives (`Authorization`,
 * `Content-Type`, `Content-Encoding`, …) are left out. Returns a reason instead when the
 * operation cannot be expressed: a method the schema lacks, or a body it cannot encode.
 * `notes` receives what was renamed or left out.
 */
export function shapeOperation(raw: RawOperation, name: string, context: ShapeContext, notes: string[]): OperationShape | { skip: string } {
  const { features } = context;
  const method = raw.method as Method;
  if (!features.methods.includes(method)) {
    return { skip: `method ${raw.method} is not supported by provider operations (${features.methods.join(', ')})` };
  }
  const op = raw.operation;
  const inputs: InputSlot[] = [];
  const query: string[] = [];
  const headers: Record<string, string> = {};
  const taken = new Set<string>();
  const note = (text: string) => notes.push(text);

  // Path: `{name}` placeholders must be identifiers to be filled in; a literal query string
  // in the key (`/responses?beta=true`) stays in the path.
  const [pathPart = '', literalQuery] = splitOnce(raw.path, '?');
  if (literalQuery !== undefined) note(`the path keeps its literal query "?${literalQuery}"`);
  const pathNames = new Map<string, string>();
  for (const match of pathPart.matchAll(/\{([^{}]+)\}/g)) {
    const original = match[1]!;
    if (pathNames.has(original)) continue;
    pathNames.set(original, uniqueName(isIdentifier(original) ? original : toIdentifier(original), taken));
  }

  const parameters = collectParameters(raw.pathItem.parameters, op.parameters);
  let bodyParameter: Record<string, unknown> | undefined;
  const formParameters: Record<string, unknown>[] = [];
  for (const parameter of parameters) {
    const where = parameter.in;
    const paramName = String(parameter.name);
    if (where === 'path') {
      const input = pathNames.get(paramName);
      if (input === undefined) {
        note(`path parameter "${paramName}" left out: the path has no {${paramName}}`);
        continue;
      }
      if (input !== paramName) note(`path parameter "${paramName}" renamed to input "${input}"`);
      inputs.push({ name: input, schema: parameterSchema(parameter, context.version), description: parameter.description, required: true, kind: 'path' });
      continue;
    }
    if (where === 'body') {
      bodyParameter = parameter;
      continue;
    }
    if (where === 'formData') {
      formParameters.push(parameter);
      continue;
    }
    if (where === 'cookie') {
      note(`cookie parameter "${paramName}" left out: cookies are not supported${parameter.required === true ? ' (the API says it is required)' : ''}`);
      continue;
    }
    if (where !== 'query' && where !== 'header') continue;
    const lower = paramName.toLowerCase();
    if (context.auth.suppliedParameters.has(`${where}:${lower}`)) {
      note(`${where} parameter "${paramName}" left out: the connection's auth supplies it`);
      continue;
    }
    if (where === 'header' && managedHeaders.has(lower)) {
      note(`header parameter "${paramName}" left out: Patchbay sets it`);
      continue;
    }
    if (credentialParameter.test(paramName)) {
      note(`${where} parameter "${paramName}" left out: a credential belongs in the connection's auth, not in inputs`);
      continue;
    }
    const schema = parameterSchema(parameter, context.version);
    if (where === 'query') {
      if (taken.has(paramName)) {
        note(`query parameter "${paramName}" left out: an input of that name already exists`);
        continue;
      }
      taken.add(paramName);
      inputs.push({ name: paramName, schema, description: parameter.description, required: parameter.required === true, kind: 'query' });
      query.push(paramName);
    } else {
      const input = uniqueName(isIdentifier(paramName) ? paramName : toIdentifier(paramName), taken, 'header');
      inputs.push({ name: input, schema, description: parameter.description, required: parameter.required === true, kind: 'header' });
      headers[input] = paramName;
    }
  }
  // A `{name}` without a declared parameter would be left in the URL: declare it.
  for (const [original, input] of pathNames) {
    if (inputs.some((i) => i.kind === 'path' && i.name === input)) continue;
    note(`path placeholder {${original}} has no parameter: added as a required string input "${input}"`);
    inputs.push({ name: input, schema: { type: 'string' }, description: undefined, required: true, kind: 'path' });
  }
  const path = pathPart.replace(/\{([^{}]+)\}/g, (_m, original: string) => `{${pathNames.get(original) ?? original}}`) + (literalQuery !== undefined ? `?${literalQuery}` : '');

  // Body.
  let body: BodyEncoding = 'none';
  let openInput = false;
  let alternatives: string[][] | undefined;
  let contentType: string | undefined;
  let rawBody: string | undefined;
  const request = requestBody(raw, context, bodyParameter, formParameters);
  if ('skip' in request) return request;
  const rawAllowed = features.bodies.includes('raw');
  const sendRaw = (schema: JsonSchema, mediaType: string, required: boolean, description: unknown) => {
    body = 'raw';
    rawBody = uniqueName('body', taken);
    if (features.contentType) contentType = mediaType;
    inputs.push({ name: rawBody, schema, description, required, kind: 'body' });
    return rawBody;
  };
  if (request.media === 'raw') {
    sendRaw(rawSchema(request.mediaType), request.mediaType, request.required, request.description);
  } else if (request.media !== undefined) {
    body = request.media;
    const shape = objectShape(request.schema, 0);
    if (shape === undefined) {
      if (!rawAllowed || body !== 'json') return { skip: `the request body is not an object (inputs are sent as the fields of one ${body} object)` };
      const input = sendRaw(
        { type: 'string', description: 'The request body as JSON text (it is not an object): build it with $string(…).' },
        request.mediaType,
        request.required,
        undefined,
      );
      note(`the request body is not an object: it is sent raw, from the JSON text in input "${input}"`);
    } else if (shape.properties.length === 0 && !shape.open) {
      // An empty body (Stripe declares one on every GET) carries nothing.
      body = 'none';
    } else {
      openInput = shape.open;
      alternatives = shape.alternatives;
      if (!usualMediaTypes.includes(request.mediaType.toLowerCase()) && features.contentType) contentType = request.mediaType;
      for (const [property, schema] of shape.properties) {
        if (excludedFor('input', schema)) continue;
        if (taken.has(property)) {
          note(`body field "${property}" left out: a path, query or header input has the same name`);
          continue;
        }
        taken.add(property);
        const file = body === 'multipart' && isFileSchema(schema);
        inputs.push({ name: property, schema, description: undefined, required: shape.required.has(property), kind: 'body', file });
      }
    }
  } else if (request.note) {
    note(request.note);
  }

  const oddNames = inputs.filter((input) => input.kind !== 'path' && input.kind !== 'header' && !isIdentifier(input.name)).map((input) => input.name);
  if (oddNames.length > 0) {
    const shown = oddNames.slice(0, 4).map((n) => JSON.stringify(n)).join(', ');
    note(
      oddNames.length === 1
        ? `input ${shown} is not an identifier: kept as written; expressions read it as ["name"]`
        : `${oddNames.length} inputs ${shown}${oddNames.length > 4 ? ', …' : ''} are not identifiers: kept as written; expressions read them as ["name"]`,
    );
  }

  const response = responseOf(op, context);
  return {
    name,
    summary: summaryOf(raw),
    docsUrl: docsUrlOf(op),
    method,
    path,
    body,
    contentType,
    rawBody,
    query,
    headers,
    inputs,
    openInput,
    alternatives: alternatives?.filter((list) => list.every((name) => inputs.some((input) => input.name === name && input.kind === 'body'))),
    output: response.schema,
    responseFormat: features.responseFormat ? response.format : undefined,
    scopes: scopesOf(op, context),
    server: context.serverOverride ? undefined : operationServer(raw),
  };
}

/**
 * Writes an operation shape as a provider operation with its schemas converted at `detail`.
 * `schemaNotes` collects what the conversion dropped or cut.
 */
export function renderOperation(
  shape: OperationShape,
  detail: SchemaDetail,
  version: OpenApiVersion,
  schemaNotes: SchemaNotes,
  baseUrl: string | undefined,
): ProviderOperation {
  // Each input gets an equal share of the node budget, so the first large one cannot starve the rest.
  const inputDetail = { ...detail, maxNodes: Math.max(minNodesPerInput, Math.floor(detail.maxNodes / Math.max(1, shape.inputs.length))) };
  const properties: JsonSchema = {};
  const required: string[] = [];
  for (const input of shape.inputs) {
    const schema = convertSchema(input.schema, { version, mode: 'input', detail: inputDetail, notes: schemaNotes });
    const description = shortenText(input.description, detail.descriptionChars);
    // The request builder sends a string input whose schema says `contentEncoding: base64` as a
    // file part, decoded.
    if (input.file) schema.contentEncoding = 'base64';
    properties[input.name] = description === undefined ? schema : withDescription(schema, description);
    if (input.required) required.push(input.name);
  }
  const inputSchema: JsonSchema = { type: 'object', properties };
  if (required.length > 0) inputSchema.required = required;
  // `patchbay validate` reads `anyOf` of `required` lists as "one of these groups".
  if (shape.alternatives !== undefined && shape.alternatives.length > 1) inputSchema.anyOf = shape.alternatives.map((list) => ({ required: list }));
  inputSchema.additionalProperties = shape.openInput;

  const operation: ProviderOperation = { summary: shortenText(shape.summary, detail.summaryChars) ?? shape.summary, input: inputSchema };
  if (shape.docsUrl !== undefined) operation.docsUrl = shape.docsUrl;
  operation.method = shape.method;
  operation.path = shape.path;
  if (baseUrl !== undefined) operation.baseUrl = baseUrl;
  operation.body = shape.body;
  if (shape.contentType !== undefined) operation.contentType = shape.contentType;
  if (shape.rawBody !== undefined) operation.rawBody = shape.rawBody;
  if (shape.query.length > 0) operation.query = shape.query;
  if (Object.keys(shape.headers).length > 0) operation.headers = shape.headers;
  if (detail.output && shape.output !== undefined) {
    operation.output = convertSchema(shape.output, { version, mode: 'output', detail: { ...detail, descriptionChars: detail.nestedDescriptionChars }, notes: schemaNotes });
  }
  if (shape.responseFormat !== undefined) operation.responseFormat = shape.responseFormat;
  if (shape.scopes !== undefined && shape.scopes.length > 0) operation.scopes = shape.scopes;
  // Key order: the input schema after the fields that say where the call goes.
  const { input, output, ...rest } = operation;
  return output === undefined ? { ...rest, input } : { ...rest, input, output };
}

function withDescription(schema: JsonSchema, description: string): JsonSchema {
  const { type, ...rest } = schema;
  return type === undefined ? { description, ...rest } : { type, description, ...rest };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function uniqueName(name: string, taken: Set<string>, suffix = 'input'): string {
  let candidate = name;
  if (taken.has(candidate)) candidate = `${name}_${suffix}`;
  for (let i = 2; taken.has(candidate); i += 1) candidate = `${name}_${suffix}${i}`;
  taken.add(candidate);
  return candidate;
}

/** Path-item parameters overridden by the operation's own ones with the same name and location. */
function collectParameters(pathLevel: unknown, operationLevel: unknown): Record<string, unknown>[] {
  const byKey = new Map<string, Record<string, unknown>>();
  for (const list of [pathLevel, operationLevel]) {
    if (!Array.isArray(list)) continue;
    for (const parameter of list) {
      if (parameter === null || typeof parameter !== 'object') continue;
      const p = parameter as Record<string, unknown>;
      if (typeof p.name !== 'string' || typeof p.in !== 'string') continue;
      byKey.set(`${p.in}:${p.name}`, p);
    }
  }
  return [...byKey.values()];
}

const swaggerParameterKeys = new Set(['name', 'in', 'required', 'description', 'collectionFormat', 'allowEmptyValue']);

/** The schema of a parameter: OpenAPI 3 `schema` or `content`; Swagger 2.0 keeps it on the parameter itself. */
function parameterSchema(parameter: Record<string, unknown>, version: OpenApiVersion): unknown {
  if (version === '2.0') {
    if (parameter.in === 'body') return parameter.schema ?? {};
    const schema: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(parameter)) if (!swaggerParameterKeys.has(key) && !key.startsWith('x-')) schema[key] = value;
    if (parameter['x-nullable'] === true) schema['x-nullable'] = true;
    return schema;
  }
  if (parameter.schema !== undefined) return parameter.schema;
  const content = parameter.content;
  if (content !== null && typeof content === 'object') {
    const first = Object.values(content as Record<string, { schema?: unknown }>)[0];
    if (first?.schema !== undefined) return first.schema;
  }
  return {};
}

type RequestBody =
  | { media: BodyEncoding; mediaType: string; schema: unknown; required: boolean; description: unknown }
  | { media: undefined; note?: string }
  | { skip: string };

const jsonMedia = /^application\/([a-z0-9.+-]*\+)?json\b/i;
const usualMediaTypes = ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/xml', 'text/xml'];

function requestBody(
  raw: RawOperation,
  context: ShapeContext,
  bodyParameter: Record<string, unknown> | undefined,
  formParameters: Record<string, unknown>[],
): RequestBody {
  const op = raw.operation;
  if (context.version === '2.0') {
    const consumes = mediaList(op.consumes ?? context.doc.consumes);
    if (formParameters.length > 0) {
      const hasFile = formParameters.some((p) => p.type === 'file');
      const multipart = hasFile || (consumes.some((c) => /^multipart\//i.test(c)) && !consumes.some((c) => /x-www-form-urlencoded/i.test(c)));
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      for (const p of formParameters) {
        const schema = parameterSchema(p, '2.0') as Record<string, unknown>;
        properties[String(p.name)] = typeof p.description === 'string' ? { ...schema, description: p.description } : schema;
        if (p.required === true) required.push(String(p.name));
      }
      return {
        media: multipart ? 'multipart' : 'form',
        mediaType: multipart ? 'multipart/form-data' : 'application/x-www-form-urlencoded',
        schema: { type: 'object', properties, required },
        required: required.length > 0,
        description: undefined,
      };
    }
    if (bodyParameter) {
      const types = consumes.length === 0 ? ['application/json'] : consumes;
      return chooseMedia(types, () => bodyParameter.schema ?? {}, bodyParameter.required === true, bodyParameter.description, context);
    }
    return { media: undefined };
  }
  const requestBody = op.requestBody;
  if (requestBody === null || typeof requestBody !== 'object') return { media: undefined };
  const rb = requestBody as { content?: Record<string, { schema?: unknown }>; required?: unknown; description?: unknown };
  const content = rb.content ?? {};
  const types = Object.keys(content);
  if (types.length === 0) return { media: undefined };
  return chooseMedia(types, (type) => content[type]?.schema ?? {}, rb.required === true, rb.description, context);
}

/**
 * Picks the body encoding among the media types offered: JSON first, then form, multipart and
 * XML; any other type (binary, text) is sent raw when the schema allows raw bodies.
 */
function chooseMedia(types: string[], schemaOf: (type: string) => unknown, required: boolean, description: unknown, context: ShapeContext): RequestBody {
  const allowed = context.features.bodies;
  const find = (test: RegExp, encoding: BodyEncoding) => (allowed.includes(encoding) ? types.find((t) => test.test(t)) : undefined);
  const candidates: [string | undefined, BodyEncoding][] = [
    [find(jsonMedia, 'json'), 'json'],
    [find(/^application\/x-www-form-urlencoded/i, 'form'), 'form'],
    [find(/^multipart\//i, 'multipart'), 'multipart'],
    [find(/^(application|text)\/([a-z0-9.+-]*\+)?xml\b/i, 'xml'), 'xml'],
  ];
  for (const [type, media] of candidates) {
    if (type !== undefined) return { media, mediaType: type, schema: schemaOf(type), required, description };
  }
  const first = types[0]!;
  if (allowed.includes('raw')) return { media: 'raw', mediaType: first === '*/*' ? 'application/octet-stream' : first, schema: schemaOf(first), required, description };
  const list = types.join(', ');
  if (required) return { skip: `request body type ${list} is not supported (JSON, form, multipart and XML are)` };
  return { media: undefined, note: `optional request body (${list}) left out: only JSON, form, multipart and XML bodies are supported` };
}

/** The input schema of a raw body: text for text-like media types, base64 bytes for the rest. */
function rawSchema(mediaType: string): JsonSchema {
  if (/^text\/|^application\/(sdp|x-ndjson|jsonl|sql|graphql|javascript)\b|\+(json|xml)$|json|xml/i.test(mediaType)) {
    return { type: 'string', description: `The request body (${mediaType}).` };
  }
  return { type: 'string', contentEncoding: 'base64', description: `The request body (${mediaType}), as base64.` };
}

function mediaList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

interface ObjectShape {
  readonly properties: [string, unknown][];
  readonly required: Set<string>;
  readonly open: boolean;
  /** From a `oneOf`/`anyOf` of objects: what each alternative requires beyond `required`. */
  readonly alternatives?: string[][];
}

/**
 * The fields of a body schema that is an object: its own properties merged with those of its
 * `allOf` parts; for `oneOf`/`anyOf` alternatives that are all objects, the union of their
 * properties with only the fields every alternative requires. Undefined for anything else.
 */
function objectShape(schema: unknown, depth: number): ObjectShape | undefined {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema) || depth > 8) return undefined;
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === 'string') return undefined;
  const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
  if (types.length > 0 && !types.includes('object')) return undefined;
  const properties = new Map<string, unknown>();
  const required = new Set<string>();
  let open = false;
  let alternatives: string[][] | undefined;
  let objectLike = types.includes('object');
  const own = s.properties;
  if (own !== null && typeof own === 'object' && !Array.isArray(own)) {
    objectLike = true;
    for (const [name, value] of Object.entries(own as Record<string, unknown>)) properties.set(name, value);
  }
  if (Array.isArray(s.required)) for (const r of s.required) if (typeof r === 'string') required.add(r);
  if (s.additionalProperties === true || (s.additionalProperties !== null && typeof s.additionalProperties === 'object')) open = true;
  if (Array.isArray(s.allOf)) {
    for (const part of s.allOf) {
      const shape = objectShape(part, depth + 1);
      if (shape === undefined) {
        if (isUnconstrained(part)) continue;
        return undefined;
      }
      objectLike = true;
      for (const [name, value] of shape.properties) if (!properties.has(name)) properties.set(name, value);
      for (const r of shape.required) required.add(r);
      open ||= shape.open;
    }
  }
  for (const key of ['oneOf', 'anyOf'] as const) {
    const options = s[key];
    if (!Array.isArray(options) || options.length === 0) continue;
    const shapes = options.map((option) => objectShape(option, depth + 1));
    if (shapes.some((shape) => shape === undefined)) {
      if (objectLike) continue;
      return undefined;
    }
    objectLike = true;
    const common = shapes.map((shape) => shape!.required).reduce((a, b) => new Set([...a].filter((r) => b.has(r))));
    for (const shape of shapes) {
      for (const [name, value] of shape!.properties) if (!properties.has(name)) properties.set(name, value);
      open ||= shape!.open;
    }
    for (const r of common) required.add(r);
    const extra = shapes.map((shape) => [...shape!.required].filter((r) => !common.has(r)));
    if (alternatives === undefined && extra.every((list) => list.length > 0)) alternatives = extra;
  }
  if (!objectLike) return undefined;
  // A free-form object (`type: object` and nothing else) takes any field; one that says
  // `additionalProperties: false` and lists none takes nothing (Stripe's GET bodies).
  if (properties.size === 0 && s.additionalProperties === undefined && !Array.isArray(s.allOf) && !Array.isArray(s.oneOf) && !Array.isArray(s.anyOf)) {
    open = true;
  }
  for (const r of [...required]) if (!properties.has(r)) required.delete(r);
  return { properties: [...properties], required, open, alternatives };
}

/** A file in a multipart body: OpenAPI 3 `format: binary`, Swagger 2.0 `type: file`. */
function isFileSchema(schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return false;
  const s = schema as Record<string, unknown>;
  return s.type === 'file' || (s.format === 'binary' && (s.type === 'string' || s.type === undefined));
}

function isUnconstrained(schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return schema === true;
  return Object.keys(schema).every((key) => key === 'description' || key === 'title' || key.startsWith('x-'));
}

function summaryOf(raw: RawOperation): string {
  const op = raw.operation;
  return shortenText(op.summary, 200) ?? firstSentence(op.description, 200) ?? `${raw.method} ${raw.path}`;
}

function docsUrlOf(op: Record<string, unknown>): string | undefined {
  const docs = op.externalDocs as { url?: unknown } | undefined;
  return typeof docs?.url === 'string' && /^https?:\/\//i.test(docs.url) ? docs.url : undefined;
}

/**
 * What the first 2xx response with a body says: its JSON schema (Swagger 2.0: any schema), or
 * for a body that is not JSON how to read it (`text`, `xml`, `binary`).
 */
function responseOf(op: Record<string, unknown>, context: ShapeContext): { schema?: unknown; format?: 'text' | 'xml' | 'binary' } {
  const responses = op.responses;
  if (responses === null || typeof responses !== 'object') return {};
  const codes = Object.keys(responses as object)
    .filter((code) => /^2([0-9]{2}|XX)$/i.test(code))
    .sort();
  for (const code of codes) {
    const response = (responses as Record<string, Record<string, unknown> | undefined>)[code];
    if (response === null || typeof response !== 'object') continue;
    if (context.version === '2.0') {
      if (response.schema === undefined) continue;
      const produces = mediaList(op.produces ?? context.doc.produces);
      if (produces.length > 0 && !produces.some((t) => jsonMedia.test(t))) return { format: nonJsonFormat(produces[0]!) };
      return { schema: response.schema };
    }
    const content = response.content as Record<string, { schema?: unknown }> | undefined;
    const types = Object.keys(content ?? {});
    if (types.length === 0) continue;
    const json = types.find((t) => jsonMedia.test(t) || t === '*/*');
    if (json !== undefined) return content![json]?.schema === undefined ? {} : { schema: content![json]!.schema };
    return { format: nonJsonFormat(types[0]!) };
  }
  return {};
}

function nonJsonFormat(mediaType: string): 'text' | 'xml' | 'binary' {
  if (/xml/i.test(mediaType)) return 'xml';
  if (/^text\//i.test(mediaType)) return 'text';
  return 'binary';
}

/** The OAuth scopes of the operation's (or the document's) first security requirement that names an oauth2 scheme. */
function scopesOf(op: Record<string, unknown>, context: ShapeContext): string[] | undefined {
  const requirements = Array.isArray(op.security) ? op.security : Array.isArray(context.doc.security) ? context.doc.security : [];
  for (const requirement of requirements) {
    if (requirement === null || typeof requirement !== 'object') continue;
    for (const [scheme, scopes] of Object.entries(requirement as Record<string, unknown>)) {
      if (!context.auth.oauthSchemes.has(scheme) || !Array.isArray(scopes) || scopes.length === 0) continue;
      const list = [...new Set(scopes.filter((s): s is string => typeof s === 'string' && s !== ''))];
      if (context.scopes) {
        for (const scope of list) context.scopes[scope] ??= '(used by operations; not described in the OpenAPI document)';
      }
      return list;
    }
  }
  return undefined;
}

/** The server an operation or its path item declares for itself (OpenAPI 3), if any. */
function operationServer(raw: RawOperation): ServerTemplate | undefined {
  for (const servers of [raw.operation.servers, raw.pathItem.servers]) {
    if (Array.isArray(servers) && servers.length > 0) return serverTemplate(servers[0]);
  }
  return undefined;
}
