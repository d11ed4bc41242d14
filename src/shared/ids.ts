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
  call: 'call',
  turn: 'turn',
  usage: 'use',
  phoneNumber: 'pn',
  invitation: 'inv',
  event: 'evt',
  node: 'node',
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

const RANDOM_LENGTH = 16;

function randomDigits(): number[] {
  const bytes = randomBytes(RANDOM_LENGTH);
  return Array.from(bytes, (b) => b & 31);
}

// Monotonic within a millisecond (as in ULID's monotonic mode): ids made in the same millisecond by this
// process increment the random part, so "newest first" stays exact for rows created in one burst.
let lastTime = -1;
let lastDigits: number[] = [];

function nextDigits(now: number): number[] {
  if (now !== lastTime) {
    lastTime = now;
    lastDigits = randomDigits();
    return lastDigits;
  }
  const digits = [...lastDigits];
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i]! < 31) {
      digits[i]! += 1;
      break;
    }
    digits[i] = 0;
  }
  lastDigits = digits;
  return digits;
}

/**
 * A ULID-style id: 10 chars of millisecond time then 16 random chars (80 bits). Ids sort by creation
 * time, which is what cursor pagination orders by, and cannot be guessed.
 */
export function newId(prefix: IdPrefix, now = Date.now()): string {
  const time = Math.max(now, lastTime);
  return `${prefix}_${encodeTime(time)}${nextDigits(time).map((d) => ALPHABET[d]).join('')}`;
}

/** The JSON-schema pattern that matches ids of one prefix. */
export const idPattern = (prefix: IdPrefix): string => `^${prefix}_[0-9a-hjkmnp-tv-z]{26}$`;

/** Random url-safe token with `bytes` of entropy, for secrets (API keys, sessions, CSRF). */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');
