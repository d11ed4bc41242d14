import { describe, expect, it } from 'vitest';
import { TelephonyError } from './telephony-provider.js';
import { connectStreamTwiml, sayAndHangupTwiml, transferTwiml, whisperTwiml } from './twiml.js';

const XML = '<?xml version="1.0" encoding="UTF-8"?>';

describe('connectStreamTwiml', () => {
  it('connects the call to the stream URL with the token as a parameter', () => {
    expect(connectStreamTwiml({ streamUrl: 'wss://vocelio.test/twilio/media', token: 'tok_123' })).toBe(
      `${XML}<Response><Connect><Stream url="wss://vocelio.test/twilio/media"><Parameter name="token" value="tok_123"/></Stream></Connect></Response>`,
    );
  });

  it('adds the stream status callback when given', () => {
    expect(
      connectStreamTwiml({ streamUrl: 'wss://h/twilio/media', token: 't', statusCallbackUrl: 'https://h/twilio/stream-status?a=1&b=2' }),
    ).toBe(
      `${XML}<Response><Connect><Stream url="wss://h/twilio/media" statusCallback="https://h/twilio/stream-status?a=1&amp;b=2" statusCallbackMethod="POST"><Parameter name="token" value="t"/></Stream></Connect></Response>`,
    );
  });

  it('escapes a token and URL that contain XML metacharacters', () => {
    const twiml = connectStreamTwiml({ streamUrl: 'wss://h/m?x=1&y="2"', token: 'a"b<c&d' });
    expect(twiml).toContain('url="wss://h/m?x=1&amp;y=&quot;2&quot;"');
    expect(twiml).toContain('value="a&quot;b&lt;c&amp;d"');
  });
});

describe('sayAndHangupTwiml', () => {
  it('says the message, then hangs up', () => {
    expect(sayAndHangupTwiml('This number is not in service.')).toBe(
      `${XML}<Response><Say>This number is not in service.</Say><Hangup/></Response>`,
    );
  });

  it('escapes the message and passes the voice and language', () => {
    expect(sayAndHangupTwiml('Tom & Jerry <3', { voice: 'Polly.Joanna', language: 'en-US' })).toBe(
      `${XML}<Response><Say voice="Polly.Joanna" language="en-US">Tom &amp; Jerry &lt;3</Say><Hangup/></Response>`,
    );
  });
});

describe('transferTwiml', () => {
  it('dials the number with our caller ID', () => {
    expect(transferTwiml({ to: '+12125550100', callerId: '+14155550100' })).toBe(
      `${XML}<Response><Dial callerId="+14155550100"><Number>+12125550100</Number></Dial></Response>`,
    );
  });

  it('announces the transfer to the caller and whispers to the target through a URL', () => {
    expect(
      transferTwiml({ to: '+12125550100', announce: 'Transferring you to billing.', whisperUrl: 'https://h/twilio/whisper?c=1&t=2', timeoutSeconds: 20 }),
    ).toBe(
      `${XML}<Response><Say>Transferring you to billing.</Say><Dial timeout="20"><Number url="https://h/twilio/whisper?c=1&amp;t=2" method="POST">+12125550100</Number></Dial></Response>`,
    );
  });

  it('refuses a transfer number that is not E.164 with a 400', () => {
    expect(() => transferTwiml({ to: '212-555-0100' })).toThrow(TelephonyError);
    expect(() => transferTwiml({ to: '212-555-0100' })).toThrow(/transfer number "212-555-0100" must be in E\.164 format/);
  });
});

describe('whisperTwiml', () => {
  it('says the summary to the transfer target', () => {
    expect(whisperTwiml('Caller wants a refund for order 42 & is upset.')).toBe(
      `${XML}<Response><Say>Caller wants a refund for order 42 &amp; is upset.</Say></Response>`,
    );
  });
});
