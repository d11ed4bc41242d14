import type { AnsweredBy, CallStatus } from '../../calls/calls.table.js';

/** Twilio's `CallStatus` values mapped to ours; unknown values are ignored. */
export function callStatusFromTwilio(raw: string | undefined): CallStatus | null {
  switch (raw) {
    case 'queued':
    case 'initiated':
    case 'ringing':
    case 'completed':
    case 'busy':
    case 'failed':
    case 'canceled':
      return raw;
    case 'in-progress':
      return 'in_progress';
    case 'no-answer':
      return 'no_answer';
    default:
      return null;
  }
}

/** Twilio's `AnsweredBy` (answering-machine detection) reduced to what the agent acts on. */
export function answeredByFromTwilio(raw: string | undefined): AnsweredBy | null {
  if (!raw) return null;
  if (raw === 'human') return 'human';
  if (raw.startsWith('machine')) return 'machine';
  if (raw === 'fax') return 'fax';
  if (raw === 'unknown') return 'unknown';
  return null;
}

/** A non-negative whole number of seconds, or undefined. */
export function seconds(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d{1,9}$/.test(raw)) return undefined;
  return Number(raw);
}
