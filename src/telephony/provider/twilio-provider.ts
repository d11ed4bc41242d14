// TelephonyProvider on Twilio's REST API, through the official `twilio` SDK. `baseUrl` redirects every REST
// request (any *.twilio.com host) to another origin, which is how tests run the real SDK against a local fake
// and how an operator could put a recording proxy in front of Twilio.
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import type { CallListInstanceCreateOptions } from 'twilio/lib/rest/api/v2010/account/call.js';
import type { IncomingPhoneNumberInstance } from 'twilio/lib/rest/api/v2010/account/incomingPhoneNumber.js';
import type { LocalInstance } from 'twilio/lib/rest/api/v2010/account/availablePhoneNumberCountry/local.js';
import {
  TelephonyError,
  e164Problem,
  invalidPhoneNumber,
  type AvailableNumber,
  type NumberCapabilities,
  type NumberSearch,
  type NumberWebhooks,
  type OwnedNumber,
  type PlaceCallRequest,
  type PlacedCall,
  type FoundCall,
  type ProviderCallStatus,
  type TelephonyErrorReason,
  type TelephonyProvider,
} from './telephony-provider.js';

/** Credentials and endpoint for {@link TwilioProvider}. */
export interface TwilioProviderOptions {
  /** `AC...`: the account every request acts on. */
  accountSid: string;
  /** The account's auth token; used for REST unless an API key is given (webhook signatures always use it). */
  authToken?: string;
  /** `SK...`: an API key to authenticate REST requests instead of the auth token. */
  apiKeySid?: string;
  apiKeySecret?: string;
  /** Sends every REST request to this origin (and path prefix) instead of https://api.twilio.com. */
  baseUrl?: string;
  /** Per-request timeout (default 15 s). */
  timeoutMs?: number;
}

type RequestOptions<TData> = RequestClient.RequestOptions<TData>;

/** Rewrites an SDK request URI (`https://api.twilio.com/2010-04-01/...`) onto `base`, keeping path and query. */
export function rebaseTwilioUri(uri: string, base: URL): string {
  const target = new URL(uri);
  if (target.hostname !== 'twilio.com' && !target.hostname.endsWith('.twilio.com')) return uri;
  const prefix = base.pathname.replace(/\/+$/, '');
  return `${base.origin}${prefix}${target.pathname}${target.search}`;
}

/** The SDK's own HTTP client, aimed at another origin: the SDK's supported `httpClient` extension point. */
class RebasingRequestClient extends twilio.RequestClient {
  readonly #base: URL;

  constructor(base: URL, opts: RequestClient.RequestClientOptions) {
    super(opts);
    this.#base = base;
  }

  override request<TData>(opts: RequestOptions<TData>) {
    return super.request<TData>({ ...opts, uri: rebaseTwilioUri(opts.uri, this.#base) });
  }
}

const CALL_SID = /^CA[0-9a-fA-F]{32}$/;
const NUMBER_SID = /^PN[0-9a-fA-F]{32}$/;
const STATUS_EVENTS = ['initiated', 'ringing', 'answered', 'completed'];

interface CodeMeaning {
  reason: TelephonyErrorReason;
  httpStatus: number;
}

// Twilio error codes we can name precisely (https://www.twilio.com/docs/errors/<code>). Anything else falls
// back to the HTTP status Twilio answered with.
const TWILIO_CODES: Record<number, CodeMeaning> = {
  20003: { reason: 'provider_auth_failed', httpStatus: 502 }, // Authenticate
  20404: { reason: 'not_found', httpStatus: 404 }, // The requested resource was not found
  20429: { reason: 'provider_unavailable', httpStatus: 502 }, // Too many requests
  21205: { reason: 'provider_error', httpStatus: 502 }, // Invalid Url: our webhook URL, an operator problem
  21210: { reason: 'not_permitted', httpStatus: 422 }, // 'From' phone number not verified
  21211: { reason: 'invalid_phone_number', httpStatus: 400 }, // Invalid 'To' phone number
  21212: { reason: 'invalid_phone_number', httpStatus: 400 }, // Invalid 'From' phone number
  21213: { reason: 'invalid_phone_number', httpStatus: 400 }, // 'From' phone number is required
  21214: { reason: 'invalid_phone_number', httpStatus: 422 }, // 'To' phone number cannot be reached
  21215: { reason: 'not_permitted', httpStatus: 422 }, // Geo permissions do not allow this destination
  21216: { reason: 'not_permitted', httpStatus: 422 }, // Account not allowed to call this number
  21217: { reason: 'invalid_phone_number', httpStatus: 400 }, // Phone number does not appear to be valid
  21219: { reason: 'not_permitted', httpStatus: 422 }, // Trial account: 'To' number not verified
  21220: { reason: 'call_not_in_progress', httpStatus: 409 }, // Call is not in-progress, cannot redirect
  21401: { reason: 'invalid_phone_number', httpStatus: 400 }, // Invalid phone number
  21421: { reason: 'invalid_phone_number', httpStatus: 400 }, // PhoneNumber is invalid
  21422: { reason: 'number_not_available', httpStatus: 409 }, // PhoneNumber is not available
  21451: { reason: 'invalid_request', httpStatus: 400 }, // Invalid area code
  21452: { reason: 'number_not_available', httpStatus: 422 }, // No phone numbers found in area code
};

function meaningOfStatus(status: number): CodeMeaning {
  if (status === 401 || status === 403) return { reason: 'provider_auth_failed', httpStatus: 502 };
  if (status === 404) return { reason: 'not_found', httpStatus: 404 };
  if (status === 408 || status === 429 || status >= 500) return { reason: 'provider_unavailable', httpStatus: 502 };
  if (status >= 400) return { reason: 'invalid_request', httpStatus: 422 };
  return { reason: 'provider_error', httpStatus: 502 };
}

/** A REST error as the SDK throws it: `RestException`, or `TwilioServiceException` for RFC 9457 bodies. */
interface TwilioRestError {
  status: number;
  code?: number;
  message?: string;
  moreInfo?: string;
  detail?: string;
}

function asRestError(err: unknown): TwilioRestError | null {
  if (err instanceof twilio.RestException) return err;
  if (err instanceof Error && typeof (err as { status?: unknown }).status === 'number' && !('isAxiosError' in err)) {
    return err as Error & TwilioRestError;
  }
  return null;
}

function isNetworkError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { isAxiosError?: unknown }).isAxiosError === true;
}

/** Turns whatever the SDK threw into a TelephonyError; programming errors (ours) pass through unchanged. */
export function toTelephonyError(err: unknown, action: string): unknown {
  if (err instanceof TelephonyError) return err;
  const rest = asRestError(err);
  if (rest) {
    const known = rest.code !== undefined ? TWILIO_CODES[rest.code] : undefined;
    const meaning = known ?? meaningOfStatus(rest.status);
    const said = rest.detail ?? rest.message ?? `HTTP ${rest.status}`;
    const codeText = rest.code !== undefined ? ` (Twilio error ${rest.code})` : ` (HTTP ${rest.status})`;
    const message =
      meaning.reason === 'provider_auth_failed'
        ? `Twilio rejected our credentials${codeText}: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)`
        : `Twilio could not ${action}: ${said}${codeText}`;
    return new TelephonyError('twilio', message, {
      reason: meaning.reason,
      httpStatus: meaning.httpStatus,
      code: rest.code,
      providerStatus: rest.status,
      moreInfo: rest.moreInfo,
      cause: err,
    });
  }
  if (isNetworkError(err)) {
    const detail = err instanceof Error ? err.message : String(err);
    return new TelephonyError('twilio', `Twilio could not ${action}: the request failed (${detail})`, {
      reason: 'provider_unavailable',
      httpStatus: 502,
      retryable: true,
      cause: err,
    });
  }
  if (err instanceof SyntaxError) {
    return new TelephonyError('twilio', `Twilio could not ${action}: its response was not valid JSON`, {
      reason: 'provider_error',
      httpStatus: 502,
      retryable: true,
      cause: err,
    });
  }
  return err;
}

function capabilitiesOf(raw: unknown): NumberCapabilities {
  // Available numbers report `SMS`/`MMS` upper-case while owned numbers use lower case.
  const flags = new Map<string, boolean>();
  if (raw && typeof raw === 'object') {
    for (const [key, value] of Object.entries(raw)) flags.set(key.toLowerCase(), value === true);
  }
  return {
    voice: flags.get('voice') ?? false,
    sms: flags.get('sms') ?? false,
    mms: flags.get('mms') ?? false,
    fax: flags.get('fax') ?? false,
  };
}

const orNull = (value: string | null | undefined): string | null => (value ? value : null);

function toOwnedNumber(n: IncomingPhoneNumberInstance): OwnedNumber {
  return {
    providerSid: n.sid,
    phoneNumber: n.phoneNumber,
    friendlyName: n.friendlyName,
    voiceUrl: orNull(n.voiceUrl),
    statusCallbackUrl: orNull(n.statusCallback),
    capabilities: capabilitiesOf(n.capabilities),
  };
}

function toAvailableNumber(n: LocalInstance): AvailableNumber {
  return {
    phoneNumber: n.phoneNumber,
    friendlyName: n.friendlyName,
    isoCountry: n.isoCountry,
    locality: orNull(n.locality),
    region: orNull(n.region),
    postalCode: orNull(n.postalCode),
    capabilities: capabilitiesOf(n.capabilities),
  };
}

const invalidRequest = (message: string): TelephonyError =>
  new TelephonyError('twilio', message, { reason: 'invalid_request', httpStatus: 400, retryable: false });

/** Places and controls calls and manages numbers on Twilio. */
export class TwilioProvider implements TelephonyProvider {
  readonly name = 'twilio';
  /** The account the provider acts on. */
  readonly accountSid: string;
  readonly #client: twilio.Twilio;

  constructor(opts: TwilioProviderOptions) {
    const timeout = opts.timeoutMs ?? 15_000;
    const httpClient = opts.baseUrl
      ? new RebasingRequestClient(new URL(opts.baseUrl), { timeout })
      : new twilio.RequestClient({ timeout });
    const useKey = Boolean(opts.apiKeySid && opts.apiKeySecret);
    if (!useKey && !opts.authToken) {
      throw new Error('TwilioProvider needs an auth token or an API key and secret');
    }
    this.accountSid = opts.accountSid;
    // `env: {}` keeps the SDK from picking credentials out of process.env behind our configuration's back.
    this.#client = useKey
      ? twilio(opts.apiKeySid, opts.apiKeySecret, { accountSid: opts.accountSid, httpClient, env: {} })
      : twilio(opts.accountSid, opts.authToken, { httpClient, env: {} });
  }

  async placeCall(req: PlaceCallRequest): Promise<PlacedCall> {
    this.#checkNumber('to', req.to);
    this.#checkNumber('from', req.from);
    const params: CallListInstanceCreateOptions = {
      to: req.to,
      from: req.from,
      url: req.voiceUrl,
      method: 'POST',
      statusCallback: req.statusCallbackUrl,
      statusCallbackEvent: STATUS_EVENTS,
      statusCallbackMethod: 'POST',
    };
    if (req.timeoutSeconds !== undefined) params.timeout = req.timeoutSeconds;
    if (req.machineDetection) {
      params.machineDetection = req.machineDetection.mode;
      // Async AMD connects the call at once and reports the verdict later, so the agent is not silent for
      // the seconds detection takes.
      params.asyncAmd = 'true';
      params.asyncAmdStatusCallback = req.machineDetection.asyncCallbackUrl;
      params.asyncAmdStatusCallbackMethod = 'POST';
    }
    const call = await this.#run('place the call', () => this.#client.calls.create(params));
    return { providerCallSid: call.sid, status: call.status as ProviderCallStatus };
  }

  async hangUp(providerCallSid: string): Promise<void> {
    this.#checkSid('call', providerCallSid, CALL_SID, 'CA');
    try {
      await this.#run('hang up the call', () => this.#client.calls(providerCallSid).update({ status: 'completed' }));
    } catch (err) {
      // The callee may have hung up first; the call is over either way.
      if (err instanceof TelephonyError && err.reason === 'call_not_in_progress') return;
      throw err;
    }
  }

  async findCalls(q: { from: string; to: string; since: Date }): Promise<FoundCall[]> {
    const found = await this.#run('look up calls', () => this.#client.calls.list({ from: q.from, to: q.to, startTimeAfter: q.since, limit: 20 }));
    return found.map((c) => ({ providerCallSid: c.sid, status: c.status as ProviderCallStatus, durationSeconds: c.duration ? Number(c.duration) : undefined }));
  }

  async updateCallTwiml(providerCallSid: string, twiml: string): Promise<void> {
    this.#checkSid('call', providerCallSid, CALL_SID, 'CA');
    await this.#run('update the live call', () => this.#client.calls(providerCallSid).update({ twiml }));
  }

  async searchNumbers(q: NumberSearch): Promise<AvailableNumber[]> {
    const country = q.country.toUpperCase();
    if (!/^[A-Z]{2}$/.test(country)) {
      throw invalidRequest(`country "${q.country}" must be a two-letter ISO country code such as US`);
    }
    if (q.areaCode !== undefined && !/^[2-9]\d{2}$/.test(q.areaCode)) {
      throw invalidRequest(`areaCode "${q.areaCode}" must be a three-digit North American area code such as 415`);
    }
    if (q.contains !== undefined && !/^\+?[0-9A-Za-z*%]{2,16}\$?$/.test(q.contains)) {
      throw invalidRequest(`contains "${q.contains}" must be 2 to 16 digits or letters, with * for any one digit`);
    }
    const limit = Math.min(Math.max(Math.trunc(q.limit ?? 20), 1), 50);
    const found = await this.#run('search for numbers', () =>
      this.#client.availablePhoneNumbers(country).local.list({
        ...(q.areaCode !== undefined ? { areaCode: Number(q.areaCode) } : {}),
        ...(q.contains !== undefined ? { contains: q.contains } : {}),
        voiceEnabled: true,
        limit,
      }),
    );
    return found.map(toAvailableNumber);
  }

  async buyNumber(req: { phoneNumber: string } & NumberWebhooks): Promise<OwnedNumber> {
    this.#checkNumber('phoneNumber', req.phoneNumber);
    const bought = await this.#run(`buy ${req.phoneNumber}`, () =>
      this.#client.incomingPhoneNumbers.create({
        phoneNumber: req.phoneNumber,
        voiceUrl: req.voiceUrl,
        voiceMethod: 'POST',
        statusCallback: req.statusCallbackUrl,
        statusCallbackMethod: 'POST',
      }),
    );
    return toOwnedNumber(bought);
  }

  async getNumber(providerSid: string): Promise<OwnedNumber> {
    this.#checkSid('phone number', providerSid, NUMBER_SID, 'PN');
    return toOwnedNumber(await this.#run('read the number', () => this.#client.incomingPhoneNumbers(providerSid).fetch()));
  }

  async configureNumber(providerSid: string, req: NumberWebhooks): Promise<OwnedNumber> {
    this.#checkSid('phone number', providerSid, NUMBER_SID, 'PN');
    const updated = await this.#run('configure the number', () =>
      this.#client.incomingPhoneNumbers(providerSid).update({
        voiceUrl: req.voiceUrl,
        voiceMethod: 'POST',
        statusCallback: req.statusCallbackUrl,
        statusCallbackMethod: 'POST',
      }),
    );
    return toOwnedNumber(updated);
  }

  async releaseNumber(providerSid: string): Promise<void> {
    this.#checkSid('phone number', providerSid, NUMBER_SID, 'PN');
    await this.#run('release the number', () => this.#client.incomingPhoneNumbers(providerSid).remove());
  }

  #checkNumber(field: string, value: string): void {
    const problem = e164Problem(field, value);
    if (problem) throw invalidPhoneNumber(this.name, problem);
  }

  // SIDs become URL path segments, so anything but the exact shape is refused before it reaches Twilio.
  #checkSid(what: string, sid: string, shape: RegExp, prefix: string): void {
    if (!shape.test(sid)) {
      throw invalidRequest(`"${sid}" is not a Twilio ${what} SID (${prefix} followed by 32 hex characters)`);
    }
  }

  async #run<T>(action: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw toTelephonyError(err, action);
    }
  }
}
