import type { CallRow, CallStatus, EndReason } from '../calls.table.js';

/** What a finalized call says about itself: the four things that never change after `call.ended`. */
export interface FinalOutcome {
  status: CallStatus;
  endReason: EndReason;
  endedAt: Date;
  answeredAt: Date | null;
  durationSeconds: number;
}

/** Ends that mean something broke rather than someone hanging up. */
export const FAILURE_REASONS: ReadonlySet<EndReason> = new Set<EndReason>(['provider_error', 'error', 'worker_crashed', 'protocol_error', 'server_crashed', 'placement_unknown']);

const UNANSWERED: ReadonlySet<CallStatus> = new Set<CallStatus>(['busy', 'no_answer', 'failed', 'canceled']);

/** The call's facts the outcome is decided from. */
export type OutcomeFacts = Pick<CallRow, 'status' | 'endReason' | 'endedAt' | 'startedAt' | 'answeredAt' | 'durationSeconds' | 'carrierStatus'> & {
  /** The caller heard the agent: at least one assistant turn was stored. */
  agentSpoke: boolean;
};

/**
 * Decides a call's final status, end reason, duration and answer time. Pure: the finalizer calls it on the
 * locked row. The carrier's word wins where it has one (an unanswered status, the billed duration); our
 * own record says whether an answered call actually worked.
 */
export function finalOutcome(call: OutcomeFacts, now: Date): FinalOutcome {
  const endedAt = call.endedAt ?? now;
  const carrier = call.carrierStatus;
  const unanswered = carrier !== null && UNANSWERED.has(carrier);
  // The carrier's "in-progress" time, else the moment our stream started (a stream only starts on an answered
  // call), else, for a completed call, its billed seconds back from the end; never after the end.
  const billedStart = carrier === 'completed' && call.durationSeconds ? new Date(endedAt.getTime() - call.durationSeconds * 1000) : null;
  const answerTime = unanswered && !call.startedAt ? null : (call.answeredAt ?? call.startedAt ?? billedStart);
  const answeredAt = answerTime && answerTime > endedAt ? endedAt : answerTime;
  const answered = answeredAt !== null || carrier === 'completed';

  const recorded = call.endReason;
  let status: CallStatus;
  let endReason: EndReason;
  if (carrier && unanswered && !call.startedAt) {
    status = carrier;
    endReason = recorded ?? 'not_answered';
  } else if (!answered) {
    // Nobody picked up and the carrier said nothing: a test call whose socket never came, or a placement
    // that never happened.
    status = recorded && FAILURE_REASONS.has(recorded) ? 'failed' : 'no_answer';
    endReason = recorded ?? 'not_answered';
  } else {
    endReason = recorded ?? 'carrier_completed';
    status = FAILURE_REASONS.has(endReason) && !call.agentSpoke ? 'failed' : 'completed';
  }

  const durationSeconds = call.durationSeconds ?? (answeredAt ? Math.max(0, Math.ceil((endedAt.getTime() - answeredAt.getTime()) / 1000)) : 0);
  return { status, endReason, endedAt, answeredAt, durationSeconds };
}
