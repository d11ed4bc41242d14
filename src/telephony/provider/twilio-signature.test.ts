import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeTwilio, type FakeTwilio } from '../../../test/fakes/twilio.js';
import { TwilioProvider } from './twilio-provider.js';
import { signTwilioRequest, twilioWebhookUrl, verifyTwilioSignature, type TwilioWebhookParams } from './twilio-signature.js';

const authToken = '12345678901234567890123456789012';
const url = 'https://vocelio.test/twilio/status?call=abc';
const params = { CallSid: 'CA0123', CallStatus: 'completed', CallDuration: '42', From: '+14155550100' };
const sdkSignature = twilio.getExpectedTwilioSignature(authToken, url, params);

describe('verifyTwilioSignature', () => {
  it('accepts the signature the Twilio SDK computes for the request', () => {
    expect(verifyTwilioSignature({ authToken, url, params, signature: sdkSignature })).toBe(true);
  });

  it('accepts repeated parameters signed as Twilio signs them', () => {
    const repeated = { StatusCallbackEvent: ['ringing', 'answered'], CallSid: 'CA1' };
    const signature = twilio.getExpectedTwilioSignature(authToken, url, repeated);
    expect(verifyTwilioSignature({ authToken, url, params: repeated, signature })).toBe(true);
  });

  it('rejects a changed parameter value', () => {
    expect(verifyTwilioSignature({ authToken, url, params: { ...params, CallDuration: '4200' }, signature: sdkSignature })).toBe(false);
  });

  it('rejects an added parameter', () => {
    expect(verifyTwilioSignature({ authToken, url, params: { ...params, Extra: '1' }, signature: sdkSignature })).toBe(false);
  });

  it('rejects a different path or query string', () => {
    expect(verifyTwilioSignature({ authToken, url: 'https://vocelio.test/twilio/voice?call=abc', params, signature: sdkSignature })).toBe(false);
    expect(verifyTwilioSignature({ authToken, url: 'https://vocelio.test/twilio/status?call=xyz', params, signature: sdkSignature })).toBe(false);
  });

  it('rejects a different host', () => {
    expect(verifyTwilioSignature({ authToken, url: 'https://evil.test/twilio/status?call=abc', params, signature: sdkSignature })).toBe(false);
  });

  it('rejects a signature made with another auth token', () => {
    const forged = twilio.getExpectedTwilioSignature('another-token-another-token-1234', url, params);
    expect(verifyTwilioSignature({ authToken, url, params, signature: forged })).toBe(false);
  });

  it('rejects a missing or empty signature', () => {
    expect(verifyTwilioSignature({ authToken, url, params, signature: undefined })).toBe(false);
    expect(verifyTwilioSignature({ authToken, url, params, signature: null })).toBe(false);
    expect(verifyTwilioSignature({ authToken, url, params, signature: '' })).toBe(false);
  });

  it('rejects rather than throws on a URL that cannot be parsed', () => {
    expect(verifyTwilioSignature({ authToken, url: 'not a url', params, signature: sdkSignature })).toBe(false);
  });

  it('accepts a signature over the URL with the default port spelled out', () => {
    const signature = twilio.getExpectedTwilioSignature(authToken, 'https://vocelio.test:443/twilio/status?call=abc', params);
    expect(verifyTwilioSignature({ authToken, url, params, signature })).toBe(true);
  });
});

describe('signTwilioRequest', () => {
  it("follows Twilio's algorithm: base64 HMAC-SHA1 of the URL then each sorted name and value", () => {
    const data = `${url}CallDuration42CallSidCA0123CallStatuscompletedFrom+14155550100`;
    const expected = createHmac('sha1', authToken).update(data).digest('base64');
    expect(signTwilioRequest({ authToken, url, params })).toBe(expected);
  });
});

describe('twilioWebhookUrl', () => {
  it('joins the public URL and the request path without doubling slashes', () => {
    expect(twilioWebhookUrl('https://abc.ngrok.app/', '/twilio/voice?x=1')).toBe('https://abc.ngrok.app/twilio/voice?x=1');
  });
});

describe('webhooks delivered by the fake Twilio', () => {
  interface Received {
    url: string;
    params: TwilioWebhookParams;
    signature: string | undefined;
  }
  let receiver: Server;
  let hooks: string;
  let received: Received[];
  let fake: FakeTwilio;
  let provider: TwilioProvider;

  const readForm = async (req: IncomingMessage): Promise<TwilioWebhookParams> => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const out: TwilioWebhookParams = {};
    for (const [k, v] of new URLSearchParams(body)) out[k] = v;
    return out;
  };

  beforeEach(async () => {
    received = [];
    receiver = createServer((req, res) => {
      void readForm(req).then((form) => {
        const signature = req.headers['x-twilio-signature'];
        received.push({ url: twilioWebhookUrl(hooks, req.url ?? '/'), params: form, signature: typeof signature === 'string' ? signature : undefined });
        res.writeHead(200, { 'content-type': 'text/xml' }).end('<Response><Pause length="1"/></Response>');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    hooks = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    fake = await startFakeTwilio();
    provider = new TwilioProvider({ accountSid: fake.accountSid, authToken: fake.authToken, baseUrl: fake.baseUrl });
  });

  afterEach(async () => {
    await fake.close();
    const closed = new Promise<void>((resolve) => receiver.close(() => resolve()));
    receiver.closeAllConnections();
    await closed;
  });

  const place = () =>
    provider.placeCall({
      to: '+12065550199',
      from: '+14155550100',
      voiceUrl: `${hooks}/twilio/voice?callId=c1`,
      statusCallbackUrl: `${hooks}/twilio/status?callId=c1`,
      machineDetection: { asyncCallbackUrl: `${hooks}/twilio/amd?callId=c1`, mode: 'Enable' },
    });

  const verified = (r: Received, token = fake.authToken) =>
    verifyTwilioSignature({ authToken: token, url: r.url, params: r.params, signature: r.signature });

  it('signs status callbacks so our check accepts them', async () => {
    const { providerCallSid } = await place();
    await fake.sendStatusCallback(providerCallSid, 'completed', { CallDuration: '42' });

    expect(received[0]!.params).toMatchObject({
      CallSid: providerCallSid,
      AccountSid: fake.accountSid,
      CallStatus: 'completed',
      CallDuration: '42',
      Direction: 'outbound-api',
      SequenceNumber: '0',
    });
    expect(verified(received[0]!)).toBe(true);
    expect(verified(received[0]!, 'some-other-token')).toBe(false);
  });

  it('signs AMD results and voice requests so our check accepts them', async () => {
    const { providerCallSid } = await place();
    await fake.sendAmdCallback(providerCallSid, 'machine_end_beep');
    const twiml = await fake.requestVoiceUrl(providerCallSid);

    expect(twiml).toBe('<Response><Pause length="1"/></Response>');
    expect(received.map((r) => [new URL(r.url).pathname, verified(r)])).toEqual([
      ['/twilio/amd', true],
      ['/twilio/voice', true],
    ]);
    expect(received[0]!.params).toMatchObject({ AnsweredBy: 'machine_end_beep', CallSid: providerCallSid });
  });

  it('sends unsigned webhooks that our check rejects', async () => {
    await fake.postWebhook(`${hooks}/twilio/status`, { CallSid: 'CA1' }, { signature: null });
    expect(received[0]!.signature).toBeUndefined();
    expect(verified(received[0]!)).toBe(false);
  });
});
