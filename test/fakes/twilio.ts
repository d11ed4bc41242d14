// A local stand-in for Twilio's REST API 2010-04-01 (Calls, IncomingPhoneNumbers, AvailablePhoneNumbers) that
// speaks the real wire format: HTTP Basic auth with the account SID and auth token or an API key, form-encoded
// bodies with repeated names for lists, snake_case JSON with RFC 2822 dates, Twilio's paging envelope and its
// error JSON and codes. The official SDK talks to it unmodified through TwilioProvider's `baseUrl`.
//
// It also plays Twilio's side of the webhooks: status callbacks, AMD results and voice (TwiML) requests,
// signed with X-Twilio-Signature over the exact URL it posts to, so the real signature check runs. The fake
// never posts on its own; each test decides when Twilio "calls back", which makes ordering deterministic.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import twilio from 'twilio';

/** Form or query parameters; a name sent more than once carries every value, in order. */
export type FakeParams = Record<string, string | string[]>;

/** One REST request the fake received. */
export interface FakeTwilioRequest {
  method: string;
  /** Path without the query string, e.g. `/2010-04-01/Accounts/AC.../Calls.json`. */
  path: string;
  query: FakeParams;
  /** The form-encoded body. */
  params: FakeParams;
  /** The Basic auth user (account SID or API key SID), or null without credentials. */
  username: string | null;
  headers: IncomingHttpHeaders;
  /** The status the fake answered with (set once answered). */
  status?: number;
}

/** What a number can do, as Twilio reports it. */
export interface FakeCapabilities {
  voice: boolean;
  sms: boolean;
  mms: boolean;
  fax: boolean;
}

/** A number in the fake's inventory of numbers for sale. */
export interface FakeAvailableNumber {
  /** E.164. */
  phoneNumber: string;
  /** ISO country; default from the number. */
  isoCountry?: string;
  locality?: string | null;
  region?: string | null;
  postalCode?: string | null;
  rateCenter?: string | null;
  lata?: string | null;
  /** Default: voice, SMS and MMS. */
  capabilities?: Partial<FakeCapabilities>;
}

/** A number the fake account owns. */
export interface FakeOwnedNumber {
  sid: string;
  phoneNumber: string;
  friendlyName: string;
  isoCountry: string;
  voiceUrl: string;
  voiceMethod: string;
  statusCallback: string;
  statusCallbackMethod: string;
  capabilities: FakeCapabilities;
  dateCreated: Date;
  dateUpdated: Date;
}

/** A call as the fake knows it. */
export interface FakeCall {
  sid: string;
  direction: 'outbound-api' | 'inbound';
  to: string;
  from: string;
  status: string;
  /** The voice webhook: `Url` of an outbound call, the number's voice URL for an inbound one. */
  url: string | null;
  method: string;
  /** The TwiML the call runs instead of (or since, after an update) `url`. */
  twiml: string | null;
  statusCallback: string | null;
  statusCallbackMethod: string;
  /** `StatusCallbackEvent` values subscribed (`completed` is always sent). */
  statusCallbackEvents: string[];
  machineDetection: string | null;
  asyncAmd: boolean;
  asyncAmdStatusCallback: string | null;
  asyncAmdStatusCallbackMethod: string;
  timeout: number | null;
  /** The AMD verdict once sent with `sendAmdCallback`. */
  answeredBy: string | null;
  /** Every parameter of the create request, exactly as received. */
  params: FakeParams;
  /** The body of every update request (hangups, TwiML redirects), in order. */
  updates: FakeParams[];
  dateCreated: Date;
  dateUpdated: Date;
  startTime: Date | null;
  endTime: Date | null;
  /** Seconds from answer to end, once ended. */
  duration: number | null;
  /** The SequenceNumber the next status callback carries. */
  nextSequence: number;
}

/** A REST failure to inject: the next matching request gets this Twilio error instead of its answer. */
export interface FakeTwilioFailure {
  status: number;
  /** Twilio error code; omitted sends a body without one. */
  code?: number;
  message?: string;
  /** Only requests with this method (e.g. `POST`). */
  method?: string;
  /** Only requests whose path contains this string or matches this pattern. */
  path?: string | RegExp;
  /** How many matching requests fail (default 1). */
  times?: number;
}

/**
 * A REST answer held back: the request was applied (the call exists, the hangup happened), but its answer
 * stays on the wire until `release`, as when Twilio is slow to respond. Callbacks can be delivered meanwhile.
 */
export interface FakeTwilioHold {
  /** Resolves with the request once it arrived and was applied. */
  readonly arrived: Promise<FakeTwilioRequest>;
  /** Sends the held answer (at once if released before the request arrived). */
  release(): void;
}

/** A webhook Twilio is about to send: where, how, and its parameters. */
export interface FakeWebhook {
  /** The webhook URL as configured (for GET, the parameters are added to its query when sent). */
  url: string;
  method: 'GET' | 'POST';
  params: FakeParams;
}

/** What a webhook delivery sent and got back; pass it to `deliver` to replay it exactly. */
export interface FakeWebhookDelivery extends FakeWebhook {
  /** The URL actually requested (and signed): `url`, plus the parameters for GET. */
  requestedUrl: string;
  /** The X-Twilio-Signature sent, or null when sent unsigned. */
  signature: string | null;
  status: number;
  body: string;
  contentType: string | null;
}

/** How `postWebhook` signs. */
export interface FakeWebhookOptions {
  method?: 'GET' | 'POST';
  /** undefined signs with the account's auth token; null sends no signature; a string sends that signature. */
  signature?: string | null;
  /** Signs with this token instead of the account's (a mis-signed request). */
  authToken?: string;
}

/** Options for {@link startFakeTwilio}. */
export interface FakeTwilioOptions {
  /** Default: a random `AC...`. */
  accountSid?: string;
  /** Default: random 32 hex characters. */
  authToken?: string;
  /** API keys (`SK...` and secret) accepted as Basic auth besides the auth token. */
  apiKeys?: Array<{ sid: string; secret: string }>;
  /** Numbers for sale; default {@link DEFAULT_AVAILABLE_NUMBERS}. */
  availableNumbers?: FakeAvailableNumber[];
  /** Numbers the account already owns (to import by SID). */
  ownedNumbers?: Array<Partial<Omit<FakeOwnedNumber, 'phoneNumber'>> & { phoneNumber: string }>;
  /** Refuse outbound calls whose From is not an owned number, as a real account does (21210). Default false. */
  requireOwnedCallerId?: boolean;
}

/** A running fake Twilio. */
export interface FakeTwilio {
  /** `http://127.0.0.1:PORT`: TwilioProvider's `baseUrl`. */
  readonly baseUrl: string;
  readonly accountSid: string;
  readonly authToken: string;
  /** Every REST request, in order. */
  readonly requests: FakeTwilioRequest[];
  /** Every call created (outbound) or started (inbound), in order. */
  readonly calls: FakeCall[];
  /** Numbers the account owns. */
  readonly numbers: FakeOwnedNumber[];
  /** Numbers for sale (a bought number leaves this list). */
  readonly available: FakeAvailableNumber[];
  /** Every webhook the fake delivered, in order. */
  readonly deliveries: FakeWebhookDelivery[];
  /** The call with this SID; throws when there is none. */
  call(sid: string): FakeCall;
  /** Makes the next matching REST request(s) fail with a Twilio error. */
  failNext(failure: FakeTwilioFailure): void;
  /** Holds back the answer to the next authenticated REST request `match` accepts (see {@link FakeTwilioHold}). */
  holdNext(match: (req: FakeTwilioRequest) => boolean): FakeTwilioHold;
  /** Adds a number the account owns, as if bought elsewhere. */
  addOwnedNumber(number: Partial<Omit<FakeOwnedNumber, 'phoneNumber'>> & { phoneNumber: string }): FakeOwnedNumber;
  /**
   * Moves the call to `status` and builds the call-progress status callback Twilio would send (CallSid,
   * AccountSid, CallStatus, CallDuration, Direction, From, To, Timestamp, SequenceNumber...) without sending
   * it, so a test can deliver several out of order. `extra` overrides or adds parameters (e.g.
   * `{ CallDuration: '42' }`). Throws if Twilio would not send this event for the call.
   */
  prepareStatusCallback(callSid: string, status: string, extra?: Record<string, string>): FakeWebhook;
  /** `prepareStatusCallback` and `deliver` in one go. */
  sendStatusCallback(callSid: string, status: string, extra?: Record<string, string>): Promise<FakeWebhookDelivery>;
  /** Posts the async AMD result (AnsweredBy, MachineDetectionDuration) to the call's AsyncAmdStatusCallback. */
  sendAmdCallback(
    callSid: string,
    answeredBy: 'human' | 'machine_start' | 'machine_end_beep' | 'machine_end_silence' | 'machine_end_other' | 'fax' | 'unknown',
    extra?: Record<string, string>,
  ): Promise<FakeWebhookDelivery>;
  /**
   * Requests the call's voice URL as Twilio does when the callee answers (the call becomes in-progress) and
   * returns the TwiML. Throws on a non-2xx answer.
   */
  requestVoiceUrl(callSid: string, extra?: Record<string, string>): Promise<string>;
  /** A call arriving at an owned number: posts the number's voice URL (CallStatus ringing, Direction inbound). */
  startInboundCall(opts: { from: string; to: string; extra?: Record<string, string> }): Promise<{
    call: FakeCall;
    response: FakeWebhookDelivery;
  }>;
  /** Sends a prepared webhook, or replays a past delivery exactly, signed like Twilio (or not: see options). */
  deliver(webhook: FakeWebhook, options?: Omit<FakeWebhookOptions, 'method'>): Promise<FakeWebhookDelivery>;
  /** Sends form parameters to any URL, signed like Twilio (or not: see options). */
  postWebhook(url: string, params: FakeParams, options?: FakeWebhookOptions): Promise<FakeWebhookDelivery>;
  /** Closes the server and every connection. */
  close(): Promise<void>;
}

/** The default inventory: US numbers in a few area codes, and two in London. */
export const DEFAULT_AVAILABLE_NUMBERS: readonly FakeAvailableNumber[] = [
  { phoneNumber: '+14155550101', locality: 'San Francisco', region: 'CA', postalCode: '94107', rateCenter: 'SNFC CNTL', lata: '722' },
  { phoneNumber: '+14155550102', locality: 'San Francisco', region: 'CA', postalCode: '94107', rateCenter: 'SNFC CNTL', lata: '722' },
  { phoneNumber: '+14155550177', locality: 'San Francisco', region: 'CA', postalCode: '94110', rateCenter: 'SNFC CNTL', lata: '722' },
  { phoneNumber: '+15105550111', locality: 'Oakland', region: 'CA', postalCode: '94612', rateCenter: 'OKLD', lata: '722' },
  { phoneNumber: '+15105550123', locality: 'Oakland', region: 'CA', postalCode: '94612', rateCenter: 'OKLD', lata: '722' },
  { phoneNumber: '+12125550131', locality: 'New York', region: 'NY', postalCode: '10001', rateCenter: 'NWYRCYZN01', lata: '132' },
  { phoneNumber: '+12125550132', locality: 'New York', region: 'NY', postalCode: '10001', rateCenter: 'NWYRCYZN01', lata: '132' },
  { phoneNumber: '+12065550141', locality: 'Seattle', region: 'WA', postalCode: '98101', rateCenter: 'SEATTLE', lata: '674' },
  { phoneNumber: '+13125550151', locality: 'Chicago', region: 'IL', postalCode: '60601', rateCenter: 'CHICAGO', lata: '358' },
  { phoneNumber: '+13125550152', locality: 'Chicago', region: 'IL', postalCode: '60601', rateCenter: 'CHICAGO', lata: '358', capabilities: { voice: false } },
  { phoneNumber: '+442071838750', locality: 'London', region: null, postalCode: null },
  { phoneNumber: '+442071838751', locality: 'London', region: null, postalCode: null },
];

const API = '/2010-04-01';
const TERMINAL = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);
const SIP_CODES: Record<string, string> = { completed: '200', busy: '486', 'no-answer': '487', canceled: '487', failed: '500' };

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const newSid = (prefix: string): string => `${prefix}${hex(16)}`;
/** Twilio's date format: RFC 2822 with a numeric zone. */
const rfc2822 = (d: Date | null): string | null => (d ? d.toUTCString().replace('GMT', '+0000') : null);

function first(params: FakeParams, name: string): string | undefined {
  const v = params[name];
  return Array.isArray(v) ? v[0] : v;
}

function all(params: FakeParams, name: string): string[] {
  const v = params[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function parseForm(text: string): FakeParams {
  const out: FakeParams = {};
  for (const [k, v] of new URLSearchParams(text)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function encodeForm(params: FakeParams): string {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const item of Array.isArray(v) ? v : [v]) out.append(k, item);
  return out.toString();
}

function phone(value: string | undefined): { e164: string; country: string; friendly: string } | null {
  if (!value || !/^\+[1-9]\d{1,14}$/.test(value)) return null;
  const parsed = parsePhoneNumberFromString(value);
  if (!parsed?.isValid()) return null;
  const friendly = parsed.countryCallingCode === '1' ? parsed.formatNational() : parsed.number;
  return { e164: parsed.number, country: parsed.country ?? '', friendly };
}

const isHttpUrl = (value: string): boolean => {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
};

class TwilioRestError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

const fail = (status: number, code: number, message: string): never => {
  throw new TwilioRestError(status, code, message);
};

// Twilio's "contains" pattern: digits, keypad letters, `*` one digit, `%` any run, leading `+` / trailing `$` anchors.
function containsPattern(pattern: string): RegExp {
  const keypad: Record<string, string> = {};
  ['abc', 'def', 'ghi', 'jkl', 'mno', 'pqrs', 'tuv', 'wxyz'].forEach((letters, i) => {
    for (const l of letters) keypad[l] = String(i + 2);
  });
  let body = '';
  for (const ch of pattern.toLowerCase().replace(/^\+/, '').replace(/\$$/, '')) {
    if (ch === '*') body += '\\d';
    else if (ch === '%') body += '\\d*';
    else body += keypad[ch] ?? ch.replace(/[^0-9]/g, '');
  }
  return new RegExp(`${pattern.startsWith('+') ? '^' : ''}${body}${pattern.endsWith('$') ? '$' : ''}`);
}

/** Starts a fake Twilio REST API on 127.0.0.1 (random port). */
export async function startFakeTwilio(options: FakeTwilioOptions = {}): Promise<FakeTwilio> {
  const accountSid = options.accountSid ?? newSid('AC');
  const authToken = options.authToken ?? hex(16);
  const apiKeys = new Map((options.apiKeys ?? []).map((k) => [k.sid, k.secret]));
  const requests: FakeTwilioRequest[] = [];
  const calls: FakeCall[] = [];
  const numbers: FakeOwnedNumber[] = [];
  const available: FakeAvailableNumber[] = (options.availableNumbers ?? DEFAULT_AVAILABLE_NUMBERS).map((n) => ({ ...n }));
  const deliveries: FakeWebhookDelivery[] = [];
  const failures: Array<FakeTwilioFailure & { left: number }> = [];
  const holds: Array<{ match: (req: FakeTwilioRequest) => boolean; arrive: (req: FakeTwilioRequest) => void; released: Promise<void> }> = [];
  const accountPath = `${API}/Accounts/${accountSid}`;

  const addOwnedNumber: FakeTwilio['addOwnedNumber'] = (n) => {
    const p = phone(n.phoneNumber);
    if (!p) throw new Error(`fake twilio: ${n.phoneNumber} is not a valid E.164 number`);
    const now = new Date();
    const owned: FakeOwnedNumber = {
      sid: n.sid ?? newSid('PN'),
      phoneNumber: p.e164,
      friendlyName: n.friendlyName ?? p.friendly,
      isoCountry: n.isoCountry ?? p.country,
      voiceUrl: n.voiceUrl ?? '',
      voiceMethod: n.voiceMethod ?? 'POST',
      statusCallback: n.statusCallback ?? '',
      statusCallbackMethod: n.statusCallbackMethod ?? 'POST',
      capabilities: n.capabilities ?? { voice: true, sms: true, mms: true, fax: false },
      dateCreated: n.dateCreated ?? now,
      dateUpdated: n.dateUpdated ?? now,
    };
    numbers.push(owned);
    return owned;
  };
  for (const n of options.ownedNumbers ?? []) addOwnedNumber(n);

  const findCall = (sid: string): FakeCall => {
    const call = calls.find((c) => c.sid === sid);
    if (!call) throw new Error(`fake twilio: no call ${sid}`);
    return call;
  };

  // ---- JSON shapes ----

  const callJson = (c: FakeCall) => {
    const uri = `${accountPath}/Calls/${c.sid}.json`;
    const sub = (name: string) => `${accountPath}/Calls/${c.sid}/${name}.json`;
    return {
      account_sid: accountSid,
      annotation: null,
      answered_by: c.answeredBy,
      api_version: '2010-04-01',
      caller_name: null,
      date_created: rfc2822(c.dateCreated),
      date_updated: rfc2822(c.dateUpdated),
      direction: c.direction,
      duration: c.duration === null ? null : String(c.duration),
      end_time: rfc2822(c.endTime),
      forwarded_from: null,
      from: c.from,
      from_formatted: phone(c.from)?.friendly ?? c.from,
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: numbers.find((n) => n.phoneNumber === (c.direction === 'inbound' ? c.to : c.from))?.sid ?? null,
      price: null,
      price_unit: 'USD',
      queue_time: '0',
      sid: c.sid,
      start_time: rfc2822(c.startTime),
      status: c.status,
      subresource_uris: {
        feedback: sub('Feedback'),
        notifications: sub('Notifications'),
        recordings: sub('Recordings'),
        streams: sub('Streams'),
        payments: sub('Payments'),
        events: sub('Events'),
        siprec: sub('Siprec'),
        transcriptions: sub('Transcriptions'),
      },
      to: c.to,
      to_formatted: phone(c.to)?.friendly ?? c.to,
      trunk_sid: null,
      uri,
    };
  };

  const numberJson = (n: FakeOwnedNumber) => ({
    account_sid: accountSid,
    address_requirements: 'none',
    address_sid: null,
    api_version: '2010-04-01',
    beta: false,
    bundle_sid: null,
    capabilities: { ...n.capabilities },
    date_created: rfc2822(n.dateCreated),
    date_updated: rfc2822(n.dateUpdated),
    emergency_address_sid: null,
    emergency_address_status: 'unregistered',
    emergency_status: 'Active',
    friendly_name: n.friendlyName,
    identity_sid: null,
    origin: 'twilio',
    phone_number: n.phoneNumber,
    sid: n.sid,
    sms_application_sid: '',
    sms_fallback_method: 'POST',
    sms_fallback_url: '',
    sms_method: 'POST',
    sms_url: '',
    status: 'in-use',
    status_callback: n.statusCallback,
    status_callback_method: n.statusCallbackMethod,
    subresource_uris: { assigned_add_ons: `${accountPath}/IncomingPhoneNumbers/${n.sid}/AssignedAddOns.json` },
    trunk_sid: null,
    type: 'local',
    uri: `${accountPath}/IncomingPhoneNumbers/${n.sid}.json`,
    voice_application_sid: '',
    voice_caller_id_lookup: false,
    voice_fallback_method: 'POST',
    voice_fallback_url: '',
    voice_method: n.voiceMethod,
    voice_receive_mode: 'voice',
    voice_url: n.voiceUrl,
  });

  const availableJson = (n: FakeAvailableNumber) => {
    const p = phone(n.phoneNumber);
    const caps = { voice: true, sms: true, mms: true, fax: false, ...n.capabilities };
    return {
      friendly_name: p?.friendly ?? n.phoneNumber,
      phone_number: n.phoneNumber,
      lata: n.lata ?? null,
      locality: n.locality ?? null,
      rate_center: n.rateCenter ?? null,
      latitude: null,
      longitude: null,
      region: n.region ?? null,
      postal_code: n.postalCode ?? null,
      iso_country: n.isoCountry ?? p?.country ?? '',
      address_requirements: 'none',
      beta: false,
      // Twilio spells these two upper-case for available numbers (and lower-case for owned ones).
      capabilities: { voice: caps.voice, SMS: caps.sms, MMS: caps.mms, fax: caps.fax },
    };
  };

  // Twilio's list envelope: the items under `key`, plus page, page_size, uri, next_page_uri...
  const pageOf = <T>(key: string, items: T[], path: string, query: FakeParams) => {
    const pageSize = Math.min(Math.max(Number(first(query, 'PageSize') ?? 50) || 50, 1), 1000);
    const page = Math.max(Number(first(query, 'Page') ?? 0) || 0, 0);
    const start = page * pageSize;
    const slice = items.slice(start, start + pageSize);
    const filters: FakeParams = {};
    for (const [k, v] of Object.entries(query)) if (k !== 'Page' && k !== 'PageSize' && k !== 'PageToken') filters[k] = v;
    const pageUri = (n: number) => `${path}?${encodeForm({ ...filters, PageSize: String(pageSize), Page: String(n) })}`;
    return {
      [key]: slice,
      end: start + Math.max(slice.length - 1, 0),
      first_page_uri: pageUri(0),
      next_page_uri: start + pageSize < items.length ? `${pageUri(page + 1)}&PageToken=PA${hex(8)}` : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? pageUri(page - 1) : null,
      start,
      uri: `${path}?${encodeForm({ ...filters, PageSize: String(pageSize), Page: String(page) })}`,
    };
  };

  // ---- REST handlers ----

  const createCall = (params: FakeParams): [number, unknown] => {
    const toRaw = first(params, 'To');
    const fromRaw = first(params, 'From');
    if (!toRaw) fail(400, 21201, "No 'To' number is specified");
    if (!fromRaw) fail(400, 21213, "No 'From' number is specified");
    const to = phone(toRaw) ?? fail(400, 21211, `Invalid 'To' Phone Number: ${toRaw}`);
    const from = phone(fromRaw) ?? fail(400, 21212, `Invalid 'From' Phone Number: ${fromRaw}`);
    if (options.requireOwnedCallerId && !numbers.some((n) => n.phoneNumber === from.e164)) {
      fail(
        400,
        21210,
        `The source phone number provided, ${fromRaw}, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio.`,
      );
    }
    const url = first(params, 'Url');
    const twiml = first(params, 'Twiml');
    if (!url && !twiml && !first(params, 'ApplicationSid')) fail(400, 21205, 'Url parameter is required.');
    if (url && !isHttpUrl(url)) fail(400, 21205, `Url is not a valid URL: ${url}`);
    const statusCallback = first(params, 'StatusCallback');
    if (statusCallback && !isHttpUrl(statusCallback)) fail(400, 21609, `Invalid StatusCallback url: ${statusCallback}`);
    const amdCallback = first(params, 'AsyncAmdStatusCallback');
    if (amdCallback && !isHttpUrl(amdCallback)) fail(400, 21609, `Invalid AsyncAmdStatusCallback url: ${amdCallback}`);
    const machineDetection = first(params, 'MachineDetection');
    if (machineDetection && machineDetection !== 'Enable' && machineDetection !== 'DetectMessageEnd') {
      fail(400, 21626, `Invalid MachineDetection value: ${machineDetection}`);
    }
    const timeout = first(params, 'Timeout');
    const now = new Date();
    const call: FakeCall = {
      sid: newSid('CA'),
      direction: 'outbound-api',
      to: to.e164,
      from: from.e164,
      status: 'queued',
      url: url ?? null,
      method: first(params, 'Method') ?? 'POST',
      twiml: twiml ?? null,
      statusCallback: statusCallback ?? null,
      statusCallbackMethod: first(params, 'StatusCallbackMethod') ?? 'POST',
      statusCallbackEvents: all(params, 'StatusCallbackEvent').flatMap((e) => e.split(' ')).filter(Boolean),
      machineDetection: machineDetection ?? null,
      asyncAmd: first(params, 'AsyncAmd') === 'true',
      asyncAmdStatusCallback: amdCallback ?? null,
      asyncAmdStatusCallbackMethod: first(params, 'AsyncAmdStatusCallbackMethod') ?? 'POST',
      timeout: timeout === undefined ? null : Number(timeout),
      answeredBy: null,
      params,
      updates: [],
      dateCreated: now,
      dateUpdated: now,
      startTime: null,
      endTime: null,
      duration: null,
      nextSequence: 0,
    };
    calls.push(call);
    return [201, callJson(call)];
  };

  const endCall = (call: FakeCall, status: string, at = new Date()) => {
    call.status = status;
    call.endTime = at;
    call.duration = call.startTime ? Math.round((at.getTime() - call.startTime.getTime()) / 1000) : 0;
  };

  const updateCall = (call: FakeCall, params: FakeParams): [number, unknown] => {
    const status = first(params, 'Status');
    const twiml = first(params, 'Twiml');
    const url = first(params, 'Url');
    if (status !== undefined && status !== 'completed' && status !== 'canceled') {
      fail(400, 20001, `Invalid Status: ${status}. Must be one of completed, canceled`);
    }
    if ((twiml !== undefined || url !== undefined) && TERMINAL.has(call.status)) {
      fail(400, 21220, 'Call is not in-progress. Cannot redirect.');
    }
    call.updates.push(params);
    if (twiml !== undefined) call.twiml = twiml;
    if (url !== undefined) {
      call.url = url;
      call.twiml = null;
      call.method = first(params, 'Method') ?? 'POST';
    }
    if (status !== undefined && !TERMINAL.has(call.status)) {
      // `completed` hangs up an answered call and cancels one still ringing; `canceled` never ends a live call.
      if (call.status === 'in-progress') {
        if (status === 'completed') endCall(call, 'completed');
      } else {
        endCall(call, 'canceled');
      }
    }
    call.dateUpdated = new Date();
    return [200, callJson(call)];
  };

  const buyNumber = (params: FakeParams): [number, unknown] => {
    const wanted = first(params, 'PhoneNumber');
    const areaCode = first(params, 'AreaCode');
    let index: number;
    if (wanted !== undefined) {
      const p = phone(wanted) ?? fail(400, 21421, `PhoneNumber ${wanted} is invalid`);
      index = available.findIndex((n) => n.phoneNumber === p.e164);
      if (index < 0) fail(400, 21422, `PhoneNumber ${wanted} is not available`);
    } else if (areaCode !== undefined) {
      if (!/^[2-9]\d{2}$/.test(areaCode)) fail(400, 21451, `Invalid area code: ${areaCode}`);
      index = available.findIndex((n) => n.phoneNumber.startsWith(`+1${areaCode}`));
      if (index < 0) fail(400, 21452, `No phone numbers found in area code ${areaCode}`);
    } else {
      return fail(400, 21421, 'A PhoneNumber or AreaCode is required');
    }
    const [bought] = available.splice(index, 1) as [FakeAvailableNumber];
    const caps = { voice: true, sms: true, mms: true, fax: false, ...bought.capabilities };
    const owned = addOwnedNumber({ phoneNumber: bought.phoneNumber, capabilities: caps, isoCountry: bought.isoCountry });
    applyNumberParams(owned, params);
    return [201, numberJson(owned)];
  };

  const applyNumberParams = (n: FakeOwnedNumber, params: FakeParams) => {
    for (const [name, url] of [
      ['VoiceUrl', first(params, 'VoiceUrl')],
      ['StatusCallback', first(params, 'StatusCallback')],
    ] as const) {
      if (url && !isHttpUrl(url)) fail(400, 21502, `${name} is not a valid URL: ${url}`);
    }
    const set = <K extends keyof FakeOwnedNumber>(key: K, name: string) => {
      const v = first(params, name);
      if (v !== undefined) (n[key] as string) = v;
    };
    set('friendlyName', 'FriendlyName');
    set('voiceUrl', 'VoiceUrl');
    set('voiceMethod', 'VoiceMethod');
    set('statusCallback', 'StatusCallback');
    set('statusCallbackMethod', 'StatusCallbackMethod');
    n.dateUpdated = new Date();
  };

  const searchLocal = (country: string, query: FakeParams, path: string): [number, unknown] => {
    const iso = country.toUpperCase();
    const inCountry = available.filter((n) => (n.isoCountry ?? phone(n.phoneNumber)?.country) === iso);
    if (inCountry.length === 0 && !['US', 'CA', 'GB'].includes(iso)) {
      fail(404, 20404, `The requested resource ${path} was not found`);
    }
    const areaCode = first(query, 'AreaCode');
    if (areaCode !== undefined && !/^[2-9]\d{2}$/.test(areaCode)) fail(400, 21451, `Invalid area code: ${areaCode}`);
    const contains = first(query, 'Contains');
    const pattern = contains ? containsPattern(contains) : null;
    const flag = (name: string) => first(query, name);
    const matches = inCountry.filter((n) => {
      const caps = { voice: true, sms: true, mms: true, fax: false, ...n.capabilities };
      if (areaCode && !n.phoneNumber.startsWith(`+1${areaCode}`)) return false;
      if (pattern && !pattern.test(n.phoneNumber.slice(1))) return false;
      if (flag('VoiceEnabled') === 'true' && !caps.voice) return false;
      if (flag('SmsEnabled') === 'true' && !caps.sms) return false;
      if (flag('MmsEnabled') === 'true' && !caps.mms) return false;
      if (flag('InRegion') && n.region !== flag('InRegion')) return false;
      if (flag('InPostalCode') && n.postalCode !== flag('InPostalCode')) return false;
      return true;
    });
    return [200, pageOf('available_phone_numbers', matches.map(availableJson), path, query)];
  };

  const notFound = (path: string): never => fail(404, 20404, `The requested resource ${path} was not found`);

  // The list filters of GET Calls.json: To, From, Status and StartTime> (a call not started yet counts from its creation).
  const callMatches = (c: FakeCall, query: FakeParams): boolean => {
    const q = (name: string) => first(query, name);
    if (q('To') && c.to !== q('To')) return false;
    if (q('From') && c.from !== q('From')) return false;
    if (q('Status') && c.status !== q('Status')) return false;
    const after = q('StartTime>');
    if (after && (c.startTime ?? c.dateCreated).getTime() < new Date(after).getTime()) return false;
    return true;
  };

  const route = (method: string, path: string, query: FakeParams, params: FakeParams): [number, unknown] => {
    const m = /^\/2010-04-01\/Accounts\/([^/]+)(\/.*)$/.exec(path);
    if (!m) return notFound(path);
    if (m[1] !== accountSid) return notFound(path);
    const rest = m[2]!;
    let r: RegExpExecArray | null;
    if (rest === '/Calls.json') {
      if (method === 'POST') return createCall(params);
      if (method === 'GET') return [200, pageOf('calls', calls.filter((c) => callMatches(c, query)).map(callJson), path, query)];
    } else if ((r = /^\/Calls\/([^/]+)\.json$/.exec(rest))) {
      const call = calls.find((c) => c.sid === r![1]) ?? notFound(path);
      if (method === 'GET') return [200, callJson(call)];
      if (method === 'POST') return updateCall(call, params);
      if (method === 'DELETE') {
        calls.splice(calls.indexOf(call), 1);
        return [204, null];
      }
    } else if (rest === '/IncomingPhoneNumbers.json') {
      if (method === 'POST') return buyNumber(params);
      if (method === 'GET') {
        const wanted = first(query, 'PhoneNumber');
        const list = numbers.filter((n) => !wanted || n.phoneNumber === wanted);
        return [200, pageOf('incoming_phone_numbers', list.map(numberJson), path, query)];
      }
    } else if ((r = /^\/IncomingPhoneNumbers\/([^/]+)\.json$/.exec(rest))) {
      const n = numbers.find((x) => x.sid === r![1]) ?? notFound(path);
      if (method === 'GET') return [200, numberJson(n)];
      if (method === 'POST') {
        applyNumberParams(n, params);
        return [200, numberJson(n)];
      }
      if (method === 'DELETE') {
        numbers.splice(numbers.indexOf(n), 1);
        return [204, null];
      }
    } else if ((r = /^\/AvailablePhoneNumbers\/([^/]+)\/Local\.json$/.exec(rest))) {
      if (method === 'GET') return searchLocal(r[1]!, query, path);
    } else {
      return notFound(path);
    }
    return fail(405, 20004, 'Method not allowed');
  };

  const authenticate = (header: string | undefined): { user: string | null; ok: boolean } => {
    const m = /^Basic\s+(.+)$/i.exec(header ?? '');
    if (!m) return { user: null, ok: false };
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { user: decoded, ok: false };
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    const ok = (user === accountSid && pass === authToken) || (apiKeys.has(user) && apiKeys.get(user) === pass);
    return { user, ok };
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (status === 204) {
      res.writeHead(204, headers).end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
  };

  // Twilio's error JSON, keys in Twilio's order; an error without a code has no code or more_info.
  const sendError = (res: ServerResponse, status: number, code: number | undefined, message: string, headers?: Record<string, string>) => {
    const body =
      code === undefined
        ? { message, status }
        : { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
    send(res, status, body, headers);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake.twilio');
    const method = (req.method ?? 'GET').toUpperCase();
    const auth = authenticate(req.headers.authorization);
    const record: FakeTwilioRequest = {
      method,
      path: url.pathname,
      query: parseForm(url.search),
      params: parseForm(Buffer.concat(chunks).toString('utf8')),
      username: auth.user,
      headers: req.headers,
    };
    requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));

    const failure = failures.find(
      (f) =>
        (!f.method || f.method.toUpperCase() === method) &&
        (!f.path || (typeof f.path === 'string' ? record.path.includes(f.path) : f.path.test(record.path))),
    );
    if (failure) {
      failure.left -= 1;
      if (failure.left <= 0) failures.splice(failures.indexOf(failure), 1);
      sendError(res, failure.status, failure.code, failure.message ?? `Injected failure (HTTP ${failure.status})`);
      return;
    }
    if (!auth.ok) {
      sendError(res, 401, 20003, 'Authenticate', { 'www-authenticate': 'Basic realm="Twilio API"' });
      return;
    }
    try {
      const [status, body] = route(method, record.path, record.query, record.params);
      const hold = holds.find((h) => h.match(record));
      if (hold) {
        holds.splice(holds.indexOf(hold), 1);
        hold.arrive(record);
        await hold.released;
      }
      send(res, status, body);
    } catch (err) {
      if (err instanceof TwilioRestError) sendError(res, err.status, err.code, err.message);
      else sendError(res, 500, 20500, `Internal Server Error: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 20500, String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;

  // ---- Twilio's side of the webhooks ----

  const postWebhook: FakeTwilio['postWebhook'] = async (url, params, opts = {}) => {
    const method = opts.method ?? 'POST';
    let target = url;
    let signed: FakeParams = params;
    if (method === 'GET') {
      const query = encodeForm(params);
      target = query ? `${url}${url.includes('?') ? '&' : '?'}${query}` : url;
      signed = {};
    }
    const signature =
      opts.signature === undefined ? twilio.getExpectedTwilioSignature(opts.authToken ?? authToken, target, signed) : opts.signature;
    const headers: Record<string, string> = {
      accept: '*/*',
      'user-agent': 'TwilioProxy/1.1',
      'i-twilio-idempotency-token': randomUUID(),
    };
    if (signature !== null) headers['x-twilio-signature'] = signature;
    if (method === 'POST') headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(target, { method, headers, ...(method === 'POST' ? { body: encodeForm(params) } : {}) });
    const delivery: FakeWebhookDelivery = {
      url,
      requestedUrl: target,
      method,
      params,
      signature,
      status: res.status,
      body: await res.text(),
      contentType: res.headers.get('content-type'),
    };
    deliveries.push(delivery);
    return delivery;
  };

  // The parameters Twilio sends with every voice request and status callback of a call.
  const callParams = (call: FakeCall): Record<string, string> => {
    const geo = (prefix: string, number: string) => ({
      [`${prefix}City`]: '',
      [`${prefix}Country`]: phone(number)?.country ?? '',
      [`${prefix}State`]: '',
      [`${prefix}Zip`]: '',
    });
    return {
      AccountSid: accountSid,
      ApiVersion: '2010-04-01',
      CallSid: call.sid,
      Called: call.to,
      ...geo('Called', call.to),
      Caller: call.from,
      ...geo('Caller', call.from),
      Direction: call.direction,
      From: call.from,
      ...geo('From', call.from),
      To: call.to,
      ...geo('To', call.to),
    };
  };

  const deliver: FakeTwilio['deliver'] = (webhook, opts = {}) =>
    postWebhook(webhook.url, webhook.params, { ...opts, method: webhook.method });

  const prepareStatusCallback: FakeTwilio['prepareStatusCallback'] = (callSid, status, extra = {}) => {
    const call = findCall(callSid);
    if (!call.statusCallback) throw new Error(`fake twilio: call ${callSid} has no StatusCallback`);
    const event = status === 'in-progress' ? 'answered' : TERMINAL.has(status) ? 'completed' : status;
    if (event !== 'completed' && !call.statusCallbackEvents.includes(event)) {
      throw new Error(
        `fake twilio: Twilio would not send "${status}" for ${callSid}: StatusCallbackEvent was [${call.statusCallbackEvents.join(', ')}]`,
      );
    }
    const now = new Date();
    if (status === 'in-progress') call.startTime ??= now;
    if (TERMINAL.has(status)) endCall(call, status, now);
    else call.status = status;
    if (extra.CallDuration !== undefined && TERMINAL.has(status)) call.duration = Number(extra.CallDuration);
    call.dateUpdated = now;
    const params: Record<string, string> = {
      ...callParams(call),
      CallStatus: status,
      CallbackSource: 'call-progress-events',
      SequenceNumber: String(call.nextSequence++),
      Timestamp: rfc2822(now)!,
    };
    if (TERMINAL.has(status)) {
      const seconds = call.duration ?? 0;
      params.CallDuration = String(seconds);
      params.Duration = String(Math.ceil(seconds / 60));
      params.SipResponseCode = SIP_CODES[status] ?? '200';
    }
    return {
      url: call.statusCallback,
      method: call.statusCallbackMethod === 'GET' ? 'GET' : 'POST',
      params: { ...params, ...extra },
    };
  };

  const sendStatusCallback: FakeTwilio['sendStatusCallback'] = (callSid, status, extra) =>
    deliver(prepareStatusCallback(callSid, status, extra));

  const sendAmdCallback: FakeTwilio['sendAmdCallback'] = async (callSid, answeredBy, extra = {}) => {
    const call = findCall(callSid);
    if (!call.asyncAmdStatusCallback) throw new Error(`fake twilio: call ${callSid} has no AsyncAmdStatusCallback`);
    call.answeredBy = answeredBy;
    const params = {
      AccountSid: accountSid,
      CallSid: call.sid,
      AnsweredBy: answeredBy,
      // Waiting for the beep takes longer than recognising a human.
      MachineDetectionDuration: answeredBy.startsWith('machine_end') ? '4850' : '2120',
      ...extra,
    };
    return postWebhook(call.asyncAmdStatusCallback, params, {
      method: call.asyncAmdStatusCallbackMethod === 'GET' ? 'GET' : 'POST',
    });
  };

  const requestVoiceUrl: FakeTwilio['requestVoiceUrl'] = async (callSid, extra = {}) => {
    const call = findCall(callSid);
    if (!call.url) {
      if (call.twiml !== null) return call.twiml;
      throw new Error(`fake twilio: call ${callSid} has no voice Url`);
    }
    if (call.direction === 'outbound-api' && !TERMINAL.has(call.status)) {
      call.status = 'in-progress';
      call.startTime ??= new Date();
    }
    const params = { ...callParams(call), CallStatus: call.status, ...extra };
    const delivery = await postWebhook(call.url, params, { method: call.method === 'GET' ? 'GET' : 'POST' });
    if (delivery.status < 200 || delivery.status >= 300) {
      throw new Error(`fake twilio: voice url ${delivery.requestedUrl} answered ${delivery.status}: ${delivery.body.slice(0, 300)}`);
    }
    return delivery.body;
  };

  const startInboundCall: FakeTwilio['startInboundCall'] = async ({ from, to, extra = {} }) => {
    const caller = phone(from);
    if (!caller) throw new Error(`fake twilio: caller ${from} is not a valid E.164 number`);
    const number = numbers.find((n) => n.phoneNumber === to);
    if (!number) throw new Error(`fake twilio: ${to} is not a number this account owns`);
    if (!number.voiceUrl) throw new Error(`fake twilio: ${to} has no voice URL configured`);
    const now = new Date();
    const call: FakeCall = {
      sid: newSid('CA'),
      direction: 'inbound',
      to: number.phoneNumber,
      from: caller.e164,
      status: 'ringing',
      url: number.voiceUrl,
      method: number.voiceMethod,
      twiml: null,
      statusCallback: number.statusCallback || null,
      statusCallbackMethod: number.statusCallbackMethod,
      // A number's status callback only ever hears about the end of the call.
      statusCallbackEvents: ['completed'],
      machineDetection: null,
      asyncAmd: false,
      asyncAmdStatusCallback: null,
      asyncAmdStatusCallbackMethod: 'POST',
      timeout: null,
      answeredBy: null,
      params: {},
      updates: [],
      dateCreated: now,
      dateUpdated: now,
      startTime: now,
      endTime: null,
      duration: null,
      nextSequence: 0,
    };
    calls.push(call);
    const params = { ...callParams(call), CallStatus: 'ringing', ...extra };
    const response = await postWebhook(number.voiceUrl, params, { method: number.voiceMethod === 'GET' ? 'GET' : 'POST' });
    if (response.status >= 200 && response.status < 300) call.status = 'in-progress';
    return { call, response };
  };

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    requests,
    calls,
    numbers,
    available,
    deliveries,
    call: findCall,
    failNext(failure) {
      failures.push({ ...failure, left: failure.times ?? 1 });
    },
    holdNext(match) {
      let arrive!: (req: FakeTwilioRequest) => void;
      let release!: () => void;
      const arrived = new Promise<FakeTwilioRequest>((resolve) => (arrive = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      holds.push({ match, arrive, released });
      return { arrived, release };
    },
    addOwnedNumber,
    prepareStatusCallback,
    sendStatusCallback,
    sendAmdCallback,
    requestVoiceUrl,
    startInboundCall,
    deliver,
    postWebhook,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
