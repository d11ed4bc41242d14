// Twilio signs every webhook with X-Twilio-Signature: base64 HMAC-SHA1, keyed with the account's auth token,
// of the full URL Twilio requested followed by each POST parameter's name and value, sorted by name. We use
// the SDK's implementation (timing-safe, tolerant of the :443/:80 port Twilio may or may not have signed).
import twilio from 'twilio';

/** Webhook form parameters as parsed from the body; a repeated name carries every value. */
export type TwilioWebhookParams = Record<string, string | string[]>;

/** What a webhook signature is checked against. */
export interface TwilioSignatureInput {
  /** The account's auth token (API keys never sign webhooks). */
  authToken: string;
  /** The exact URL Twilio requested: our public URL, path and query string. */
  url: string;
  /** The form-encoded POST parameters; `{}` for GET webhooks, whose parameters are in `url`. */
  params: TwilioWebhookParams;
}

/** True when `signature` is Twilio's signature of this request; false when it is missing, malformed or wrong. */
export function verifyTwilioSignature(input: TwilioSignatureInput & { signature: string | null | undefined }): boolean {
  if (!input.signature || !input.authToken) return false;
  try {
    return twilio.validateRequest(input.authToken, input.signature, input.url, input.params);
  } catch {
    // An unparseable URL cannot be one Twilio signed.
    return false;
  }
}

/** The X-Twilio-Signature Twilio would send for this request (for fakes and tests). */
export function signTwilioRequest(input: TwilioSignatureInput): string {
  return twilio.getExpectedTwilioSignature(input.authToken, input.url, input.params);
}

/**
 * The URL Twilio signed for a request that reached us at `requestUrl` (path and query, as in `req.url`):
 * behind a proxy or tunnel only PUBLIC_URL knows the scheme and host Twilio used.
 */
export function twilioWebhookUrl(publicUrl: string, requestUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${requestUrl.startsWith('/') ? '' : '/'}${requestUrl}`;
}
