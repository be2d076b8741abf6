import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PatchbayError } from '../../engine/diag/errors.js';
import type { InboundResponse } from '../../engine/http/request.js';
import { ManualClock } from '../../engine/lib/clock.js';
import { parseXml, readResponse, type ProviderFailure } from '../../engine/providers/response-reader.js';
import { bundledProvider, providerDocument as provider } from './bundled.js';

/** One canned answer, served at `/<name>`. */
interface Answer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

const answers = new Map<string, Answer>();
let server: Server;
let origin: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = answers.get(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
    if (answer === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Serves `answer` and fetches it over real HTTP into an InboundResponse. */
async function fetchAnswer(answer: Answer, query = ''): Promise<InboundResponse> {
  const name = `a${answers.size}`;
  answers.set(name, answer);
  const url = new URL(`${origin}/${name}${query}`);
  const started = Date.now();
  const response = await request(url, { method: 'GET' });
  const body = new Uint8Array(await response.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { status: response.statusCode, headers, body, url, durationMs: Date.now() - started };
}

const json = (status: number, value: unknown, headers: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(value),
});

async function failure(fn: () => Promise<unknown> | unknown): Promise<PatchbayError & { cause: ProviderFailure }> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof PatchbayError) return error as PatchbayError & { cause: ProviderFailure };
    throw error;
  }
  throw new Error('expected a PatchbayError');
}

describe('readResponse: success', () => {
  it('parses JSON, and gives null for an empty JSON answer', async () => {
    const stripe = bundledProvider('stripe');
    expect(readResponse(stripe, 'customers.retrieve', await fetchAnswer(json(200, { id: 'cus_1', object: 'customer' })))).toEqual({ id: 'cus_1', object: 'customer' });
    expect(readResponse(bundledProvider('github'), 'repos.createDispatchEvent', await fetchAnswer({ status: 204 }))).toBeNull();
  });

  it('refuses a 2xx body that does not parse as its format', async () => {
    const error = await failure(async () => readResponse(bundledProvider('stripe'), 'customers.retrieve', await fetchAnswer({ status: 200, body: '<html>oops' })));
    expect(error.code).toBe('PB_HTTP_MALFORMED_BODY');
    expect(error.retry).toBe('terminal');
    expect(error.message).toContain('stripe.customers.retrieve');
  });

  it('parses AWS query XML (SNS Publish) without namespace prefixes, ids kept as text', async () => {
    const sns = provider({ errors: { codePath: 'ErrorResponse.Error.Code', messagePath: 'ErrorResponse.Error.Message' } }, {
      publish: { summary: 's', method: 'POST', path: '/', body: 'form', responseFormat: 'xml', input: { type: 'object' } },
    });
    const xml = `<?xml version="1.0"?>
<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult><MessageId>00567c2b-0e1b-5b2a-8d1c-2f6d5c4e0001</MessageId><SequenceNumber>0010</SequenceNumber></PublishResult>
  <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata>
</PublishResponse>`;
    const body = readResponse(sns, 'publish', await fetchAnswer({ status: 200, headers: { 'content-type': 'text/xml' }, body: xml }));
    expect(body).toEqual({
      PublishResponse: {
        PublishResult: { MessageId: '00567c2b-0e1b-5b2a-8d1c-2f6d5c4e0001', SequenceNumber: '0010' },
        ResponseMetadata: { RequestId: 'f187a3c1-376f-11df-8963-01868b7c937a' },
      },
    });
    const errorXml = '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>Invalid parameter: TopicArn</Message></Error><RequestId>r1</RequestId></ErrorResponse>';
    const error = await failure(async () => readResponse(sns, 'publish', await fetchAnswer({ status: 400, headers: { 'content-type': 'text/xml' }, body: errorXml })));
    expect(error.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(error.cause).toEqual({ status: 400, providerCode: 'InvalidParameter', providerMessage: 'Invalid parameter: TopicArn' });
    expect(error.message).toContain('InvalidParameter: Invalid parameter: TopicArn');
  });

  it('refuses XML with a DOCTYPE or that is not well-formed', async () => {
    expect(() => parseXml('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')).toThrow(/DOCTYPE/);
    expect(() => parseXml('<a><b></a>')).toThrow(/not well-formed/);
    const sns = provider({}, { publish: { summary: 's', method: 'POST', path: '/', body: 'form', responseFormat: 'xml', input: { type: 'object' } } });
    expect((await failure(async () => readResponse(sns, 'publish', await fetchAnswer({ status: 200, body: '<a><b></a>' })))).code).toBe('PB_HTTP_MALFORMED_BODY');
  });

  it('returns text, base64 bytes, or status and headers, as the format says', async () => {
    const files = provider({}, {
      text: { summary: 's', method: 'GET', path: '/t', body: 'none', responseFormat: 'text', input: { type: 'object' } },
      binary: { summary: 's', method: 'GET', path: '/b', body: 'none', responseFormat: 'binary', input: { type: 'object' } },
      empty: { summary: 's', method: 'PUT', path: '/e', body: 'raw', responseFormat: 'empty', input: { type: 'object' } },
    });
    expect(readResponse(files, 'text', await fetchAnswer({ status: 200, body: 'a,b\n1,2' }))).toBe('a,b\n1,2');
    expect(readResponse(files, 'binary', await fetchAnswer({ status: 200, body: Buffer.from([0, 255, 1]) }))).toBe('AP8B');
    const empty = readResponse(files, 'empty', await fetchAnswer({ status: 200, headers: { etag: '"abc"' } })) as { status: number; headers: Record<string, string> };
    expect(empty.status).toBe(200);
    expect(empty.headers.etag).toBe('"abc"');
  });
});

describe('readResponse: generic requests', () => {
  it('answers the http provider with status, headers and a JSON or text body', async () => {
    const http = bundledProvider('http');
    const parsed = readResponse(http, 'request', await fetchAnswer(json(201, { id: 7 }, { 'x-request-id': 'r1' }))) as { status: number; headers: Record<string, string>; body: unknown };
    expect(parsed.status).toBe(201);
    expect(parsed.headers['x-request-id']).toBe('r1');
    expect(parsed.body).toEqual({ id: 7 });
    const problem = readResponse(http, 'request', await fetchAnswer({ status: 200, headers: { 'content-type': 'application/problem+json' }, body: '{"title":"x"}' })) as { body: unknown };
    expect(problem.body).toEqual({ title: 'x' });
    const text = readResponse(http, 'request', await fetchAnswer({ status: 200, headers: { 'content-type': 'text/csv' }, body: 'a,b' })) as { body: unknown };
    expect(text.body).toBe('a,b');
    expect((readResponse(http, 'request', await fetchAnswer({ status: 204 })) as { body: unknown }).body).toBeNull();
    expect((await failure(async () => readResponse(http, 'request', await fetchAnswer({ status: 200, headers: { 'content-type': 'application/json' }, body: '{' })))).code).toBe('PB_HTTP_MALFORMED_BODY');
    const refused = await failure(async () => readResponse(http, 'request', await fetchAnswer(json(404, { error: 'no such order' }))));
    expect(refused.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(refused.message).toContain('http.request: request http://127.0.0.1:');
  });
});

describe('readResponse: provider errors', () => {
  it('reads Stripe error objects: a declined card is terminal, a lock timeout or 409 retries', async () => {
    const stripe = bundledProvider('stripe');
    const declined = await failure(async () =>
      readResponse(stripe, 'paymentIntents.create', await fetchAnswer(json(402, { error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' } }))),
    );
    expect(declined.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(declined.retry).toBe('terminal');
    expect(declined.message).toContain('stripe.paymentIntents.create: POST');
    expect(declined.message).toContain('answered 402: card_declined: Your card was declined.');
    expect(declined.cause).toEqual({ status: 402, providerCode: 'card_declined', providerMessage: 'Your card was declined.' });

    const locked = await failure(async () => readResponse(stripe, 'customers.update', await fetchAnswer(json(400, { error: { code: 'lock_timeout', message: 'Try again.' } }))));
    expect(locked.code).toBe('PB_PROVIDER_ERROR_RETRYABLE');
    expect(locked.retry).toBe('transient');
    const conflict = await failure(async () => readResponse(stripe, 'customers.update', await fetchAnswer(json(409, { error: { message: 'Keys for idempotent requests can only be used with the same parameters.' } }))));
    expect(conflict.code).toBe('PB_PROVIDER_ERROR_RETRYABLE');
  });

  it('reads Slack ok:false in a 200 as an error with its code; retries the listed ones', async () => {
    const slack = bundledProvider('slack');
    const notFound = await failure(async () => readResponse(slack, 'chat.postMessage', await fetchAnswer(json(200, { ok: false, error: 'channel_not_found' }))));
    expect(notFound.code).toBe('PB_PROVIDER_ERROR');
    expect(notFound.retry).toBe('terminal');
    expect(notFound.cause.providerCode).toBe('channel_not_found');
    expect(notFound.message).toMatch(/answered 200: channel_not_found \(ok is false\)$/);
    const limited = await failure(async () => readResponse(slack, 'chat.postMessage', await fetchAnswer(json(200, { ok: false, error: 'ratelimited' }, { 'retry-after': '3' }))));
    expect(limited.code).toBe('PB_PROVIDER_ERROR_RETRYABLE');
    expect(limited.retryAfterMs).toBe(3000);
    expect(readResponse(slack, 'chat.postMessage', await fetchAnswer(json(200, { ok: true, ts: '1.2' })))).toEqual({ ok: true, ts: '1.2' });
  });

  it('turns a 429 into PB_HTTP_RATE_LIMITED with the Retry-After delay or the reset header', async () => {
    const slack = bundledProvider('slack');
    const limited = await failure(async () => readResponse(slack, 'conversations.list', await fetchAnswer(json(429, { ok: false, error: 'ratelimited' }, { 'retry-after': '30' }))));
    expect(limited.code).toBe('PB_HTTP_RATE_LIMITED');
    expect(limited.retryAfterMs).toBe(30_000);

    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const github = bundledProvider('github');
    const reset = String(Math.floor(clock.now() / 1000) + 90);
    const headers = { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset };
    const limitedGithub = await failure(async () => readResponse(github, 'issues.get', await fetchAnswer(json(429, { message: 'API rate limit exceeded' }, headers)), clock));
    expect(limitedGithub.code).toBe('PB_HTTP_RATE_LIMITED');
    expect(limitedGithub.retryAfterMs).toBe(90_000);
    const dated = await failure(async () =>
      readResponse(github, 'issues.get', await fetchAnswer(json(429, { message: 'slow down' }, { 'retry-after': new Date(clock.now() + 5000).toUTCString() })), clock),
    );
    expect(dated.retryAfterMs).toBe(5000);
  });

  it('never retries OpenAI insufficient_quota although 429 is retryable', async () => {
    const openai = bundledProvider('openai');
    const quota = await failure(async () =>
      readResponse(openai, 'chat.completions.create', await fetchAnswer(json(429, { error: { message: 'You exceeded your current quota.', type: 'insufficient_quota', code: 'insufficient_quota' } }, { 'retry-after': '1' }))),
    );
    expect(quota.code).toBe('PB_PROVIDER_ERROR');
    expect(quota.retry).toBe('terminal');
    expect(quota.retryAfterMs).toBeUndefined();
    const rate = await failure(async () =>
      readResponse(openai, 'chat.completions.create', await fetchAnswer(json(429, { error: { message: 'Rate limit reached', code: 'rate_limit_exceeded' } }, { 'retry-after': '2' }))),
    );
    expect(rate.code).toBe('PB_HTTP_RATE_LIMITED');
    expect(rate.retryAfterMs).toBe(2000);
  });

  it('reads GraphQL errors inside a 200: Shopify THROTTLED retries, others do not', async () => {
    const shopify = bundledProvider('shopify');
    const throttled = await failure(async () =>
      readResponse(shopify, 'orders.search', await fetchAnswer(json(200, { errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED' } }], extensions: { cost: {} } }))),
    );
    expect(throttled.code).toBe('PB_PROVIDER_ERROR_RETRYABLE');
    expect(throttled.cause.providerCode).toBe('THROTTLED');
    const graphql = bundledProvider('graphql');
    const invalid = await failure(async () =>
      readResponse(graphql, 'query', await fetchAnswer(json(200, { data: null, errors: [{ message: "Field 'nope' doesn't exist on type 'Query'", extensions: { code: 'undefinedField' } }, { message: 'second' }] }))),
    );
    expect(invalid.code).toBe('PB_PROVIDER_ERROR');
    expect(invalid.cause.providerCode).toBe('undefinedField');
    expect(invalid.cause.providerMessage).toBe("Field 'nope' doesn't exist on type 'Query'");
    expect(readResponse(graphql, 'query', await fetchAnswer(json(200, { data: { a: 1 }, errors: [] })))).toEqual({ data: { a: 1 }, errors: [] });
  });

  it('reads Shopify REST error objects into a readable message', async () => {
    const shopify = bundledProvider('shopify');
    const error = await failure(async () => readResponse(shopify, 'orders.update', await fetchAnswer(json(422, { errors: { email: ['is invalid'], note: ['is too long'] } }))));
    expect(error.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(error.cause.providerMessage).toBe('email: is invalid; note: is too long');
  });

  it('reads Google Maps status strings: ZERO_RESULTS is a success, REQUEST_DENIED an error, OVER_QUERY_LIMIT retries', async () => {
    const maps = provider(
      { errors: { statusPath: 'status', okStatuses: ['OK', 'ZERO_RESULTS'], messagePath: 'error_message' }, retry: { errorCodes: ['OVER_QUERY_LIMIT', 'UNKNOWN_ERROR'] } },
      { geocode: { summary: 's', method: 'GET', path: '/maps/api/geocode/json', body: 'none', input: { type: 'object' } } },
    );
    expect(readResponse(maps, 'geocode', await fetchAnswer(json(200, { results: [], status: 'ZERO_RESULTS' })))).toEqual({ results: [], status: 'ZERO_RESULTS' });
    const apiKey = 'AIza' + 'Q'.repeat(35);
    const denied = await failure(async () =>
      readResponse(maps, 'geocode', await fetchAnswer(json(200, { results: [], status: 'REQUEST_DENIED', error_message: `The provided API key ${apiKey} is invalid.` }), `?address=x&key=${apiKey}`)),
    );
    expect(denied.code).toBe('PB_PROVIDER_ERROR');
    expect(denied.cause.providerCode).toBe('REQUEST_DENIED');
    expect(denied.message).toContain('REQUEST_DENIED: The provided API key');
    expect(denied.message).not.toContain(apiKey);
    expect(denied.message).not.toContain('key=');
    const busy = await failure(async () => readResponse(maps, 'geocode', await fetchAnswer(json(200, { status: 'OVER_QUERY_LIMIT' }))));
    expect(busy.code).toBe('PB_PROVIDER_ERROR_RETRYABLE');
  });

  it('reads AWS error codes from each protocol: the X-Amzn-ErrorType header (SES), a namespaced __type (SQS), XML (S3, SNS)', async () => {
    const aws = bundledProvider('aws');
    const ses = await failure(async () =>
      readResponse(aws, 'ses.sendEmail', await fetchAnswer(json(400, { message: 'Email address is not verified.' }, { 'x-amzn-errortype': 'MessageRejected:http://internal.amazon.com/coral/com.amazon.sesv2/' }))),
    );
    expect(ses.cause.providerCode).toBe('MessageRejected');
    expect(ses.message).toContain('Email address is not verified.');
    const sqs = await failure(async () =>
      readResponse(aws, 'sqs.sendMessage', await fetchAnswer(json(400, { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' }))),
    );
    expect(sqs.cause.providerCode).toBe('QueueDoesNotExist');
    const s3 = await failure(async () =>
      readResponse(aws, 's3.getObject', await fetchAnswer({ status: 404, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>' })),
    );
    expect(s3.cause.providerCode).toBe('NoSuchKey');
    expect(s3.retry).toBe('terminal');
  });

  it('reads SOAP 1.1 and 1.2 faults, in a 500 (terminal for SOAP) or a 200', async () => {
    const soap = bundledProvider('soap');
    const fault11 = `<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Invalid city &amp; country</faultstring></soap:Fault></soap:Body></soap:Envelope>`;
    const error11 = await failure(async () => readResponse(soap, 'call', await fetchAnswer({ status: 500, headers: { 'content-type': 'text/xml' }, body: fault11 })));
    expect(error11.code).toBe('PB_PROVIDER_ERROR');
    expect(error11.retry).toBe('terminal');
    expect(error11.cause).toEqual({ status: 500, providerCode: 'soap:Client', providerMessage: 'Invalid city & country' });

    const fault12 = `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:m="urn:m"><env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>m:MessageTimeout</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">Sender Timeout</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`;
    const error12 = await failure(async () => readResponse(soap, 'call', await fetchAnswer({ status: 200, headers: { 'content-type': 'application/soap+xml' }, body: fault12 })));
    expect(error12.code).toBe('PB_PROVIDER_ERROR');
    expect(error12.cause).toEqual({ status: 200, providerCode: 'env:Sender/m:MessageTimeout', providerMessage: 'Sender Timeout' });

    const ok = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><m:AddResponse xmlns:m="urn:calc"><m:Result>3</m:Result></m:AddResponse></soap:Body></soap:Envelope>`;
    expect(readResponse(soap, 'call', await fetchAnswer({ status: 200, body: ok }))).toEqual({ AddResponse: { Result: '3' } });
    expect((await failure(async () => readResponse(soap, 'call', await fetchAnswer({ status: 200, body: '<x/>' })))).code).toBe('PB_HTTP_MALFORMED_BODY');
  });

  it('maps the remaining statuses: 5xx, 503 with a delay, 3xx, unlisted 5xx, plain 4xx', async () => {
    const github = bundledProvider('github');
    expect((await failure(async () => readResponse(github, 'issues.get', await fetchAnswer({ status: 502, body: 'bad gateway' })))).code).toBe('PB_HTTP_SERVER_ERROR');
    const unavailable = await failure(async () => readResponse(github, 'issues.get', await fetchAnswer({ status: 503, headers: { 'retry-after': '7' } })));
    expect(unavailable.code).toBe('PB_HTTP_UNAVAILABLE');
    expect(unavailable.retryAfterMs).toBe(7000);
    const moved = await failure(async () => readResponse(github, 'issues.get', await fetchAnswer({ status: 301, headers: { location: '/elsewhere?token=abc' } })));
    expect(moved.code).toBe('PB_HTTP_REDIRECT');
    expect(moved.message).not.toContain('token=abc');
    const unlisted = await failure(async () => readResponse(github, 'issues.get', await fetchAnswer({ status: 501 })));
    expect(unlisted.code).toBe('PB_PROVIDER_ERROR');
    const notFound = await failure(async () => readResponse(github, 'issues.get', await fetchAnswer(json(404, { message: 'Not Found', status: '404' }))));
    expect(notFound.code).toBe('PB_HTTP_CLIENT_ERROR');
    expect(notFound.cause).toEqual({ status: 404, providerCode: '404', providerMessage: 'Not Found' });
  });

  it('masks credentials, escapes control characters and trims provider messages; never shows the query', async () => {
    const stripe = bundledProvider('stripe');
    const leaked = 'sk_' + 'live_' + 'Z'.repeat(24);
    const message = `Invalid API Key provided: ${leaked}\u001b[31m\r\nforged line ${'x'.repeat(600)}`;
    const error = await failure(async () => readResponse(stripe, 'customers.list', await fetchAnswer(json(401, { error: { message, code: 'api_key_invalid' } }), '?email=secret%40example.com')));
    expect(error.message).not.toContain(leaked);
    expect(error.message).toContain('sk_l…[redacted]');
    expect(error.message).not.toMatch(/[\u0000-\u001f]/);
    expect(error.message).not.toContain('secret@example.com');
    expect(error.message).not.toContain('?');
    expect(error.cause.providerMessage!.length).toBeLessThanOrEqual(301);
    const plain = await failure(async () => readResponse(stripe, 'customers.list', await fetchAnswer({ status: 400, body: `not json, echoing secret@example.com` }, '?email=secret%40example.com')));
    expect(plain.message).not.toContain('secret@example.com');
  });
});
