import { describe, expect, it } from 'vitest';
import type { InboundResponse, OutboundRequest } from '../../engine/http/request.js';
import { parsePath, readPath } from '../../engine/providers/paths.js';
import { buildRequest, nextLink, nextPageRequest, type CallTarget } from '../../engine/providers/request-builder.js';
import { flattenInput, joinPairs } from '../../engine/providers/encode.js';
import { bundledProvider, loadBundledProviders, providerDocument as provider } from './bundled.js';
import { thrown } from '../support/errors.js';

const accountSid = 'AC' + '0123456789abcdef'.repeat(2);

const target: CallTarget = { variables: {} };

function bodyText(request: OutboundRequest): string {
  const body = request.body;
  if (body === undefined) return '';
  return typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
}

describe('paths', () => {
  it('reads names, indexes and negative indexes', () => {
    const value = { data: [{ id: 'a' }, { id: 'b' }], errors: [{ message: 'm', extensions: { code: 'X' } }] };
    expect(readPath(value, 'data[-1].id')).toBe('b');
    expect(readPath(value, 'data[0].id')).toBe('a');
    expect(readPath(value, 'errors[0].extensions.code')).toBe('X');
    expect(readPath(value, 'data[5].id')).toBeUndefined();
    expect(readPath(value, 'missing.deeper')).toBeUndefined();
    expect(readPath({ a: null }, 'a.b')).toBeUndefined();
    expect(readPath([1, 2, 3], '[-1]')).toBe(3);
  });

  it('reads only own properties', () => {
    expect(readPath({}, 'constructor')).toBeUndefined();
    expect(readPath({}, '__proto__')).toBeUndefined();
  });

  it('refuses malformed paths', () => {
    for (const bad of ['', 'a..b', '.a', 'a.', 'a[x]', 'a[1', 'a]']) expect(() => parsePath(bad), bad).toThrow(/malformed/);
    expect(parsePath('a[0][1].b')).toEqual(['a', 0, 1, 'b']);
  });
});

describe('flattenInput', () => {
  it('brackets objects and indexes arrays in form bodies (Stripe)', () => {
    const pairs = flattenInput('metadata', { order: '42', tags: ['a', 'b'], nested: { deep: true } }, {}, 'form');
    expect(pairs).toEqual([
      ['metadata[order]', '42'],
      ['metadata[tags][0]', 'a'],
      ['metadata[tags][1]', 'b'],
      ['metadata[nested][deep]', 'true'],
    ]);
    expect(flattenInput('expand', ['customer', 'invoice'], {}, 'form')).toEqual([['expand[0]', 'customer'], ['expand[1]', 'invoice']]);
  });

  it('repeats the key for query arrays, or as the style says', () => {
    expect(flattenInput('ids', [1, 2], {}, 'query')).toEqual([['ids', '1'], ['ids', '2']]);
    expect(flattenInput('expand', ['a'], { style: 'deepObject' }, 'query')).toEqual([['expand[0]', 'a']]);
    expect(flattenInput('MediaUrl', ['u1', 'u2'], { style: 'form' }, 'form')).toEqual([['MediaUrl', 'u1'], ['MediaUrl', 'u2']]);
    expect(flattenInput('labels', ['bug', 'ui'], { style: 'form', explode: false }, 'query')).toEqual([['labels', 'bug,ui']]);
    expect(flattenInput('fields', ['name', 'geometry'], { explode: false }, 'query')).toEqual([['fields', 'name,geometry']]);
    expect(flattenInput('origins', ['Seattle, WA', '47.6,-122.3'], { style: 'pipeDelimited', explode: false }, 'query')).toEqual([['origins', 'Seattle, WA|47.6,-122.3']]);
    expect(flattenInput('q', ['a', 'b'], { style: 'spaceDelimited', explode: false }, 'query')).toEqual([['q', 'a b']]);
    expect(flattenInput('created', { gte: 1, lt: 2 }, {}, 'query')).toEqual([['created[gte]', '1'], ['created[lt]', '2']]);
  });

  it('drops null, undefined and empty lists; keeps empty strings and false', () => {
    expect(flattenInput('a', null, {}, 'form')).toEqual([]);
    expect(flattenInput('a', undefined, {}, 'form')).toEqual([]);
    expect(flattenInput('a', [], {}, 'form')).toEqual([]);
    expect(flattenInput('a', { b: null, c: 'x' }, {}, 'form')).toEqual([['a[c]', 'x']]);
    expect(flattenInput('a', '', {}, 'form')).toEqual([['a', '']]);
    expect(flattenInput('a', false, {}, 'form')).toEqual([['a', 'false']]);
  });

  it('sends JSON text for contentMediaType application/json (Slack blocks)', () => {
    expect(flattenInput('blocks', [{ type: 'divider' }], { contentMediaType: 'application/json' }, 'form')).toEqual([['blocks', '[{"type":"divider"}]']]);
    expect(flattenInput('blocks', '[]', { contentMediaType: 'application/json' }, 'form')).toEqual([['blocks', '[]']]);
  });

  it('refuses lists of objects under style form, and non-finite numbers', () => {
    expect(thrown(() => flattenInput('x', [{ a: 1 }], { style: 'form' }, 'query')).code).toBe('PB_CALL_BAD_INPUT');
    expect(thrown(() => flattenInput('x', Number.NaN, {}, 'query')).message).toContain('"x"');
  });

  it('percent-encodes everything but unreserved characters, keeping brackets in names', () => {
    expect(joinPairs([['metadata[note]', "a b&c=d/é!'()*+"]])).toBe('metadata[note]=a%20b%26c%3Dd%2F%C3%A9%21%27%28%29%2A%2B');
  });
});

describe('buildRequest: URL', () => {
  it('percent-encodes path inputs whole and refuses dot segments', () => {
    const acme = provider({}, { get: { summary: 's', method: 'GET', path: '/items/{id}', body: 'none', input: { type: 'object', properties: { id: { type: 'string' } } } } });
    const request = buildRequest(acme, 'get', { id: 'a/b c?d#e%' }, target);
    expect(request.url.href).toBe('https://api.acme.test/items/a%2Fb%20c%3Fd%23e%25');
    for (const bad of ['..', '.']) {
      const error = thrown(() => buildRequest(acme, 'get', { id: bad }, target));
      expect(error.code).toBe('PB_CALL_BAD_INPUT');
      expect(error.message).toContain('"id"');
    }
    expect(thrown(() => buildRequest(acme, 'get', {}, target)).message).toMatch(/input "id" is required/);
    expect(thrown(() => buildRequest(acme, 'get', { id: '' }, target)).code).toBe('PB_CALL_BAD_INPUT');
  });

  it('keeps "/" in a greedy {Key+} placeholder (S3 keys) but still refuses ".."', () => {
    const s3 = provider({}, { put: { summary: 's', method: 'PUT', path: '/{Bucket}/{Key+}', body: 'raw', rawBody: 'Body', input: { type: 'object', properties: { Bucket: { type: 'string' }, Key: { type: 'string' }, Body: { type: 'string' } } } } });
    const request = buildRequest(s3, 'put', { Bucket: 'my-bucket', Key: 'reports/2026/jan 1.csv', Body: 'a,b' }, target);
    expect(request.url.pathname).toBe('/my-bucket/reports/2026/jan%201.csv');
    expect(thrown(() => buildRequest(s3, 'put', { Bucket: 'b', Key: 'a/../../etc', Body: '' }, target)).code).toBe('PB_CALL_BAD_INPUT');
    expect(buildRequest(s3, 'put', { Bucket: 'a/b', Key: 'k', Body: '' }, target).url.pathname).toBe('/a%2Fb/k');
  });

  it('fills variables, and refuses a value that would change the host', () => {
    const shopify = bundledProvider('shopify');
    const request = buildRequest(shopify, 'orders.get', { order_id: 450789469 }, { variables: { shop: 'my-shop' } });
    expect(request.url.href).toBe('https://my-shop.myshopify.com/admin/api/2026-07/orders/450789469.json');
    for (const shop of ['evil.com/', 'evil.com#', 'a@evil.com', 'evil.com:8080', 'evil.com?', 'evil%2ecom', 'a b', 'evil.com\\x']) {
      const error = thrown(() => buildRequest(shopify, 'orders.get', { order_id: 1 }, { variables: { shop } }));
      expect(error.code, shop).toBe('PB_CALL_BAD_TARGET');
      expect(error.message).toContain('"shop"');
      expect(error.message).not.toContain(shop);
    }
    expect(thrown(() => buildRequest(shopify, 'orders.get', { order_id: 1 }, { variables: {} })).code).toBe('PB_CALL_BAD_TARGET');
  });

  it('checks a variable against its pattern (Twilio AccountSid) and percent-encodes it in the path', () => {
    const twilio = bundledProvider('twilio');
    const request = buildRequest(twilio, 'messages.fetch', { Sid: 'SM' + 'a'.repeat(32) }, { variables: { AccountSid: accountSid } });
    expect(request.url.pathname).toBe(`/2010-04-01/Accounts/${accountSid}/Messages/SM${'a'.repeat(32)}.json`);
    expect(thrown(() => buildRequest(twilio, 'messages.fetch', { Sid: 'SM1' }, { variables: { AccountSid: '../x' } })).code).toBe('PB_CALL_BAD_TARGET');
  });

  it('pins the API version in the path (Shopify), a header (Stripe, GitHub) or the query', () => {
    const shopify = bundledProvider('shopify');
    const pinned = buildRequest(shopify, 'orders.get', { order_id: 1 }, { variables: { shop: 's' }, apiVersion: '2025-10' });
    expect(pinned.url.pathname).toBe('/admin/api/2025-10/orders/1.json');
    expect(thrown(() => buildRequest(shopify, 'orders.get', { order_id: 1 }, { variables: { shop: 's' }, apiVersion: '../x' })).code).toBe('PB_CONNECTION_API_VERSION');

    const stripe = buildRequest(bundledProvider('stripe'), 'customers.retrieve', { customer: 'cus_1' }, target);
    expect(stripe.headers['stripe-version']).toBe('2023-08-16');
    const github = buildRequest(bundledProvider('github'), 'issues.get', { owner: 'o', repo: 'r', issue_number: 1 }, { variables: {}, apiVersion: '2026-03-10' });
    expect(github.headers['x-github-api-version']).toBe('2026-03-10');

    const azure = provider({ apiVersion: { in: 'query', name: 'api-version', default: '2024-02-01' } }, { list: { summary: 's', method: 'GET', path: '/things', body: 'none', input: { type: 'object' } } });
    expect(buildRequest(azure, 'list', {}, target).url.search).toBe('?api-version=2024-02-01');
  });

  it('chooses the override, then the operation, then the connection, then the provider base URL', () => {
    const acme = provider({}, {
      own: { summary: 's', method: 'GET', path: '/x', body: 'none', baseUrl: 'https://roads.acme.test/v1', input: { type: 'object' } },
      plain: { summary: 's', method: 'GET', path: '/x', body: 'none', input: { type: 'object' } },
    });
    expect(buildRequest(acme, 'own', {}, target).url.href).toBe('https://roads.acme.test/v1/x');
    expect(buildRequest(acme, 'own', {}, { variables: {}, baseUrl: 'https://sandbox.acme.test' }).url.href).toBe('https://roads.acme.test/v1/x');
    expect(buildRequest(acme, 'plain', {}, { variables: {}, baseUrl: 'https://sandbox.acme.test/' }).url.href).toBe('https://sandbox.acme.test/x');
    expect(buildRequest(acme, 'own', {}, { variables: {}, overrideBaseUrl: 'http://127.0.0.1:4010' }).url.href).toBe('http://127.0.0.1:4010/x');
    const generic = provider({ baseUrl: undefined }, { plain: { summary: 's', method: 'GET', path: '/x', body: 'none', input: { type: 'object' } } });
    expect(thrown(() => buildRequest(generic, 'plain', {}, target)).code).toBe('PB_CALL_BAD_TARGET');
    for (const bad of ['ftp://x.test', 'https://user:pw@x.test', 'https://x.test/?a=1', 'not a url']) {
      expect(thrown(() => buildRequest(generic, 'plain', {}, { variables: {}, baseUrl: bad })).code, bad).toBe('PB_CALL_BAD_TARGET');
    }
    expect(thrown(() => buildRequest(acme, 'nope', {}, target)).code).toBe('PB_REF_UNKNOWN_OPERATION');
  });

  it('puts query inputs in the query, checks required ones, and refuses inputs with no place in a GET', () => {
    const stripe = bundledProvider('stripe');
    const request = buildRequest(stripe, 'paymentIntents.list', { customer: 'cus_1', created: { gte: 1692316800 }, limit: 20 }, target);
    expect(request.url.search).toBe('?created[gte]=1692316800&customer=cus_1&limit=20');
    expect(request.body).toBeUndefined();
    expect(request.headers['content-type']).toBeUndefined();
    const retrieve = buildRequest(stripe, 'charges.retrieve', { charge: 'ch_1', expand: ['balance_transaction', 'customer'] }, target);
    expect(retrieve.url.search).toBe('?expand[0]=balance_transaction&expand[1]=customer');
    expect(thrown(() => buildRequest(stripe, 'customers.search', {}, target)).message).toMatch(/input "query" is required/);
    const error = thrown(() => buildRequest(stripe, 'customers.retrieve', { customer: 'cus_1', surprise: 1 }, target));
    expect(error.code).toBe('PB_CALL_BAD_INPUT');
    expect(error.message).toContain('"surprise"');
  });
});

describe('buildRequest: headers', () => {
  const acme = provider(
    { headers: { 'PLAID-CLIENT-ID': '{clientId}', 'X-Static': 'yes' }, variables: { clientId: { description: 'client' } }, idempotency: { header: 'Idempotency-Key' } },
    {
      create: { summary: 's', method: 'POST', path: '/things', body: 'json', headers: { requestId: 'X-Request-Id', tags: 'X-Tags' }, fixed: { headers: { 'X-Amz-Target': 'Acme.Create' } }, input: { type: 'object', properties: { requestId: { type: 'string' }, tags: { type: 'array' }, name: { type: 'string' } }, required: ['requestId'] } },
      read: { summary: 's', method: 'GET', path: '/things', body: 'none', input: { type: 'object' } },
      put: { summary: 's', method: 'PUT', path: '/things', idempotent: true, input: { type: 'object' } },
      notIdempotent: { summary: 's', method: 'POST', path: '/things', idempotent: false, input: { type: 'object' } },
    },
  );
  const withClient: CallTarget = { variables: { clientId: 'client-123' } };

  it('sends provider headers with variables, fixed headers and header inputs in lower case', () => {
    const request = buildRequest(acme, 'create', { requestId: 'r-1', tags: ['a', 'b'], name: 'n' }, withClient);
    expect(request.headers).toMatchObject({
      'plaid-client-id': 'client-123',
      'x-static': 'yes',
      'x-amz-target': 'Acme.Create',
      'x-request-id': 'r-1',
      'x-tags': 'a, b',
      accept: 'application/json',
      'content-type': 'application/json',
    });
    expect(JSON.parse(bodyText(request))).toEqual({ name: 'n' });
    expect(thrown(() => buildRequest(acme, 'create', { name: 'n' }, withClient)).message).toMatch(/input "requestId" is required/);
  });

  it('refuses a header value with a line break', () => {
    const error = thrown(() => buildRequest(acme, 'create', { requestId: 'r\r\nX-Evil: 1' }, withClient));
    expect(error.code).toBe('PB_CALL_BAD_INPUT');
    expect(error.message).not.toContain('Evil');
  });

  it('sends the idempotency key on POST and idempotent operations only', () => {
    const key = 'idem-6f1c';
    expect(buildRequest(acme, 'create', { requestId: 'r' }, withClient, { idempotencyKey: key }).headers['idempotency-key']).toBe(key);
    expect(buildRequest(acme, 'put', {}, withClient, { idempotencyKey: key }).headers['idempotency-key']).toBe(key);
    expect(buildRequest(acme, 'read', {}, withClient, { idempotencyKey: key }).headers['idempotency-key']).toBeUndefined();
    expect(buildRequest(acme, 'notIdempotent', {}, withClient, { idempotencyKey: key }).headers['idempotency-key']).toBeUndefined();
    expect(buildRequest(acme, 'create', { requestId: 'r' }, withClient).headers['idempotency-key']).toBeUndefined();
    const stripe = buildRequest(bundledProvider('stripe'), 'refunds.create', { payment_intent: 'pi_1' }, target, { idempotencyKey: key });
    expect(stripe.headers['idempotency-key']).toBe(key);
  });
});

describe('buildRequest: bodies', () => {
  it('encodes Stripe form bodies with nesting, indexes, booleans, and null dropped', () => {
    const request = buildRequest(
      bundledProvider('stripe'),
      'paymentIntents.create',
      { amount: 4999, currency: 'usd', metadata: { order_id: '6735' }, payment_method_types: ['card'], confirm: false, description: null, expand: ['customer'] },
      target,
    );
    expect(request.method).toBe('POST');
    expect(request.url.href).toBe('https://api.stripe.com/v1/payment_intents');
    expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(bodyText(request)).toBe('amount=4999&currency=usd&metadata[order_id]=6735&payment_method_types[0]=card&confirm=false&expand[0]=customer');
  });

  it('repeats Twilio form arrays as the spec says (style: form)', () => {
    const request = buildRequest(
      bundledProvider('twilio'),
      'messages.create',
      { To: '+15555550123', From: '+15555550100', Body: 'Hi & bye', MediaUrl: ['https://x.test/a.png', 'https://x.test/b.png'] },
      { variables: { AccountSid: accountSid } },
    );
    expect(bodyText(request)).toBe(
      'To=%2B15555550123&From=%2B15555550100&Body=Hi%20%26%20bye&MediaUrl=https%3A%2F%2Fx.test%2Fa.png&MediaUrl=https%3A%2F%2Fx.test%2Fb.png',
    );
    expect(new URLSearchParams(bodyText(request)).getAll('MediaUrl')).toHaveLength(2);
  });

  it('sends an empty form for a POST without fields, and no body for an empty DELETE', () => {
    const cancel = buildRequest(bundledProvider('stripe'), 'paymentIntents.cancel', { intent: 'pi_1' }, target);
    expect(cancel.body).toBe('');
    const twilioDelete = buildRequest(bundledProvider('twilio'), 'messages.delete', { Sid: 'SM' + 'b'.repeat(32) }, { variables: { AccountSid: accountSid } });
    expect(twilioDelete.method).toBe('DELETE');
    expect(twilioDelete.body).toBeUndefined();
  });

  it('uses the operation content type and merges fixed body fields under the inputs', () => {
    const aws = provider({}, {
      send: { summary: 's', method: 'POST', path: '/', body: 'json', contentType: 'application/x-amz-json-1.0', fixed: { headers: { 'X-Amz-Target': 'AmazonSQS.SendMessage' }, body: { Version: 'fixed', Kept: 1 } }, input: { type: 'object', properties: { QueueUrl: { type: 'string' }, Version: { type: 'string' } } } },
      publish: { summary: 's', method: 'POST', path: '/', body: 'form', responseFormat: 'xml', fixed: { body: { Action: 'Publish', Version: '2010-03-31' } }, input: { type: 'object', properties: { TopicArn: { type: 'string' }, Message: { type: 'string' } } } },
    });
    const send = buildRequest(aws, 'send', { QueueUrl: 'https://q', Version: 'mine' }, target);
    expect(send.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(send.headers['x-amz-target']).toBe('AmazonSQS.SendMessage');
    expect(JSON.parse(bodyText(send))).toEqual({ Version: 'mine', Kept: 1, QueueUrl: 'https://q' });
    const publish = buildRequest(aws, 'publish', { TopicArn: 'arn:aws:sns:us-east-1:123456789012:t', Message: 'hello world' }, target);
    expect(bodyText(publish)).toBe('Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Message=hello%20world');
    expect(publish.headers.accept).toBe('application/xml, text/xml');
  });

  it('encodes multipart bodies that a standard parser reads back, with a stable boundary', async () => {
    const openai = provider({}, {
      upload: { summary: 's', method: 'POST', path: '/files', body: 'multipart', input: { type: 'object', properties: { file: { type: 'object' }, purpose: { type: 'string' }, raw: { type: 'string', contentEncoding: 'base64' }, meta: { type: 'object' }, n: { type: 'integer' }, tags: { type: 'array' } } } },
    });
    const bytes = Buffer.from([0, 1, 2, 255, 13, 10, 45, 45]);
    const inputs = { file: { filename: 'data "x".jsonl', contentType: 'application/jsonl', data: bytes.toString('base64') }, purpose: 'batch', raw: Buffer.from('raw').toString('base64'), meta: { a: 1 }, n: 3, tags: ['x', 'y'] };
    const request = buildRequest(openai, 'upload', inputs, target);
    const again = buildRequest(openai, 'upload', inputs, target);
    expect(Buffer.from(request.body as Uint8Array).equals(Buffer.from(again.body as Uint8Array))).toBe(true);
    const contentType = request.headers['content-type']!;
    expect(contentType).toMatch(/^multipart\/form-data; boundary=patchbay-[0-9a-f]{40}$/);
    const form = await new Response(request.body as Uint8Array, { headers: { 'content-type': contentType } }).formData();
    const file = form.get('file') as File;
    expect(file.name).toBe('data "x".jsonl');
    expect(file.type).toBe('application/jsonl');
    expect(Buffer.from(await file.arrayBuffer()).equals(bytes)).toBe(true);
    expect(form.get('purpose')).toBe('batch');
    expect(Buffer.from(await (form.get('raw') as File).arrayBuffer()).toString()).toBe('raw');
    expect(form.get('n')).toBe('3');
    expect(form.getAll('tags')).toEqual(['x', 'y']);
    expect(form.get('meta')).toBe('{"a":1}');
    const bad = thrown(() => buildRequest(openai, 'upload', { raw: 'not base64!' }, target));
    expect(bad.message).toContain('"raw"');
  });

  it('encodes XML bodies with escaping, and refuses characters XML cannot carry', () => {
    const s3 = provider({}, { tag: { summary: 's', method: 'PUT', path: '/', body: 'xml', input: { type: 'object', properties: { Tagging: { type: 'object' } } } } });
    const request = buildRequest(s3, 'tag', { Tagging: { TagSet: { Tag: [{ Key: 'a<b', Value: 'x & "y"' }, { Key: 'c', Value: "it's" }] } } }, target);
    expect(request.headers['content-type']).toBe('application/xml');
    expect(bodyText(request)).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><Tagging><TagSet><Tag><Key>a&lt;b</Key><Value>x &amp; &quot;y&quot;</Value></Tag><Tag><Key>c</Key><Value>it&apos;s</Value></Tag></TagSet></Tagging>',
    );
    expect(thrown(() => buildRequest(s3, 'tag', { Tagging: { Key: 'a\u0000b' } }, target)).code).toBe('PB_CALL_BAD_INPUT');
    expect(thrown(() => buildRequest(s3, 'tag', { Tagging: { 'bad name': 'x' } }, target)).code).toBe('PB_CALL_BAD_INPUT');
  });

  it('wraps SOAP 1.1 and 1.2 calls in their envelopes with the right headers', () => {
    const weather = provider({ style: 'soap' }, {
      v11: { summary: 's', method: 'POST', path: '/svc', body: 'soap', soap: { action: 'http://ws.example/GetWeather', namespace: 'http://ws.example/', element: 'GetWeather', version: '1.1' }, input: { type: 'object', properties: { City: { type: 'string' } } } },
      v12: { summary: 's', method: 'POST', path: '/svc', body: 'soap', soap: { action: 'http://ws.example/GetWeather', namespace: 'http://ws.example/', version: '1.2' }, input: { type: 'object', properties: { City: { type: 'string' } } } },
    });
    const v11 = buildRequest(weather, 'v11', { City: 'Zürich <&>' }, target);
    expect(v11.headers).toMatchObject({ 'content-type': 'text/xml; charset=utf-8', soapaction: '"http://ws.example/GetWeather"', accept: 'text/xml' });
    expect(bodyText(v11)).toBe(
      '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="http://ws.example/"><soap:Body><ns:GetWeather><City>Zürich &lt;&amp;&gt;</City></ns:GetWeather></soap:Body></soap:Envelope>',
    );
    const v12 = buildRequest(weather, 'v12', { City: 'Bern' }, target);
    expect(v12.headers['content-type']).toBe('application/soap+xml; charset=utf-8; action="http://ws.example/GetWeather"');
    expect(v12.headers.soapaction).toBeUndefined();
    expect(bodyText(v12)).toContain('<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:ns="http://ws.example/"><soap:Body><ns:GetWeather><City>Bern</City></ns:GetWeather>');
  });

  it('builds generic SOAP calls from the action, body, namespace and version inputs', () => {
    const soap = bundledProvider('soap');
    const request = buildRequest(soap, 'call', { action: 'urn:Add', body: '<ns:Add><a>1</a></ns:Add>', namespace: 'urn:calc', version: '1.2' }, { variables: {}, baseUrl: 'https://calc.example/soap' });
    expect(request.url.href).toBe('https://calc.example/soap');
    expect(request.headers['content-type']).toBe('application/soap+xml; charset=utf-8; action="urn:Add"');
    expect(bodyText(request)).toContain('xmlns:ns="urn:calc"><soap:Body><ns:Add><a>1</a></ns:Add></soap:Body>');
    expect(thrown(() => buildRequest(soap, 'call', { action: 'a"b', body: '<x/>' }, { variables: {}, baseUrl: 'https://calc.example' })).code).toBe('PB_CALL_BAD_INPUT');
  });

  it('sends GraphQL documents with the inputs as variables, and generic queries as given', () => {
    const shopify = bundledProvider('shopify');
    const op = shopify.spec.operations['tags.add']!;
    const request = buildRequest(shopify, 'tags.add', { id: 'gid://shopify/Order/1', tags: ['vip'] }, { variables: { shop: 's' } });
    expect(request.url.pathname).toBe('/admin/api/2026-07/graphql.json');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(bodyText(request))).toEqual({ query: op.graphql!.document, variables: { id: 'gid://shopify/Order/1', tags: ['vip'] } });

    const graphql = bundledProvider('graphql');
    const generic = buildRequest(graphql, 'query', { query: 'query Q { a }', variables: { x: 1 }, operationName: 'Q' }, { variables: {}, baseUrl: 'https://gql.example/graphql' });
    expect(JSON.parse(bodyText(generic))).toEqual({ query: 'query Q { a }', variables: { x: 1 }, operationName: 'Q' });
    expect(generic.url.href).toBe('https://gql.example/graphql');
  });

  it('sends a raw body as text, or as bytes when its schema says base64', () => {
    const s3 = provider({}, {
      put: { summary: 's', method: 'PUT', path: '/{Bucket}/{Key+}', body: 'raw', rawBody: 'Body', headers: { ContentType: 'Content-Type' }, input: { type: 'object', properties: { Bucket: { type: 'string' }, Key: { type: 'string' }, Body: { type: 'string', contentEncoding: 'base64' }, ContentType: { type: 'string' } } } },
      text: { summary: 's', method: 'POST', path: '/t', body: 'raw', rawBody: 'Body', contentType: 'text/csv', input: { type: 'object', properties: { Body: { type: 'string' } } } },
    });
    const put = buildRequest(s3, 'put', { Bucket: 'b', Key: 'k.bin', Body: Buffer.from([1, 2, 3]).toString('base64') }, target);
    expect(Buffer.from(put.body as Uint8Array)).toEqual(Buffer.from([1, 2, 3]));
    expect(put.headers['content-type']).toBe('application/octet-stream');
    const typed = buildRequest(s3, 'put', { Bucket: 'b', Key: 'k.json', Body: 'e30=', ContentType: 'application/json' }, target);
    expect(typed.headers['content-type']).toBe('application/json');
    const text = buildRequest(s3, 'text', { Body: 'a,b\n1,2' }, target);
    expect(text.body).toBe('a,b\n1,2');
    expect(text.headers['content-type']).toBe('text/csv');
    expect(buildRequest(s3, 'text', {}, target).body).toBe('');
    const strict = provider({}, { text: { summary: 's', method: 'POST', path: '/t', body: 'raw', rawBody: 'Body', input: { type: 'object', properties: { Body: { type: 'string' } }, required: ['Body'] } } });
    expect(thrown(() => buildRequest(strict, 'text', {}, target)).message).toMatch(/input "Body" is required/);
  });

  it('takes method, query, headers and body from inputs for generic requests, never credentials', () => {
    const http = provider({ generic: true, baseUrl: undefined }, {
      request: {
        summary: 's',
        path: '{path+}',
        body: 'json',
        requestFromInputs: { method: 'method', query: 'query', headers: 'headers', body: 'body', contentType: 'contentType' },
        input: { type: 'object', properties: { method: { type: 'string' }, path: { type: 'string' }, query: { type: 'object' }, headers: { type: 'object' }, body: {}, contentType: { type: 'string' } } },
      },
    });
    const at: CallTarget = { variables: {}, baseUrl: 'https://api.example.com/base' };
    const request = buildRequest(http, 'request', { method: 'patch', path: '/v2/orders/42', query: { tag: ['a', 'b'], q: 'x y' }, headers: { 'X-Trace': 't1' }, body: { status: 'shipped' } }, at);
    expect(request.method).toBe('PATCH');
    expect(request.url.href).toBe('https://api.example.com/base/v2/orders/42?tag=a&tag=b&q=x%20y');
    expect(request.headers['x-trace']).toBe('t1');
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(bodyText(request))).toEqual({ status: 'shipped' });
    const form = buildRequest(http, 'request', { method: 'POST', path: '/f', body: { a: { b: 1 } }, contentType: 'form' }, at);
    expect(bodyText(form)).toBe('a[b]=1');
    const text = buildRequest(http, 'request', { method: 'POST', path: '/t', body: 'plain', contentType: 'text' }, at);
    expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
    const get = buildRequest(http, 'request', { method: 'GET', path: '/g' }, at);
    expect(get.body).toBeUndefined();
    for (const name of ['Authorization', 'host', 'Cookie', 'Proxy-Authorization', 'Content-Length']) {
      const error = thrown(() => buildRequest(http, 'request', { method: 'GET', path: '/', headers: { [name]: 'x' } }, at));
      expect(error.code, name).toBe('PB_CALL_BAD_INPUT');
    }
    expect(thrown(() => buildRequest(http, 'request', { method: 'GET', path: '/../admin' }, at)).code).toBe('PB_CALL_BAD_INPUT');
    expect(thrown(() => buildRequest(http, 'request', { method: 'GET', path: '/g', body: { a: 1 } }, at)).code).toBe('PB_CALL_BAD_INPUT');
    expect(thrown(() => buildRequest(http, 'request', { method: 'TRACE', path: '/' }, at)).code).toBe('PB_CALL_BAD_INPUT');
  });
});

describe('every bundled operation with an example builds', () => {
  const providers = loadBundledProviders();
  const cases: [string, string][] = [];
  for (const [name, document] of providers) {
    for (const [operation, definition] of Object.entries(document.spec.operations)) {
      if (definition.example !== undefined) cases.push([name, operation]);
    }
  }

  it.each(cases)('%s %s', (name, operation) => {
    const document = providers.get(name)!;
    const variables: Record<string, string> = {};
    for (const [variable, definition] of Object.entries(document.spec.variables ?? {})) {
      variables[variable] = definition.examples?.[0] ?? definition.default ?? 'example';
    }
    const at: CallTarget = { variables, ...(document.spec.generic ? { baseUrl: 'https://api.example.com' } : {}) };
    const request = buildRequest(document, operation, document.spec.operations[operation]!.example as Record<string, unknown>, at, { idempotencyKey: 'k-1' });
    expect(['http:', 'https:']).toContain(request.url.protocol);
    expect(request.headers.accept).toBeTruthy();
  });
});

describe('nextPageRequest', () => {
  const response = (headers: Record<string, string> = {}): InboundResponse => ({ status: 200, headers, body: new Uint8Array(), url: new URL('https://x.test'), durationMs: 1 });

  it('follows Slack cursors until the cursor is empty', () => {
    const slack = bundledProvider('slack');
    const inputs = { limit: 2 };
    const request = buildRequest(slack, 'conversations.list', inputs, target);
    const next = nextPageRequest({ provider: slack, operationName: 'conversations.list', inputs, target, request, response: response(), body: { ok: true, channels: [], response_metadata: { next_cursor: 'dGVhbTpDMDYx' } } });
    expect(next?.url.searchParams.get('cursor')).toBe('dGVhbTpDMDYx');
    expect(next?.url.searchParams.get('limit')).toBe('2');
    expect(nextPageRequest({ provider: slack, operationName: 'conversations.list', inputs, target, request, response: response(), body: { ok: true, response_metadata: { next_cursor: '' } } })).toBeUndefined();
    const stuck = { provider: slack, operationName: 'conversations.list', inputs: { cursor: 'same' }, target, request, response: response(), body: { response_metadata: { next_cursor: 'same' } } };
    expect(thrown(() => nextPageRequest(stuck)).code).toBe('PB_PROVIDER_BAD_PAGE');
  });

  it('pages Stripe lists by the last id while has_more is true', () => {
    const stripe = bundledProvider('stripe');
    const inputs = { limit: 2 };
    const request = buildRequest(stripe, 'customers.list', inputs, target);
    const body = { object: 'list', data: [{ id: 'cus_1' }, { id: 'cus_2' }], has_more: true };
    const next = nextPageRequest({ provider: stripe, operationName: 'customers.list', inputs, target, request, response: response(), body });
    expect(next?.url.search).toBe('?limit=2&starting_after=cus_2');
    expect(nextPageRequest({ provider: stripe, operationName: 'customers.list', inputs, target, request, response: response(), body: { ...body, has_more: false } })).toBeUndefined();
  });

  it('follows GitHub Link headers on the same origin only', () => {
    const github = bundledProvider('github');
    const inputs = { owner: 'o', repo: 'r', per_page: 2 };
    const request = buildRequest(github, 'issues.listForRepo', inputs, target);
    const link = '<https://api.github.com/repositories/1/issues?per_page=2&page=2>; rel="next", <https://api.github.com/repositories/1/issues?per_page=2&page=5>; rel="last"';
    const next = nextPageRequest({ provider: github, operationName: 'issues.listForRepo', inputs, target, request, response: response({ link }), body: [] });
    expect(next?.url.href).toBe('https://api.github.com/repositories/1/issues?per_page=2&page=2');
    expect(next?.headers['x-github-api-version']).toBe('2022-11-28');
    expect(nextPageRequest({ provider: github, operationName: 'issues.listForRepo', inputs, target, request, response: response({ link: '<https://api.github.com/x?page=1>; rel="prev"' }), body: [] })).toBeUndefined();
    const away = { provider: github, operationName: 'issues.listForRepo', inputs, target, request, response: response({ link: '<https://evil.example/steal>; rel="next"' }), body: [] };
    expect(thrown(() => nextPageRequest(away)).code).toBe('PB_PROVIDER_BAD_PAGE');
  });

  it('parses Link headers with several relations and spacing', () => {
    expect(nextLink('<https://a/1>; rel="prev first", <https://a/3>;rel=next')).toBe('https://a/3');
    expect(nextLink('<https://a/2>; title="x,y"; rel="next"')).toBe('https://a/2');
    expect(nextLink(undefined)).toBeUndefined();
  });

  it('follows Twilio next_page_uri, resolved against the request origin', () => {
    const twilio = bundledProvider('twilio');
    const at: CallTarget = { variables: { AccountSid: accountSid } };
    const inputs = { PageSize: 50 };
    const request = buildRequest(twilio, 'messages.list', inputs, at);
    const nextUri = `/2010-04-01/Accounts/${accountSid}/Messages.json?PageSize=50&Page=1&PageToken=PAMM1`;
    const next = nextPageRequest({ provider: twilio, operationName: 'messages.list', inputs, target: at, request, response: response(), body: { messages: [], next_page_uri: nextUri } });
    expect(next?.url.href).toBe(`https://api.twilio.com${nextUri}`);
    expect(nextPageRequest({ provider: twilio, operationName: 'messages.list', inputs, target: at, request, response: response(), body: { messages: [], next_page_uri: null } })).toBeUndefined();
  });

  it('counts pages and offsets, stopping on a short or empty page', () => {
    const acme = provider({ pagination: { style: 'offset', itemsPath: 'members', pageParam: 'offset', limitParam: 'count' } }, {
      list: { summary: 's', method: 'GET', path: '/m', body: 'none', query: ['offset', 'count'], input: { type: 'object', properties: { offset: { type: 'integer' }, count: { type: 'integer' } } } },
      pages: { summary: 's', method: 'GET', path: '/p', body: 'none', query: ['page'], pagination: { style: 'page', pageParam: 'page', itemsPath: 'items' }, input: { type: 'object', properties: { page: { type: 'integer' } } } },
    });
    const inputs = { count: 2 };
    const request = buildRequest(acme, 'list', inputs, target);
    const full = nextPageRequest({ provider: acme, operationName: 'list', inputs, target, request, response: response(), body: { members: [1, 2] } });
    expect(full?.url.search).toBe('?offset=2&count=2');
    expect(nextPageRequest({ provider: acme, operationName: 'list', inputs, target, request, response: response(), body: { members: [1] } })).toBeUndefined();
    const pages = nextPageRequest({ provider: acme, operationName: 'pages', inputs: {}, target, request: buildRequest(acme, 'pages', {}, target), response: response(), body: { items: [1] } });
    expect(pages?.url.search).toBe('?page=2');
    expect(nextPageRequest({ provider: acme, operationName: 'pages', inputs: { page: 2 }, target, request, response: response(), body: { items: [] } })).toBeUndefined();
  });
});
