// TwiML documents we answer Twilio with, built by the SDK's VoiceResponse so every attribute and text node is
// escaped by the same code Twilio's own examples use.
import twilio from 'twilio';
import { e164Problem, invalidPhoneNumber } from './telephony-provider.js';

const { VoiceResponse } = twilio.twiml;

/** How `<Say>` speaks; Twilio's defaults when omitted. */
export interface SayOptions {
  /** A Twilio voice, e.g. `Polly.Joanna` or `alice`. */
  voice?: string;
  /** BCP 47 language, e.g. `en-US`. */
  language?: string;
}

function sayAttributes(opts: SayOptions): Record<string, string> {
  const attrs: Record<string, string> = {};
  if (opts.voice) attrs.voice = opts.voice;
  if (opts.language) attrs.language = opts.language;
  return attrs;
}

/**
 * Connects the call to our Media Streams socket. The single-use stream token travels as a `<Parameter>`
 * (it arrives in the socket's `start.customParameters`) because Twilio drops query strings from stream URLs.
 */
export function connectStreamTwiml(opts: { streamUrl: string; token: string; statusCallbackUrl?: string }): string {
  const response = new VoiceResponse();
  const stream = response.connect().stream({
    url: opts.streamUrl,
    ...(opts.statusCallbackUrl ? { statusCallback: opts.statusCallbackUrl, statusCallbackMethod: 'POST' as const } : {}),
  });
  stream.parameter({ name: 'token', value: opts.token });
  return response.toString();
}

/** Speaks `message` and hangs up: the answer for calls we will not take (unknown number, no balance). */
export function sayAndHangupTwiml(message: string, opts: SayOptions = {}): string {
  const response = new VoiceResponse();
  response.say(sayAttributes(opts), message);
  response.hangup();
  return response.toString();
}

/** A transfer of a live call to another phone. */
export interface TransferOptions {
  /** E.164 number to dial. */
  to: string;
  /** Caller ID shown to the transfer target; must be one of our Twilio numbers or a verified caller ID. */
  callerId?: string;
  /** Said to the caller before dialing, e.g. "Transferring you to billing". */
  announce?: string;
  /**
   * Our URL that returns the whisper for the transfer target (see {@link whisperTwiml}); Twilio plays it to
   * the target only, after they answer and before the two sides are bridged.
   */
  whisperUrl?: string;
  /** Seconds to ring the target (Twilio's default is 30). */
  timeoutSeconds?: number;
  say?: SayOptions;
}

/**
 * Redirects a live call to a `<Dial>`. A whisper (a summary only the target hears) needs a URL Twilio can
 * fetch, so it is `whisperUrl` on `<Number>`; `announce` is spoken to the caller, never to the target.
 */
export function transferTwiml(opts: TransferOptions): string {
  const problem = e164Problem('transfer number', opts.to) ?? (opts.callerId ? e164Problem('callerId', opts.callerId) : null);
  if (problem) throw invalidPhoneNumber('twilio', problem);
  const response = new VoiceResponse();
  if (opts.announce) response.say(sayAttributes(opts.say ?? {}), opts.announce);
  const dial = response.dial({
    ...(opts.callerId ? { callerId: opts.callerId } : {}),
    ...(opts.timeoutSeconds !== undefined ? { timeout: opts.timeoutSeconds } : {}),
  });
  if (opts.whisperUrl) dial.number({ url: opts.whisperUrl, method: 'POST' }, opts.to);
  else dial.number(opts.to);
  return response.toString();
}

/** What Twilio plays to the transfer target from `whisperUrl`: the summary, then the bridge. */
export function whisperTwiml(summary: string, opts: SayOptions = {}): string {
  const response = new VoiceResponse();
  response.say(sayAttributes(opts), summary);
  return response.toString();
}
