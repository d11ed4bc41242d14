import { randomBytes } from 'node:crypto';

// Crockford base32: no I, L, O, U, so ids survive being read aloud or typed.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** Entity prefixes; an id's prefix tells what it is (`agt_...` is an agent). */
export const ID_PREFIXES = {
  organization: 'org',
  user: 'usr',
  membership: 'mem',
  apiKey: 'key',
  session: 'ses',
  agent: 'agt',
  audit: 'aud',
} as const;

export type IdPrefix = (typeof ID_PREFIXES)[keyof typeof ID_PREFIXES];

function encodeTime(ms: number): string {
  let out = '';
  let n = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[n % 32] + out;
    n = Math.floor(n / 32);
  }
  return out;
}

function encodeRandom(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! & 31];
  return out;
}

/**
 * A ULID-style id: 10 chars of millisecond time then 16 random chars (80 bits). Ids sort by creation
 * time, which is what cursor pagination orders by, and cannot be guessed.
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  return `${prefix}_${encodeTime(now)}${encodeRandom(16)}`;
}

/** The JSON-schema pattern that matches ids of one prefix. */
export const idPattern = (prefix: IdPrefix): string => `^${prefix}_[0-9a-hjkmnp-tv-z]{26}$`;

/** Random url-safe token with `bytes` of entropy, for secrets (API keys, sessions, CSRF). */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');
