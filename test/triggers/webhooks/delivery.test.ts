import { describe, expect, it } from 'vitest';
import { jsonErrorOffset } from '../../../engine/triggers/webhooks/body-text.js';
import { ignoredNotice, parseDelivery } from '../../../engine/triggers/webhooks/delivery.js';
import { nestedFormObject, parseFormFields } from '../../../engine/triggers/webhooks/form-body.js';
import type { InboundDelivery } from '../../../engine/triggers/webhooks/verify.js';
import { thrown } from '../../support/errors.js';
import { webhooksOf } from './corpus.js';

const json = 'application/json';
const form = 'application/x-www-form-urlencoded';
function delivery(body: string | Buffer, contentType: string | undefined, headers: Record<string, string> = {}): InboundDelivery {
  const all: Record<string, string> = { ...headers };
  if (contentType !== undefined) all['content-type'] = contentType;
  return { method: 'POST', url: new URL('https://hooks.example.test/hooks/x'), headers: all, rawBody: Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8') };
}

describe('parseDelivery: media types', () => {
  const stripe = webhooksOf('stripe');
  const mailchimp = webhooksOf('mailchimp');

  it('accepts the provider type with charset parameters and +json types', () => {
    for (const type of [json, 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"', 'application/vnd.thing+json', 'application/json; charset=us-ascii']) {
      expect(parseDelivery(stripe, delivery('{"type":"t","id":"evt_1"}', type)).eventType).toBe('t');
    }
    expect(parseDelivery(mailchimp, delivery('type=subscribe', `${form}; charset=UTF-8`)).eventType).toBe('subscribe');
  });

  it('refuses a missing, different or non-UTF-8 Content-Type with PB_WEBHOOK_UNSUPPORTED_MEDIA', () => {
    for (const [webhooks, type] of [
      [stripe, undefined],
      [stripe, ''],
      [stripe, form],
      [stripe, 'text/plain'],
      [stripe, 'application/json; charset=iso-8859-1'],
      [stripe, 'application/jsonp'],
      [mailchimp, json],
      [mailchimp, 'multipart/form-data; boundary=x'],
    ] as const) {
      const error = thrown(() => parseDelivery(webhooks, delivery('{}', type)));
      expect(error.code).toBe('PB_WEBHOOK_UNSUPPORTED_MEDIA');
    }
  });
});

describe('parseDelivery: bodies', () => {
  const stripe = webhooksOf('stripe');

  it('reports malformed JSON by line, column and offset, never quoting the body', () => {
    const cases: [string, number, number][] = [
      ['{"a": 1,\n  "b": tru }', 2, 11],
      ['{"a": 1}}', 1, 9],
      ['{"secret-ish-value": "abc"', 1, 27],
      ['', 1, 1],
      ['[1, 2,]', 1, 7],
      ['{"a" 1}', 1, 6],
      ['{"a": "\\x"}', 1, 9],
      ['{"a": 01}', 1, 8],
    ];
    for (const [text, line, column] of cases) {
      const error = thrown(() => parseDelivery(stripe, delivery(text, json)));
      expect(error.code).toBe('PB_WEBHOOK_BAD_BODY');
      if (text.length > 0 && jsonErrorOffset(text) < text.length) expect(error.message).toContain(`line ${line}, column ${column}`);
      expect(error.message).not.toContain('secret-ish-value');
      expect(error.message).not.toContain('tru');
    }
  });

  it('locates errors in deeply nested JSON without overflowing', () => {
    const deep = `${'['.repeat(200_000)}x${']'.repeat(200_000)}`;
    expect(jsonErrorOffset(deep)).toBe(200_000);
    expect(jsonErrorOffset('{"a":[1,{"b":null}]}')).toBe(-1);
  });

  it('refuses bytes that are not UTF-8 with their byte offset, and drops a byte order mark', () => {
    const bad = Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const error = thrown(() => parseDelivery(stripe, delivery(bad, json)));
    expect(error.code).toBe('PB_WEBHOOK_BAD_BODY');
    expect(error.message).toContain('offset 12');
    for (const bytes of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      expect(thrown(() => parseDelivery(stripe, delivery(Buffer.concat([Buffer.from('{"a":"'), Buffer.from(bytes), Buffer.from('"}')]), json))).code).toBe('PB_WEBHOOK_BAD_BODY');
    }
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"type":"t"}')]);
    expect(parseDelivery(stripe, delivery(bom, json)).eventType).toBe('t');
  });

  it('keeps unicode as sent: escapes decoded, raw characters intact', () => {
    const parsed = parseDelivery(stripe, delivery('{"type":"t","n":"J\\u00e9r\\u00f4me \ud83d\ude00"}', json));
    expect((parsed.payload as { n: string }).n).toBe('J\u00e9r\u00f4me \ud83d\ude00');
  });
});

describe('parseDelivery: event type and id', () => {
  it("joins GitHub's header and action (issues.opened), and keeps the header alone without an action", () => {
    const github = webhooksOf('github');
    const opened = parseDelivery(github, delivery('{"action":"opened"}', json, { 'x-github-event': 'issues', 'x-github-delivery': 'g-1' }));
    expect(opened).toMatchObject({ eventType: 'issues.opened', eventId: 'g-1' });
    expect(parseDelivery(github, delivery('{"ref":"refs/heads/main"}', json, { 'x-github-event': 'push' })).eventType).toBe('push');
  });

  it('reads body paths and falls back to the verified delivery id', () => {
    const stripe = webhooksOf('stripe');
    expect(parseDelivery(stripe, delivery('{"type":"charge.refunded","id":"evt_9"}', json))).toMatchObject({ eventType: 'charge.refunded', eventId: 'evt_9' });
    expect(parseDelivery(stripe, delivery('{"type":"x"}', json), { deliveryId: 'd-7' }).eventId).toBe('d-7');
    expect(parseDelivery(stripe, delivery('{"type":{"nested":1},"id":5}', json))).toMatchObject({ eventType: undefined, eventId: '5' });
    expect(parseDelivery(stripe, delivery('[1,2]', json))).toMatchObject({ eventType: undefined, eventId: undefined });
    // Inherited properties are not event types.
    expect(parseDelivery(webhooksOf('slack'), delivery('{"event":{}}', json)).eventType).toBeUndefined();
    expect(parseDelivery({ verification: { scheme: 'none' }, eventType: { path: 'constructor.name' } }, delivery('{}', json)).eventType).toBeUndefined();
  });
});

describe('form bodies', () => {
  it('nests brackets, appends [] and turns 0…n-1 keys into arrays', () => {
    const fields = parseFormFields('a[b][c]=1&a[b][d]=2&list[]=x&list[]=y&g[0][name]=n0&g[1][name]=n1&plain=p+q&rep=1&rep=2&odd[=v&e=');
    expect(nestedFormObject(fields)).toEqual({
      a: { b: { c: '1', d: '2' } },
      list: ['x', 'y'],
      g: [{ name: 'n0' }, { name: 'n1' }],
      plain: 'p q',
      rep: ['1', '2'],
      'odd[': 'v',
      e: '',
    });
  });

  it('never touches a prototype: __proto__ is refused, constructor stays an own value', () => {
    for (const text of ['__proto__[polluted]=1', 'a[__proto__][polluted]=1', '__proto__=1']) {
      expect(thrown(() => nestedFormObject(parseFormFields(text))).code).toBe('PB_WEBHOOK_BAD_BODY');
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const parsed = nestedFormObject(parseFormFields('constructor[prototype][x]=1&toString=2&hasOwnProperty=3')) as Record<string, unknown>;
    expect(Object.hasOwn(parsed, 'constructor')).toBe(true);
    expect(parsed['toString']).toBe('2');
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(({} as { x?: unknown }).x).toBeUndefined();
  });

  it('refuses conflicts, too deep names and bad escapes, naming the field position only', () => {
    const cases = ['a=1&a[b]=2', 'a[b]=2&a=1', `a${'[x]'.repeat(40)}=1`, 'ok=1&bad=%E9', 'bad=%zz'];
    for (const text of cases) {
      const error = thrown(() => nestedFormObject(parseFormFields(text)));
      expect(error.code).toBe('PB_WEBHOOK_BAD_BODY');
      expect(error.message).not.toMatch(/%E9|%zz|\[x\]/);
    }
  });

  it('keeps Twilio names flat and parses through parseDelivery', () => {
    const twilio = webhooksOf('twilio');
    const parsed = parseDelivery(twilio, delivery('SmsStatus=received&Weird[Name]=1&MediaUrl0=u&constructor=c', form));
    expect(parsed.payload).toEqual({ SmsStatus: 'received', 'Weird[Name]': '1', MediaUrl0: 'u', constructor: 'c' });
    expect(thrown(() => parseDelivery(twilio, delivery('__proto__=1', form))).code).toBe('PB_WEBHOOK_BAD_BODY');
  });
});

describe('notices for ignored events', () => {
  it('names the topic of an unconfirmed SNS subscription, never its token, and says nothing for other events', () => {
    const sns = { verification: { scheme: 'awsSns' as const }, eventType: { header: 'x-amz-sns-message-type' } };
    const payload = { Type: 'SubscriptionConfirmation', TopicArn: 'arn:aws:sns:us-east-1:123456789012:orders', Token: 'tok_secret_capability', SubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Token=tok_secret_capability' };
    const notice = ignoredNotice(sns, { eventType: 'SubscriptionConfirmation', payload });
    expect(notice?.fields).toEqual({ topicArn: 'arn:aws:sns:us-east-1:123456789012:orders' });
    expect(JSON.stringify(notice)).not.toContain('tok_secret_capability');
    expect(ignoredNotice(sns, { eventType: 'UnsubscribeConfirmation', payload })).toBeUndefined();
    expect(ignoredNotice({ verification: { scheme: 'stripe' as const }, eventType: { path: 'type' } }, { eventType: 'SubscriptionConfirmation', payload })).toBeUndefined();
  });
});
