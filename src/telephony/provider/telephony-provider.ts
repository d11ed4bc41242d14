// The seam between our call and number logic and the carrier that actually rings phones. Everything above
// it (webhooks, routes, tables) speaks these provider-neutral types; only the implementation knows Twilio's
// SDK. Failures are TelephonyError, which says both what the provider answered and what we should answer.
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { AppError, ProviderError } from '../../shared/errors.js';

/** Where a call stands, in the carrier's own words (Twilio's call statuses). */
export type ProviderCallStatus =
  | 'queued'
  | 'initiated'
  | 'ringing'
  | 'in-progress'
  | 'completed'
  | 'busy'
  | 'failed'
  | 'no-answer'
  | 'canceled';

/** Answering machine detection for an outbound call; results arrive asynchronously on `asyncCallbackUrl`. */
export interface MachineDetection {
  /** Our webhook that receives the AMD result (AnsweredBy) while the call is already connected. */
  asyncCallbackUrl: string;
  /** `DetectMessageEnd` waits for the beep (to leave a voicemail); `Enable` answers as soon as it knows. */
  mode: 'DetectMessageEnd' | 'Enable';
}

/** An outbound call to place. Phone numbers are E.164 (`+14155550100`). */
export interface PlaceCallRequest {
  to: string;
  from: string;
  /** Our voice webhook, fetched with POST when the callee answers; it returns the call's TwiML. */
  voiceUrl: string;
  /** Our status webhook, POSTed on initiated, ringing, answered and completed. */
  statusCallbackUrl: string;
  machineDetection?: MachineDetection;
  /** Seconds to let the phone ring before giving up with `no-answer`. */
  timeoutSeconds?: number;
}

/** What the provider said when it accepted an outbound call. */
export interface PlacedCall {
  /** The provider's id of the call (Twilio `CA...`). */
  providerCallSid: string;
  status: ProviderCallStatus;
}

/** A call found at the provider by its parties and start time. */
export interface FoundCall {
  providerCallSid: string;
  status: ProviderCallStatus;
  /** Billed seconds, once the call is over. */
  durationSeconds?: number;
}

/** What a number can do. */
export interface NumberCapabilities {
  voice: boolean;
  sms: boolean;
  mms: boolean;
  fax: boolean;
}

/** A number the provider offers for purchase. */
export interface AvailableNumber {
  /** E.164. */
  phoneNumber: string;
  /** The provider's display form, e.g. `(415) 555-0100`. */
  friendlyName: string;
  /** ISO 3166-1 alpha-2 country code. */
  isoCountry: string;
  locality: string | null;
  /** State or province abbreviation. */
  region: string | null;
  postalCode: string | null;
  capabilities: NumberCapabilities;
}

/** A number the account owns, with the webhooks it is configured to call. */
export interface OwnedNumber {
  /** The provider's id of the number (Twilio `PN...`). */
  providerSid: string;
  /** E.164. */
  phoneNumber: string;
  friendlyName: string;
  /** The voice webhook fetched on an incoming call, or null when none is configured. */
  voiceUrl: string | null;
  /** The status webhook of incoming calls, or null when none is configured. */
  statusCallbackUrl: string | null;
  capabilities: NumberCapabilities;
}

/** A search for numbers to buy. */
export interface NumberSearch {
  /** ISO 3166-1 alpha-2 country code, e.g. `US`. */
  country: string;
  /** A three-digit area code (US and Canada only). */
  areaCode?: string;
  /** Digits (or letters, as on a keypad) the number must contain; `*` matches any one digit. */
  contains?: string;
  /** At most this many results (default 20). */
  limit?: number;
}

/** The webhooks a bought or imported number is pointed at. */
export interface NumberWebhooks {
  voiceUrl: string;
  statusCallbackUrl: string;
}

/** A carrier that places and controls calls and sells numbers. */
export interface TelephonyProvider {
  /** Short provider name used in errors and records, e.g. `twilio`. */
  readonly name: string;
  /** Places an outbound call; resolves once the provider has queued it. */
  placeCall(req: PlaceCallRequest): Promise<PlacedCall>;
  /** Ends a call in any state; a call that already ended is not an error. */
  hangUp(providerCallSid: string): Promise<void>;
  /**
   * The provider's calls from `from` to `to` created since `since`, newest first (at most 20): how a call
   * whose id we never stored is found again.
   */
  findCalls(q: { from: string; to: string; since: Date }): Promise<FoundCall[]>;
  /** Replaces the TwiML of a live call (transfer, goodbye message); fails with 409 once the call has ended. */
  updateCallTwiml(providerCallSid: string, twiml: string): Promise<void>;
  /** Lists voice-capable local numbers for sale. An empty list is a normal answer. */
  searchNumbers(q: NumberSearch): Promise<AvailableNumber[]>;
  /** Buys a number and points it at our webhooks. */
  buyNumber(req: { phoneNumber: string } & NumberWebhooks): Promise<OwnedNumber>;
  /** Reads a number the account already owns (import by provider SID). */
  getNumber(providerSid: string): Promise<OwnedNumber>;
  /** Points an owned number at our webhooks. */
  configureNumber(providerSid: string, req: NumberWebhooks): Promise<OwnedNumber>;
  /** Releases (stops paying for) an owned number. */
  releaseNumber(providerSid: string): Promise<void>;
}

/** What went wrong, stable enough for API error codes and branching. */
export type TelephonyErrorReason =
  /** A phone number is not valid E.164 or not a real number (ours or the provider's check). */
  | 'invalid_phone_number'
  /** Any other request the provider refused as malformed (bad area code, missing parameter). */
  | 'invalid_request'
  /** The call, number or country does not exist on the provider's side. */
  | 'not_found'
  /** The number to buy is taken or nothing matches. */
  | 'number_not_available'
  /** The call already ended, so it cannot be redirected. */
  | 'call_not_in_progress'
  /** The provider refused for account reasons: unverified caller ID, trial limits, geographic permissions. */
  | 'not_permitted'
  /** Our provider credentials are wrong or lack permission: an operator problem, never the caller's. */
  | 'provider_auth_failed'
  /** Rate limit, provider outage, timeout or network failure. */
  | 'provider_unavailable'
  /** The provider answered with something we do not understand. */
  | 'provider_error';

/** Details of a {@link TelephonyError}. */
export interface TelephonyErrorInit {
  reason: TelephonyErrorReason;
  /** The status our API should answer with: 400/404/409/422 for the caller's mistakes, 502 for provider trouble. */
  httpStatus: number;
  /** The provider's numeric error code (Twilio's, e.g. 21211), when it gave one. */
  code?: number;
  /** The HTTP status the provider answered with, when it answered. */
  providerStatus?: number;
  /** Link to the provider's explanation of `code`. */
  moreInfo?: string;
  /** Defaults from `providerStatus` (408, 429, 5xx retry); network failures pass true. */
  retryable?: boolean;
  cause?: unknown;
}

/** A telephony provider failure: what the provider said, and what we should answer and whether to retry. */
export class TelephonyError extends ProviderError {
  readonly reason: TelephonyErrorReason;
  readonly httpStatus: number;
  readonly code: number | undefined;
  readonly moreInfo: string | undefined;

  constructor(provider: string, message: string, init: TelephonyErrorInit) {
    const retryable =
      init.retryable ?? (init.providerStatus !== undefined && ProviderError.isRetryableStatus(init.providerStatus));
    super(provider, message, retryable, init.providerStatus, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'TelephonyError';
    this.reason = init.reason;
    this.httpStatus = init.httpStatus;
    this.code = init.code;
    this.moreInfo = init.moreInfo;
  }

  /** The API error to answer with; the provider's code and link go in `details` so callers can look them up. */
  toAppError(): AppError {
    const details: Record<string, unknown> = { provider: this.provider };
    if (this.code !== undefined) details.providerCode = this.code;
    if (this.moreInfo !== undefined) details.moreInfo = this.moreInfo;
    return new AppError(this.reason, this.message, this.httpStatus, details);
  }
}

/** A 400 for a phone number we refuse before asking the provider. */
export const invalidPhoneNumber = (provider: string, message: string): TelephonyError =>
  new TelephonyError(provider, message, { reason: 'invalid_phone_number', httpStatus: 400, retryable: false });

/**
 * Why `value` is not a dialable E.164 number, as a message naming `field`, or null when it is one. Strict on
 * purpose: the provider bills and routes on exactly this string, so we never guess a country.
 */
export function e164Problem(field: string, value: unknown): string | null {
  const example = '+14155550100';
  if (typeof value !== 'string' || value.trim() === '') {
    return `${field} is required: an E.164 phone number such as ${example}`;
  }
  if (!value.startsWith('+')) {
    return `${field} "${value}" must be in E.164 format: a + and the country code, then the number, e.g. ${example}`;
  }
  const parsed = parsePhoneNumberFromString(value);
  if (!/^\+[1-9]\d{1,14}$/.test(value)) {
    return parsed?.isValid()
      ? `${field} "${value}" must be in E.164 format without spaces or punctuation: ${parsed.number}`
      : `${field} "${value}" must be in E.164 format: a + and up to 15 digits, e.g. ${example}`;
  }
  if (!parsed?.isValid()) {
    return `${field} "${value}" is not a valid phone number${parsed ? ` for country code +${parsed.countryCallingCode}` : ''}`;
  }
  return null;
}
