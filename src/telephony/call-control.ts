import type { FastifyBaseLogger } from 'fastify';
import type { CallsService } from '../calls/calls.service.js';
import type { CallLifecycle } from '../calls/lifecycle/call-lifecycle.js';
import type { CallRow } from '../calls/calls.table.js';
import type { AgentsService } from '../agents/agents.service.js';
import type { NumbersService } from '../numbers/numbers.service.js';
import { AppError, conflict, invalid } from '../shared/errors.js';
import { e164Problem, TelephonyError, type TelephonyProvider } from './provider/telephony-provider.js';
import { callStatusFromTwilio } from './webhooks/twilio-params.js';
import type { CallSession } from './call-session.js';

/** What `POST /v1/calls` asks for. */
export interface OutboundCallInput {
  agentId: string;
  to: string;
  from?: string;
  phoneNumberId?: string;
  variables?: Record<string, string>;
  /** Answering-machine detection (default on). */
  machineDetection?: boolean;
  idempotencyKey?: string;
}

/** Places and controls calls at the carrier: outbound calls, hangups. */
export class CallControl {
  constructor(
    private readonly deps: {
      calls: CallsService;
      lifecycle: CallLifecycle;
      agents: AgentsService;
      numbers: NumbersService;
      telephony: TelephonyProvider | null;
      sessions: Map<string, CallSession>;
      publicUrl: string;
      log: FastifyBaseLogger;
    },
  ) {}

  /**
   * Places an outbound call: the call row exists before the carrier is asked (nothing is lost if we
   * crash in between), and an `Idempotency-Key` returns the first call instead of placing another.
   */
  async place(organizationId: string, input: OutboundCallInput): Promise<{ call: CallRow; replayed: boolean }> {
    const { calls, agents } = this.deps;
    if (input.idempotencyKey) {
      const earlier = await calls.byIdempotencyKey(organizationId, input.idempotencyKey);
      if (earlier) return { call: this.sameRequest(earlier, input), replayed: true };
    }
    const problem = e164Problem('to', input.to);
    if (problem) throw invalid(problem, { field: 'to' });
    const telephony = this.requireTelephony();
    const agent = await agents.get(organizationId, input.agentId);
    const from = await this.callerNumber(organizationId, input, agent.id);

    let call: CallRow;
    try {
      call = await calls.create(organizationId, {
        agentId: agent.id,
        direction: 'outbound',
        fromNumber: from.phoneNumber,
        toNumber: input.to,
        phoneNumberId: from.id,
        variables: input.variables,
        idempotencyKey: input.idempotencyKey,
        machineDetection: input.machineDetection !== false,
      });
    } catch (err) {
      // The same key raced in twice: the other request created the call.
      const earlier = input.idempotencyKey ? await calls.byIdempotencyKey(organizationId, input.idempotencyKey) : null;
      if (earlier) return { call: this.sameRequest(earlier, input), replayed: true };
      throw err;
    }

    const base = this.deps.publicUrl;
    // Every callback URL names the call: a callback that arrives before the carrier's answer to this request
    // (or after we crashed before storing it) still finds its call.
    const ofCall = `callId=${call.id}`;
    try {
      const placed = await telephony.placeCall({
        to: input.to,
        from: from.phoneNumber,
        voiceUrl: `${base}/twilio/voice?${ofCall}`,
        statusCallbackUrl: `${base}/twilio/status?${ofCall}`,
        machineDetection: input.machineDetection === false ? undefined : { asyncCallbackUrl: `${base}/twilio/amd?${ofCall}`, mode: 'DetectMessageEnd' },
      });
      const status = callStatusFromTwilio(placed.status) ?? 'initiated';
      return { call: await calls.placed(call.id, placed.providerCallSid, status === 'queued' ? 'initiated' : status), replayed: false };
    } catch (err) {
      await this.deps.lifecycle.placementFailed(call.id, 'error', err instanceof Error ? err.message : String(err));
      if (err instanceof TelephonyError) throw err.toAppError();
      throw err;
    }
  }

  /**
   * Hangs up a live call: the cause is recorded first (the carrier's stream `stop` may overtake its REST
   * answer), then the carrier is asked, then the media session ends if this node holds it.
   */
  async hangUp(organizationId: string, id: string): Promise<CallRow> {
    const { calls, lifecycle } = this.deps;
    const call = await calls.get(organizationId, id);
    if (call.deletedAt) throw new AppError('not_found', `call ${id} does not exist`, 404);
    if (call.endedAt || call.finalizedAt || !(await lifecycle.recordCause(call.id, 'hangup_requested'))) throw conflict(`call ${id} has already ended or is ending`);
    // Test calls have no carrier leg; calls through Twilio (outbound, or inbound to a number) do.
    const carrierLeg = call.direction === 'outbound' || call.phoneNumberId !== null;
    if (carrierLeg && call.providerCallSid) {
      try {
        await this.requireTelephony().hangUp(call.providerCallSid);
      } catch (err) {
        await lifecycle.withdrawCause(call.id, 'hangup_requested');
        if (err instanceof TelephonyError) throw err.toAppError();
        throw err;
      }
    }
    const session = this.deps.sessions.get(call.id);
    if (session) await session.end('hangup_requested');
    // No media here and no carrier to report the end: a test call held elsewhere or never connected. A carrier
    // call hung up before its stream started (still ringing) has ended too: its media never will start, a late
    // in-progress must not answer it, and the sweep must finalize it if the carrier's final callback is lost.
    else if (!carrierLeg || !call.providerCallSid || (await calls.get(organizationId, id)).streamSid === null) await lifecycle.mediaEnded(call.id, 'hangup_requested');
    return calls.get(organizationId, id);
  }

  private requireTelephony(): TelephonyProvider {
    if (!this.deps.telephony) throw new AppError('telephony_not_configured', 'no telephony provider is configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN', 503);
    return this.deps.telephony;
  }

  // The caller ID: the number named, or the number assigned to the agent.
  private async callerNumber(organizationId: string, input: OutboundCallInput, agentId: string): Promise<{ id: string; phoneNumber: string }> {
    const { numbers } = this.deps;
    if (input.phoneNumberId) return numbers.get(organizationId, input.phoneNumberId);
    if (input.from) {
      const problem = e164Problem('from', input.from);
      if (problem) throw invalid(problem, { field: 'from' });
      const owned = await numbers.findLive(input.from);
      if (!owned || owned.organizationId !== organizationId) throw invalid(`from ${input.from} is not one of your phone numbers`, { field: 'from' });
      return owned;
    }
    const [assigned] = await numbers.list(organizationId, { limit: 1, agentId });
    if (!assigned) throw invalid('give from or phoneNumberId: the agent has no phone number assigned', { field: 'from' });
    return assigned;
  }

  // A replayed key must mean the same request; another call under the same key is a client bug.
  private sameRequest(earlier: CallRow, input: OutboundCallInput): CallRow {
    if (earlier.agentId !== input.agentId || earlier.toNumber !== input.to) {
      throw conflict('Idempotency-Key was already used for a different call', { field: 'Idempotency-Key', callId: earlier.id });
    }
    return earlier;
  }
}
