import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { isCardNumber, luhn, redactingLogger, Redactor } from '../../engine/lib/redact.js';
import { MemoryLogger } from '../../engine/lib/log.js';
import { SecretSet } from '../../engine/lib/secrets.js';
import { thrown } from '../support/errors.js';
import { SecretScan } from '../support/secret-scan.js';

const scan = new SecretScan();
afterAll(() => scan.assertClean());

const fresh = () => scan.secret(`sk_test_${randomBytes(18).toString('base64url')}`);

/** Appends the Luhn check digit to `prefix`. */
function withLuhnDigit(prefix: string): string {
  for (let d = 0; d <= 9; d++) if (luhn(`${prefix}${d}`)) return `${prefix}${d}`;
  throw new Error('unreachable');
}

/** The same digits with the last one changed, so Luhn fails. */
function breakLuhn(digits: string): string {
  const last = Number(digits.at(-1));
  return `${digits.slice(0, -1)}${(last + 1) % 10}`;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

const defaults = new Redactor();
const everything = new Redactor({ detectors: { emails: true, phones: true } });

describe('card detector', () => {
  // Published test numbers: Visa, Visa (13), Amex, Mastercard, Mastercard 2-series, Discover, Diners, JCB, UnionPay (19).
  const published = ['4242424242424242', '4222222222222', '378282246310005', '5555555555554444', '2223003122003222', '6011111111111117', '3056930009020004', '3566002020360505', '6200000000000047'];

  it.each(published)('redacts the published test number %s', (card) => {
    expect(isCardNumber(card)).toBe(true);
    expect(defaults.redactText(`paid with ${card}.`)).toBe('paid with [redacted:card].');
  });

  it('redacts cards grouped by spaces or dashes, and stops at the end of the card', () => {
    expect(defaults.redactText('4242 4242 4242 4242')).toBe('[redacted:card]');
    expect(defaults.redactText('card: 4242-4242-4242-4242;')).toBe('card: [redacted:card];');
    expect(defaults.redactText('amex 3782 822463 10005 ok')).toBe('amex [redacted:card] ok');
    expect(defaults.redactText('4242 4242 4242 4242 12/25')).toBe('[redacted:card] 12/25');
    expect(defaults.redactText('a,4242424242424242,b')).toBe('a,[redacted:card],b');
  });

  it('redacts a card stored as a JSON number', () => {
    expect(defaults.redactEvent({ pan: 4242424242424242, amex: 378282246310005, amount: 2000 })).toEqual({
      pan: '[redacted:card]',
      amex: '[redacted:card]',
      amount: 2000,
    });
  });

  it('leaves invalid-Luhn look-alikes, short numbers and numbers starting unlike a card', () => {
    const lookAlikes = published.map(breakLuhn);
    for (const digits of lookAlikes) {
      expect(isCardNumber(digits)).toBe(false);
      expect(defaults.redactText(`id ${digits}`)).toBe(`id ${digits}`);
    }
    // A Luhn-valid millisecond timestamp and a Luhn-valid 12-digit number.
    const timestamp = withLuhnDigit('171800000000');
    const short = withLuhnDigit('42424242424');
    expect(luhn(timestamp) && luhn(short)).toBe(true);
    expect(defaults.redactText(`${timestamp} ${short}`)).toBe(`${timestamp} ${short}`);
    expect(defaults.redactEvent({ at: Number(timestamp), n: Number(breakLuhn('4242424242424242')) })).toEqual({
      at: Number(timestamp),
      n: Number(breakLuhn('4242424242424242')),
    });
  });

  it('does not take a card out of a longer run, a word or a decimal', () => {
    const text = `0000${'4242424242424242'}0000 ch_4242424242424242 0.4242424242424242 +4242424242424242`;
    expect(defaults.redactText(text)).toBe(text);
  });

  it('can be turned off', () => {
    expect(new Redactor({ detectors: { cards: false } }).redactText('4242424242424242')).toBe('4242424242424242');
    expect(new Redactor({ detectors: { cards: false } }).redactEvent({ n: 4242424242424242 })).toEqual({ n: 4242424242424242 });
  });
});

describe('national id detectors', () => {
  it('redacts US Social Security numbers with dashes or spaces, within the issued ranges only', () => {
    expect(defaults.redactText('ssn 123-45-6789, 123 45 6789')).toBe('ssn [redacted:ssn], [redacted:ssn]');
    const never = ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000', '078-05-1120', '219-09-9999', '123456789', '123-45-67890'];
    for (const text of never) expect(defaults.redactText(text)).toBe(text);
  });

  it('redacts UK National Insurance numbers, without the prefixes HMRC never issues', () => {
    expect(defaults.redactText('NI AB123456C and AB 12 34 56 D')).toBe('NI [redacted:nino] and [redacted:nino]');
    const never = ['GB123456A', 'QQ123456C', 'DA123456A', 'AO123456A', 'AB123456E', 'ab123456c', 'XAB123456C'];
    for (const text of never) expect(defaults.redactText(text)).toBe(text);
  });

  it('redacts IBANs of the right length with a valid mod-97 check', () => {
    // The example IBANs the UK and German banking associations publish.
    expect(defaults.redactText('pay GB82 WEST 1234 5698 7654 32 EUR')).toBe('pay [redacted:iban] EUR');
    expect(defaults.redactText('DE89370400440532013000')).toBe('[redacted:iban]');
    const never = ['DE89370400440532013001', 'DE8937040044053201300', 'GB82WEST123456987654321', 'QX82WEST12345698765432'];
    for (const text of never) expect(defaults.redactText(text)).toBe(text);
  });

  it('redacts Canadian SINs written with separators that pass Luhn', () => {
    const sin = withLuhnDigit('13069254');
    const written = `${sin.slice(0, 3)}-${sin.slice(3, 6)}-${sin.slice(6)}`;
    expect(defaults.redactText(`sin ${written}`)).toBe('sin [redacted:sin]');
    // Luhn fails; Luhn passes but SINs never start with 0; no separators.
    const write = (digits: string) => `${digits.slice(0, 3)}-${digits.slice(3, 6)}-${digits.slice(6)}`;
    for (const text of [write(breakLuhn(sin)), write(withLuhnDigit('04645428')), sin]) expect(defaults.redactText(text)).toBe(text);
  });

  it('redacts Spanish DNI and NIE numbers with the right check letter', () => {
    expect(defaults.redactText('dni 12345678Z, 12345678-Z, nie X1234567L')).toBe('dni [redacted:dni], [redacted:dni], nie [redacted:dni]');
    for (const text of ['12345678A', 'X1234567A', '123456789Z']) expect(defaults.redactText(text)).toBe(text);
  });

  it('can be turned off', () => {
    const text = 'ssn 123-45-6789 ni AB123456C iban DE89370400440532013000';
    expect(new Redactor({ detectors: { nationalIds: false } }).redactText(text)).toBe(text);
  });
});

describe('email and phone detectors (off by default)', () => {
  it('redacts e-mail addresses only when asked', () => {
    const text = 'write to ada.lovelace+orders@mail.example.co.uk.';
    expect(defaults.redactText(text)).toBe(text);
    expect(everything.redactText(text)).toBe('write to [redacted:email].');
    expect(everything.redactText('not@an-address, a@b')).toBe('not@an-address, a@b');
  });

  it('redacts E.164 and North American numbers only when asked', () => {
    const text = 'call +44 20 7946 0958, +14155550123, (212) 555-0123, 212.555.0123 or +1 212-555-0123';
    expect(defaults.redactText(text)).toBe(text);
    expect(everything.redactText(text)).toBe('call [redacted:phone], [redacted:phone], [redacted:phone], [redacted:phone] or [redacted:phone]');
    // An exchange starting with 0 or 1 is not a North American number; bare ten digits are not taken.
    for (const other of ['212-155-0123', '2125550123', 'v1.212.555.0123']) expect(everything.redactText(other)).toBe(other);
  });
});

describe('redaction paths', () => {
  const payload = deepFreeze({
    data: {
      object: {
        shipping: { address: { line1: '1 Main St', city: 'Springfield' }, name: 'Ada' },
        charges: [
          { id: 'ch_1', billing: { email: 'a@example.test', zip: '12345' } },
          { id: 'ch_2', billing: { email: 'b@example.test', zip: '54321' } },
        ],
        lines: [[{ sku: 'x' }, { sku: 'y' }], [{ sku: 'z' }]],
        meta: { a: 1, b: 2 },
      },
    },
  });

  it('replaces a value at a path, whole, and leaves everything else', () => {
    const redactor = new Redactor({ paths: ['event.data.object.shipping.address'] });
    expect(redactor.redactEvent(payload)).toEqual({
      data: { object: { ...payload.data.object, shipping: { address: '[redacted]', name: 'Ada' } } },
    });
  });

  it('applies names to every element of an array, and * to any key or element', () => {
    const redactor = new Redactor({ paths: ['event.data.object.charges.billing.email', 'event.data.object.meta.*', 'event.data.object.lines.*.*.sku'] });
    const out = redactor.redactEvent(payload) as typeof payload;
    expect(out.data.object.charges).toEqual([
      { id: 'ch_1', billing: { email: '[redacted]', zip: '12345' } },
      { id: 'ch_2', billing: { email: '[redacted]', zip: '54321' } },
    ]);
    expect(out.data.object.meta).toEqual({ a: '[redacted]', b: '[redacted]' });
    expect(out.data.object.lines).toEqual([[{ sku: '[redacted]' }, { sku: '[redacted]' }], [{ sku: '[redacted]' }]]);
    expect(out.data.object.shipping).toEqual(payload.data.object.shipping);
  });

  it('selects one array element by its index', () => {
    const out = new Redactor({ paths: ['event.data.object.charges.1.billing'] }).redactEvent(payload) as typeof payload;
    expect(out.data.object.charges[0]).toEqual(payload.data.object.charges[0]);
    expect(out.data.object.charges[1]).toEqual({ id: 'ch_2', billing: '[redacted]' });
  });

  it('keeps step paths to their step and part, with * for any step', () => {
    const redactor = new Redactor({ paths: ['steps.sendSms.output.to', 'steps.*.input.body.card', 'steps.charge.output'] });
    expect(redactor.redactStepOutput('sendSms', { to: '+15550100', sid: 'SM1' })).toEqual({ to: '[redacted]', sid: 'SM1' });
    expect(redactor.redactStepOutput('other', { to: '+15550100' })).toEqual({ to: '+15550100' });
    expect(redactor.redactStepInput('sendSms', { to: '+15550100', body: { card: 'x' } })).toEqual({ to: '+15550100', body: { card: '[redacted]' } });
    expect(redactor.redactStepInput('anything', { body: [{ card: 'x' }, { card: 'y' }] })).toEqual({ body: [{ card: '[redacted]' }, { card: '[redacted]' }] });
    expect(redactor.redactStepOutput('charge', { id: 'ch_1' })).toBe('[redacted]');
    expect(redactor.redactEvent({ to: 'x' })).toEqual({ to: 'x' });
  });

  it('does nothing for a path that matches nothing, and accepts trigger and error paths', () => {
    const redactor = new Redactor({ paths: ['event.nope.deeper', 'event.data.object.shipping.address.line1.x', 'trigger.x', 'steps.a.error'] });
    expect(redactor.redactEvent(payload)).toEqual(payload);
  });

  it('refuses a path that starts nowhere known or has an empty segment', () => {
    for (const path of ['payload.x', 'steps.a', 'steps.a.result.x', 'event..x', 'event.x.']) {
      const error = thrown(() => new Redactor({ paths: [path] }));
      expect(error.code).toBe('PB_MANIFEST_BAD_VALUE');
      expect(error.message).toContain(`redact path "${path}"`);
    }
  });

  it('never modifies its input and returns fresh copies', () => {
    const redactor = new Redactor({ paths: ['event.data.object.shipping.address', 'event.data.object.charges.billing.email'] });
    const before = JSON.stringify(payload);
    const out = redactor.redactEvent(payload) as typeof payload;
    expect(JSON.stringify(payload)).toBe(before);
    expect(out).not.toBe(payload);
    expect(out.data.object.meta).not.toBe(payload.data.object.meta);
    expect(out.data.object.meta).toEqual(payload.data.object.meta);
  });
});

describe('secrets', () => {
  it('replaces secrets in strings: as is, percent-encoded, form-encoded and inside base64 or base64url', () => {
    // Characters that percent-encoding, form-encoding and base64 each write differently.
    const secret = scan.secret(`p@ss w/${randomBytes(12).toString('base64')}!~`);
    const secrets = new SecretSet();
    secrets.add(secret);
    const redactor = new Redactor({ secrets });
    const forms = [
      secret,
      encodeURIComponent(secret),
      new URLSearchParams({ k: secret }).toString().slice(2),
      Buffer.from(`user:${secret}`).toString('base64'),
      Buffer.from(`xy${secret}`).toString('base64url'),
    ];
    expect(new Set(forms).size).toBe(forms.length);
    for (const form of forms) {
      const out = redactor.redactText(`before ${form} after`);
      scan.text('redactText output', out);
      expect(out).toContain('[redacted]');
      expect(out).not.toContain(form);
    }
    // As SecretSet.redact for the forms it knows.
    expect(redactor.redactText(`a ${secret} b`)).toBe(secrets.redact(`a ${secret} b`));
  });

  it('finds secrets anywhere in payloads, outputs, headers, URLs and bodies', () => {
    const secret = fresh();
    const secrets = new SecretSet();
    secrets.add(secret);
    const redactor = new Redactor({ secrets });
    const stored = [
      redactor.redactEvent({ nested: [{ note: `token=${secret}` }] }),
      redactor.redactStepOutput('s', { echo: secret }),
      redactor.redactHeaders({ 'x-plain': `v ${secret}` }),
      redactor.redactUrl(`https://api.example.test/hooks/${encodeURIComponent(secret)}?q=${encodeURIComponent(secret)}`),
      redactor.redactRequest({ method: 'POST', url: new URL('https://api.example.test/'), headers: { 'content-type': 'text/plain' }, body: `hello ${secret}` }),
      redactor.redactResponse(200, { 'content-type': 'application/json' }, { data: { value: secret } }),
    ];
    const text = JSON.stringify(stored);
    scan.text('stored records', text);
    expect(text).not.toContain(secret);
    expect(text.match(/\[redacted\]/g)?.length).toBe(7);
  });

  it('sees secrets added to the set after the redactor was built', () => {
    const secrets = new SecretSet();
    const redactor = new Redactor({ secrets });
    const later = fresh();
    expect(redactor.redactText(`x ${later}`)).toBe(`x ${later}`);
    secrets.add(later);
    expect(redactor.redactText(`x ${later}`)).toBe('x [redacted]');
  });
});

describe('headers, URLs, requests and responses', () => {
  it('replaces credential headers by name and scrubs the others', () => {
    const headers = deepFreeze({
      Authorization: 'Bearer abc',
      'proxy-authorization': 'Basic abc',
      cookie: 'session=abc',
      'set-cookie': 'id=abc',
      'x-api-key': 'abc',
      'api-key': 'abc',
      'x-auth-token': 'abc',
      'x-shopify-access-token': 'abc',
      'stripe-signature': 't=1,v1=abc',
      'x-hub-signature-256': 'sha256=abc',
      'x-client-secret': 'abc',
      'x-my-password': 'abc',
      'x-vendor-key': 'abc',
      'x-custom-credential': 'abc',
      'idempotency-key': 'evt_1:charge',
      'content-type': 'application/json',
      'x-note': 'card 4242424242424242',
    });
    const out = defaults.redactHeaders(headers, ['X-Custom-Credential']);
    const kept = ['idempotency-key', 'content-type'];
    for (const [name, value] of Object.entries(out)) {
      if (kept.includes(name)) expect(value).toBe(headers[name as keyof typeof headers]);
      else if (name === 'x-note') expect(value).toBe('card [redacted:card]');
      else expect([name, value]).toEqual([name, '[redacted]']);
    }
    expect(Object.keys(out)).toEqual(Object.keys(headers));
    expect(defaults.redactHeaders({ 'x-provider-sig': 'abc' }, ['X-PROVIDER-SIG'])).toEqual({ 'x-provider-sig': '[redacted]' });
    expect(defaults.redactHeaders({ 'x-provider-sig': 'abc' })).toEqual({ 'x-provider-sig': 'abc' });
  });

  it('keeps URLs readable while removing credentials, sensitive query values, secrets and personal data', () => {
    const url = 'https://user:pass@api.example.test/v1/cards/4242424242424242?limit=10&access_token=abc&api_key=abc&key=abc&X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F&sig=abc&code=abc&q=a%20b&email=ada%40example.test#top';
    expect(everything.redactUrl(url)).toBe(
      'https://[redacted]@api.example.test/v1/cards/[redacted:card]?limit=10&access_token=[redacted]&api_key=[redacted]&key=[redacted]&X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]&sig=[redacted]&code=[redacted]&q=a%20b&email=[redacted:email]#top',
    );
    expect(defaults.redactUrl(new URL('https://api.example.test/v1/orders?sort_by=created&page_token_hint=2'))).toBe(
      'https://api.example.test/v1/orders?sort_by=created&page_token_hint=2',
    );
    expect(defaults.redactUrl('not a url?token=abc&x=1')).toBe('not a url?token=[redacted]&x=1');
  });

  it('records a JSON request body structurally, with credential fields replaced', () => {
    const body = JSON.stringify({ amount: 2000, card: { number: '4242424242424242' }, refresh_token: 'abc', nested: [{ password: 'p', user: 'ada' }] });
    const expected = { amount: 2000, card: { number: '[redacted:card]' }, refresh_token: '[redacted]', nested: [{ password: '[redacted]', user: 'ada' }] };
    for (const encoded of [body, new TextEncoder().encode(body)]) {
      const record = defaults.redactRequest({ method: 'POST', url: new URL('https://api.example.test/charges?x=1'), headers: { 'content-type': 'application/json; charset=utf-8', authorization: 'Bearer abc' }, body: encoded });
      expect(record).toEqual({
        method: 'POST',
        url: 'https://api.example.test/charges?x=1',
        headers: { 'content-type': 'application/json; charset=utf-8', authorization: '[redacted]' },
        body: expected,
      });
      expect(JSON.parse(JSON.stringify(record))).toEqual(record);
    }
  });

  it('records form bodies field by field, other text as text, binary by size, and no body as none', () => {
    const url = new URL('https://api.example.test/token');
    const form = defaults.redactRequest({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&client_id=app&client_secret=abc&refresh_token=abc&note=4242424242424242' });
    expect(form.body).toBe('grant_type=refresh_token&client_id=app&client_secret=[redacted]&refresh_token=[redacted]&note=[redacted:card]');
    const text = defaults.redactRequest({ method: 'POST', url, headers: { 'content-type': 'text/xml' }, body: '<card>4242424242424242</card>' });
    expect(text.body).toBe('<card>[redacted:card]</card>');
    const broken = defaults.redactRequest({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: '{"card": "4242424242424242"' });
    expect(broken.body).toBe('{"card": "[redacted:card]"');
    const binary = defaults.redactRequest({ method: 'PUT', url, headers: { 'content-type': 'image/png' }, body: new Uint8Array(1234) });
    expect(binary.body).toBe('<1234 bytes>');
    const notUtf8 = defaults.redactRequest({ method: 'PUT', url, headers: { 'content-type': 'text/plain' }, body: new Uint8Array([0xff, 0xfe, 0x00]) });
    expect(notUtf8.body).toBe('<3 bytes>');
    const get = defaults.redactRequest({ method: 'GET', url, headers: {} });
    expect(get).toEqual({ method: 'GET', url: 'https://api.example.test/token', headers: {} });
    expect('body' in get).toBe(false);
  });

  it('records a response with its headers and output redacted', () => {
    const output = deepFreeze({ access_token: 'abc', token_type: 'bearer', card: 4242424242424242, id: 'x' });
    expect(defaults.redactResponse(200, { 'set-cookie': 'id=abc', 'content-type': 'application/json' }, output)).toEqual({
      status: 200,
      headers: { 'set-cookie': '[redacted]', 'content-type': 'application/json' },
      body: { access_token: '[redacted]', token_type: 'bearer', card: '[redacted:card]', id: 'x' },
    });
    expect(defaults.redactResponse(204, {}, undefined)).toEqual({ status: 204, headers: {} });
    expect(defaults.redactResponse(500, { 'content-type': 'text/plain' }, 'oops 4242424242424242').body).toBe('oops [redacted:card]');
  });
});

describe('credential names in events, step inputs and step outputs', () => {
  it('stores a provider answer as its response record shows it: token and secret fields replaced', () => {
    const accessToken = scan.secret(`at_${randomBytes(16).toString('hex')}`);
    const refreshToken = scan.secret(`rt_${randomBytes(16).toString('hex')}`);
    const output = deepFreeze({
      access_token: accessToken,
      refresh_token: refreshToken,
      token_type: 'bearer',
      expires_in: 3600,
      endpoint: { id: 'we_1', secret: 'whsec_test_redaction_output', url: 'https://hooks.example.test/in' },
      tokenUrl: 'https://auth.example.test/token',
      items: [{ apiKey: 'k_test_1', name: 'one' }],
    });
    const stored = defaults.redactStepOutput('createWebhook', output);
    expect(stored).toEqual({
      access_token: '[redacted]',
      refresh_token: '[redacted]',
      token_type: 'bearer',
      expires_in: 3600,
      endpoint: { id: 'we_1', secret: '[redacted]', url: 'https://hooks.example.test/in' },
      tokenUrl: 'https://auth.example.test/token',
      items: [{ apiKey: '[redacted]', name: 'one' }],
    });
    expect(defaults.redactResponse(200, {}, output).body).toEqual(stored);
    scan.text('stored output', JSON.stringify(stored));
  });

  it('reads the headers of an http.request envelope by the header rules, in the output and the response record', () => {
    const session = scan.secret(`sess_${randomBytes(16).toString('hex')}`);
    const envelope = deepFreeze({
      status: 200,
      headers: {
        'x-session-token': session,
        'x-session-id': session,
        'x-hub-signature-256': `sha256=${session}`,
        'set-cookie': `sid=${session}`,
        'content-type': 'application/json',
        'idempotency-key': 'evt_1:call',
        'x-request-id': 'req_1',
      },
      body: { user: 'ada', password: 'hunter2-test' },
    });
    const expected = {
      status: 200,
      headers: {
        'x-session-token': '[redacted]',
        'x-session-id': '[redacted]',
        'x-hub-signature-256': '[redacted]',
        'set-cookie': '[redacted]',
        'content-type': 'application/json',
        'idempotency-key': 'evt_1:call',
        'x-request-id': 'req_1',
      },
      body: { user: 'ada', password: '[redacted]' },
    };
    expect(defaults.redactStepOutput('call', envelope)).toEqual(expected);
    expect(defaults.redactResponse(200, {}, envelope).body).toEqual(expected);
    scan.text('stored envelope', JSON.stringify(defaults.redactStepOutput('call', envelope)));
  });

  it('replaces credential fields of webhook bodies and step inputs too, by the same names', () => {
    const event = deepFreeze({ user: 'ada', password: 'hunter2-test', data: { object: { client_secret: 'pi_1_secret_test', id: 'pi_1' } }, token: 'slack-verification-test', sessionId: 's1' });
    expect(defaults.redactEvent(event)).toEqual({ user: 'ada', password: '[redacted]', data: { object: { client_secret: '[redacted]', id: 'pi_1' } }, token: '[redacted]', sessionId: 's1' });
    expect(defaults.redactStepInput('createUser', { name: 'Ada', password: 'hunter2-test', authToken: 'x' })).toEqual({ name: 'Ada', password: '[redacted]', authToken: '[redacted]' });
    // A field outside `headers` keeps the field rules: `sessionId`, `signatureVersion` are not
    // credentials. `headers` outside an HTTP envelope lose only the unambiguous credential headers.
    expect(defaults.redactEvent({ headers: { 'x-session-id': 's1', authorization: 'Bearer t1' }, signatureVersion: 'v1' })).toEqual({
      headers: { 'x-session-id': 's1', authorization: '[redacted]' },
      signatureVersion: 'v1',
    });
    expect(defaults.redactStepOutput('fetch', { status: 200, headers: { 'x-session-id': 's1' }, body: {} })).toEqual({ status: 200, headers: { 'x-session-id': '[redacted]' }, body: {} });
  });
});

describe('redactingLogger', () => {
  it('scrubs the message and the fields of every line', () => {
    const secret = fresh();
    const secrets = new SecretSet();
    secrets.add(secret);
    const memory = scan.logger(new MemoryLogger());
    const logger = redactingLogger(memory, new Redactor({ secrets }));
    const cause = Object.assign(new Error(`upstream said ${secret}`), { code: 'PB_HTTP_STATUS' });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    logger.log('warn', `retrying with ${secret} for card 4242424242424242`, {
      error: cause,
      url: new URL(`https://api.example.test/x?access_token=${secret}&page=2`),
      authorization: 'Bearer abc',
      attempt: 2,
      cyclic,
    });
    logger.log('info', 'plain');
    expect(memory.lines).toEqual([
      {
        level: 'warn',
        message: 'retrying with [redacted] for card [redacted:card]',
        fields: {
          error: { name: 'Error', message: 'upstream said [redacted]', code: 'PB_HTTP_STATUS' },
          url: 'https://api.example.test/x?access_token=[redacted]&page=2',
          authorization: '[redacted]',
          attempt: 2,
          cyclic: { name: 'loop', self: '[circular]' },
        },
      },
      { level: 'info', message: 'plain', fields: {} },
    ]);
  });
});

describe('name rules keep ordinary data that mappings read', () => {
  const redactor = new Redactor();

  it('keeps flags, counts, pagination cursors and public handles; replaces credentials given as text', () => {
    const event = {
      repository: { private: false, name: 'docs' },
      usage: { token_count: 12, total_tokens: 40 },
      NextToken: 'AAEAAQ-next',
      next_page_token: 'p2',
      nextPageToken: 'p3',
      public_token: 'public-sandbox-123',
      access_token: 'at_live_value',
      password: 'hunter2-value',
      auth: { secret: 'whsec_nested_value', enabled: true },
    };
    expect(redactor.redactEvent(event)).toEqual({
      repository: { private: false, name: 'docs' },
      usage: { token_count: 12, total_tokens: 40 },
      NextToken: 'AAEAAQ-next',
      next_page_token: 'p2',
      nextPageToken: 'p3',
      public_token: 'public-sandbox-123',
      access_token: '[redacted]',
      password: '[redacted]',
      auth: { secret: '[redacted]', enabled: true },
    });
  });

  it('reads header rules only inside an HTTP answer envelope', () => {
    const inbound = { headers: { Keywords: 'billing', Author: 'Ada', Subject: 'Invoice' }, text: 'hello' };
    expect(redactor.redactEvent(inbound)).toEqual(inbound);
    const envelope = { status: 200, headers: { 'x-session-token': 'sess_value_1', 'content-type': 'application/json' }, body: { ok: true } };
    expect(redactor.redactStepOutput('fetch', envelope)).toEqual({ status: 200, headers: { 'x-session-token': '[redacted]', 'content-type': 'application/json' }, body: { ok: true } });
  });
});
