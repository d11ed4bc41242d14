import type { Agent } from '../agents.schemas.js';
import type { EndReason } from '../../calls/calls.table.js';
import { renderPrompt } from '../prompt.js';
import type { AnsweredBy } from './responder.js';

// Outbound calls wait this long for answering-machine detection before speaking anyway.
const AMD_WAIT_MS = 8000;

/** What the agent does once answering-machine detection has given its verdict. */
export type AmdAction = { kind: 'greet' } | { kind: 'end'; reason: EndReason; detail: string } | { kind: 'leave_message'; message: string };

/**
 * A person (or no verdict) hears the first message; a machine gets the agent's voicemail behaviour (a
 * message, or a hangup); a fax is hung up on.
 */
export function amdAction(answeredBy: AnsweredBy, voicemail: Agent['voicemail'], variables: Readonly<Record<string, string>>): AmdAction {
  if (answeredBy === 'fax') return { kind: 'end', reason: 'not_answered', detail: 'fax machine' };
  if (answeredBy !== 'machine') return { kind: 'greet' };
  // DetectMessageEnd reports a machine after its greeting and beep: speaking now lands in the mailbox.
  const message = voicemail.action === 'leave_message' && voicemail.message ? renderPrompt(voicemail.message, variables).trim() : '';
  return message ? { kind: 'leave_message', message } : { kind: 'end', reason: 'voicemail', detail: 'answering machine: hung up' };
}

/** Holds an outbound call's first words until answering-machine detection's verdict, or a deadline. */
export class AmdGate {
  private timer: NodeJS.Timeout | null = null;
  /** Waiting for the verdict: caller speech is not answered meanwhile ("Hello?" may be a mailbox greeting). */
  waiting = false;

  /** Starts waiting; `onTimeout` runs when no verdict came within `ms`. */
  hold(onTimeout: () => void, ms = AMD_WAIT_MS): void {
    this.waiting = true;
    this.timer = setTimeout(onTimeout, ms);
    this.timer.unref?.();
  }

  /** Stops waiting; false when it was not waiting (a late or repeated verdict). */
  release(): boolean {
    if (!this.waiting) return false;
    this.waiting = false;
    this.close();
    return true;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
