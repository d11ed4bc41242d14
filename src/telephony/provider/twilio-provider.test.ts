import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.js';
import { startFakeTwilio, type FakeTwilio } from '../../../test/fakes/twilio.js';
import { TelephonyError } from './telephony-provider.js';
import { TwilioProvider, rebaseTwilioUri } from './twilio-provider.js';

const HOOKS = 'https://vocelio.test/twilio';
const CALLER = '+14155550100';
const CALLEE = '+12065550199';

let fake: FakeTwilio;
let provider: TwilioProvider;

beforeEach(async () => {
  fake = await startFakeTwilio({ apiKeys: [{ sid: `SK${'1'.repeat(32)}`, secret: 'key-secret' }] });
  provider = new TwilioProvider({ accountSid: fake.accountSid, authToken: fake.authToken, baseUrl: fake.baseUrl });
});

afterEach(async () => {
  await fake.close();
});

/** The rejection of `promise`, asserted to be a TelephonyError. */
async function telephonyError(promise: Promise<unknown>): Promise<TelephonyError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TelephonyError);
  return err as TelephonyError;
}

async function placeCall(): Promise<string> {
  const placed = await provider.placeCall({
    to: CALLEE,
    from: CALLER,
    voiceUrl: `${HOOKS}/voice`,
    statusCallbackUrl: `${HOOKS}/status`,
  });
  return placed.providerCallSid;
}

describe('TwilioProvider calls', () => {
  it('places a call with our voice URL, every status event and async AMD', async () => {
    const placed = await provider.placeCall({
      to: CALLEE,
      from: CALLER,
      voiceUrl: `${HOOKS}/voice?call=1`,
      statusCallbackUrl: `${HOOKS}/status?call=1`,
      machineDetection: { asyncCallbackUrl: `${HOOKS}/amd?call=1`, mode: 'DetectMessageEnd' },
      timeoutSeconds: 25,
    });

    expect(placed).toEqual({ providerCallSid: expect.stringMatching(/^CA[0-9a-f]{32}$/), status: 'queued' });
    const [request] = fake.requests;
    expect(request).toMatchObject({ method: 'POST', path: `/2010-04-01/Accounts/${fake.accountSid}/Calls.json`, username: fake.accountSid });
    expect(request!.params).toEqual({
      To: CALLEE,
      From: CALLER,
      Url: `${HOOKS}/voice?call=1`,
      Method: 'POST',
      StatusCallback: `${HOOKS}/status?call=1`,
      StatusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
      StatusCallbackMethod: 'POST',
      MachineDetection: 'DetectMessageEnd',
      AsyncAmd: 'true',
      AsyncAmdStatusCallback: `${HOOKS}/amd?call=1`,
      AsyncAmdStatusCallbackMethod: 'POST',
      Timeout: '25',
    });
    expect(fake.call(placed.providerCallSid).to).toBe(CALLEE);
  });

  it('sends no machine detection parameters when AMD is not asked for', async () => {
    await placeCall();
    expect(Object.keys(fake.requests[0]!.params).filter((k) => /Amd|MachineDetection/.test(k))).toEqual([]);
  });

  it('hangs up by setting the call status to completed', async () => {
    const sid = await placeCall();
    await provider.hangUp(sid);
    const update = fake.requests.at(-1)!;
    expect(update).toMatchObject({ method: 'POST', path: `/2010-04-01/Accounts/${fake.accountSid}/Calls/${sid}.json` });
    expect(update.params).toEqual({ Status: 'completed' });
    // Still queued when hung up, so Twilio records it as canceled rather than completed.
    expect(fake.call(sid).status).toBe('canceled');
  });

  it('treats hanging up a call that is no longer in progress as done', async () => {
    const sid = await placeCall();
    fake.failNext({ status: 400, code: 21220, message: 'Call is not in-progress. Cannot redirect.' });
    await expect(provider.hangUp(sid)).resolves.toBeUndefined();
  });

  it('replaces the TwiML of a live call', async () => {
    const sid = await placeCall();
    const twiml = '<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+12125550100</Dial></Response>';
    await provider.updateCallTwiml(sid, twiml);
    expect(fake.requests.at(-1)!.params).toEqual({ Twiml: twiml });
    expect(fake.call(sid).twiml).toBe(twiml);
  });

  it('refuses to redirect a call that has ended with a 409', async () => {
    const sid = await placeCall();
    await provider.hangUp(sid);
    const err = await telephonyError(provider.updateCallTwiml(sid, '<Response/>'));
    expect(err).toMatchObject({ reason: 'call_not_in_progress', httpStatus: 409, code: 21220, retryable: false });
  });

  it('reports an unknown call as not found', async () => {
    const err = await telephonyError(provider.hangUp(`CA${'0'.repeat(32)}`));
    expect(err).toMatchObject({ reason: 'not_found', httpStatus: 404, code: 20404, status: 404, retryable: false });
  });
});

describe('TwilioProvider numbers', () => {
  it('searches voice-capable local numbers by area code', async () => {
    const found = await provider.searchNumbers({ country: 'us', areaCode: '415', limit: 2 });

    expect(found.map((n) => n.phoneNumber)).toEqual(['+14155550101', '+14155550102']);
    expect(found[0]).toEqual({
      phoneNumber: '+14155550101',
      friendlyName: '(415) 555-0101',
      isoCountry: 'US',
      locality: 'San Francisco',
      region: 'CA',
      postalCode: '94107',
      capabilities: { voice: true, sms: true, mms: true, fax: false },
    });
    const request = fake.requests[0]!;
    expect(request.path).toBe(`/2010-04-01/Accounts/${fake.accountSid}/AvailablePhoneNumbers/US/Local.json`);
    expect(request.query).toMatchObject({ AreaCode: '415', VoiceEnabled: 'true', PageSize: '2' });
  });

  it('searches by digits the number contains and leaves out numbers without voice', async () => {
    // +13125550152 also ends in 015x but cannot take calls.
    const found = await provider.searchNumbers({ country: 'US', contains: '015*$' });
    expect(found.map((n) => n.phoneNumber)).toEqual(['+13125550151']);
    expect(fake.requests[0]!.query).toMatchObject({ Contains: '015*$', VoiceEnabled: 'true' });
  });

  it('answers an empty list when nothing matches', async () => {
    await expect(provider.searchNumbers({ country: 'US', areaCode: '917' })).resolves.toEqual([]);
  });

  it('buys a number pointed at our voice and status webhooks', async () => {
    const owned = await provider.buyNumber({
      phoneNumber: '+15105550123',
      voiceUrl: `${HOOKS}/voice`,
      statusCallbackUrl: `${HOOKS}/status`,
    });

    expect(owned).toEqual({
      providerSid: expect.stringMatching(/^PN[0-9a-f]{32}$/),
      phoneNumber: '+15105550123',
      friendlyName: '(510) 555-0123',
      voiceUrl: `${HOOKS}/voice`,
      statusCallbackUrl: `${HOOKS}/status`,
      capabilities: { voice: true, sms: true, mms: true, fax: false },
    });
    expect(fake.requests[0]!.params).toEqual({
      PhoneNumber: '+15105550123',
      VoiceUrl: `${HOOKS}/voice`,
      VoiceMethod: 'POST',
      StatusCallback: `${HOOKS}/status`,
      StatusCallbackMethod: 'POST',
    });
    expect(fake.available.some((n) => n.phoneNumber === '+15105550123')).toBe(false);
  });

  it('reports a number someone else bought as not available (409)', async () => {
    const err = await telephonyError(
      provider.buyNumber({ phoneNumber: '+15105550199', voiceUrl: `${HOOKS}/voice`, statusCallbackUrl: `${HOOKS}/status` }),
    );
    expect(err).toMatchObject({ reason: 'number_not_available', httpStatus: 409, code: 21422, retryable: false });
    expect(err.moreInfo).toBe('https://www.twilio.com/docs/errors/21422');
  });

  it('imports an owned number by SID, with no webhooks as null', async () => {
    const existing = fake.addOwnedNumber({ phoneNumber: '+13125550100' });
    await expect(provider.getNumber(existing.sid)).resolves.toEqual({
      providerSid: existing.sid,
      phoneNumber: '+13125550100',
      friendlyName: '(312) 555-0100',
      voiceUrl: null,
      statusCallbackUrl: null,
      capabilities: { voice: true, sms: true, mms: true, fax: false },
    });
  });

  it('configures an owned number with our webhooks', async () => {
    const existing = fake.addOwnedNumber({ phoneNumber: '+13125550100', voiceUrl: 'https://old.example/voice' });
    const updated = await provider.configureNumber(existing.sid, { voiceUrl: `${HOOKS}/voice`, statusCallbackUrl: `${HOOKS}/status` });

    expect(updated).toMatchObject({ voiceUrl: `${HOOKS}/voice`, statusCallbackUrl: `${HOOKS}/status` });
    expect(fake.requests[0]!.params).toEqual({
      VoiceUrl: `${HOOKS}/voice`,
      VoiceMethod: 'POST',
      StatusCallback: `${HOOKS}/status`,
      StatusCallbackMethod: 'POST',
    });
    expect(fake.numbers[0]).toMatchObject({ voiceUrl: `${HOOKS}/voice`, statusCallback: `${HOOKS}/status` });
  });

  it('releases a number so it no longer exists', async () => {
    const existing = fake.addOwnedNumber({ phoneNumber: '+13125550100' });
    await provider.releaseNumber(existing.sid);

    expect(fake.requests[0]).toMatchObject({ method: 'DELETE', path: `/2010-04-01/Accounts/${fake.accountSid}/IncomingPhoneNumbers/${existing.sid}.json` });
    const err = await telephonyError(provider.getNumber(existing.sid));
    expect(err).toMatchObject({ reason: 'not_found', httpStatus: 404, code: 20404 });
  });
});

describe('TwilioProvider input checks', () => {
  const hooks = { voiceUrl: `${HOOKS}/voice`, statusCallbackUrl: `${HOOKS}/status` };

  it.each([
    ['a national number as to', () => provider.placeCall({ ...hooks, to: '4155550100', from: CALLER }), /to "4155550100" must be in E\.164 format/],
    ['a formatted from', () => provider.placeCall({ ...hooks, to: CALLEE, from: '+1 415 555 0100' }), /without spaces or punctuation: \+14155550100/],
    ['a number that cannot exist', () => provider.placeCall({ ...hooks, to: '+15551234567', from: CALLER }), /not a valid phone number/],
    ['an empty number to buy', () => provider.buyNumber({ ...hooks, phoneNumber: '' }), /phoneNumber is required/],
  ])('rejects %s with a 400 before calling Twilio', async (_case, attempt, message) => {
    const err = await telephonyError(attempt());
    expect(err).toMatchObject({ reason: 'invalid_phone_number', httpStatus: 400, retryable: false });
    expect(err.message).toMatch(message);
    expect(fake.requests).toEqual([]);
  });

  it.each([
    ['a call SID with a path in it', () => provider.hangUp('CA../../IncomingPhoneNumbers/PN1')],
    ['a number SID of the wrong kind', () => provider.getNumber(`CA${'0'.repeat(32)}`)],
    ['a three-letter country', () => provider.searchNumbers({ country: 'USA' })],
    ['an area code that is not three digits', () => provider.searchNumbers({ country: 'US', areaCode: '41' })],
  ])('rejects %s with a 400 before calling Twilio', async (_case, attempt) => {
    const err = await telephonyError(attempt());
    expect(err).toMatchObject({ reason: 'invalid_request', httpStatus: 400 });
    expect(fake.requests).toEqual([]);
  });
});

describe('TwilioProvider errors', () => {
  it.each([
    { status: 400, code: 21211, reason: 'invalid_phone_number', httpStatus: 400, retryable: false },
    { status: 400, code: 21421, reason: 'invalid_phone_number', httpStatus: 400, retryable: false },
    { status: 400, code: 21452, reason: 'number_not_available', httpStatus: 422, retryable: false },
    { status: 400, code: 21210, reason: 'not_permitted', httpStatus: 422, retryable: false },
    { status: 400, code: 29999, reason: 'invalid_request', httpStatus: 422, retryable: false },
    { status: 429, code: 20429, reason: 'provider_unavailable', httpStatus: 502, retryable: true },
    { status: 500, code: 20500, reason: 'provider_unavailable', httpStatus: 502, retryable: true },
    { status: 503, code: undefined, reason: 'provider_unavailable', httpStatus: 502, retryable: true },
  ])('maps Twilio $status/$code to $httpStatus $reason (retryable: $retryable)', async ({ status, code, ...expected }) => {
    fake.failNext({ status, code, message: 'Twilio said no' });
    const err = await telephonyError(placeCall());
    expect(err).toMatchObject({ ...expected, code, status, provider: 'twilio' });
    expect(err.message).toContain('Twilio said no');
  });

  it('reports wrong credentials as a non-retryable 502 that names the settings to check', async () => {
    const wrong = new TwilioProvider({ accountSid: fake.accountSid, authToken: 'not-the-token', baseUrl: fake.baseUrl });
    const err = await telephonyError(wrong.searchNumbers({ country: 'US' }));
    expect(err).toMatchObject({ reason: 'provider_auth_failed', httpStatus: 502, code: 20003, status: 401, retryable: false });
    expect(err.message).toMatch(/TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN/);
  });

  it('authenticates with an API key and secret when given', async () => {
    const keyed = new TwilioProvider({
      accountSid: fake.accountSid,
      apiKeySid: `SK${'1'.repeat(32)}`,
      apiKeySecret: 'key-secret',
      baseUrl: fake.baseUrl,
    });
    await keyed.searchNumbers({ country: 'US', areaCode: '212' });
    expect(fake.requests[0]).toMatchObject({ username: `SK${'1'.repeat(32)}`, status: 200 });
  });

  it('reports an unreachable Twilio as a retryable 502', async () => {
    const gone = await startFakeTwilio();
    await gone.close();
    const offline = new TwilioProvider({ accountSid: gone.accountSid, authToken: gone.authToken, baseUrl: gone.baseUrl });
    const err = await telephonyError(offline.getNumber(`PN${'0'.repeat(32)}`));
    expect(err).toMatchObject({ reason: 'provider_unavailable', httpStatus: 502, retryable: true });
  });

  it('turns into the API error our error handler answers with', async () => {
    fake.failNext({ status: 400, code: 21422, message: 'PhoneNumber +15105550123 is not available' });
    const err = await telephonyError(provider.buyNumber({ phoneNumber: '+15105550123', voiceUrl: `${HOOKS}/v`, statusCallbackUrl: `${HOOKS}/s` }));
    const api = err.toAppError();
    expect(api).toBeInstanceOf(AppError);
    expect(api).toMatchObject({
      code: 'number_not_available',
      status: 409,
      details: { provider: 'twilio', providerCode: 21422, moreInfo: 'https://www.twilio.com/docs/errors/21422' },
    });
  });
});

describe('rebaseTwilioUri', () => {
  it('moves a Twilio URL onto the base origin and prefix, keeping path and query', () => {
    const uri = 'https://api.twilio.com/2010-04-01/Accounts/AC1/AvailablePhoneNumbers/US/Local.json?AreaCode=415&PageSize=2';
    expect(rebaseTwilioUri(uri, new URL('http://127.0.0.1:4010/proxy/'))).toBe(
      'http://127.0.0.1:4010/proxy/2010-04-01/Accounts/AC1/AvailablePhoneNumbers/US/Local.json?AreaCode=415&PageSize=2',
    );
  });

  it('leaves URLs outside twilio.com alone', () => {
    expect(rebaseTwilioUri('https://example.com/x', new URL('http://127.0.0.1:1'))).toBe('https://example.com/x');
  });
});
