import type { CallsService } from '../calls/calls.service.js';
import type { CarrierLookup } from '../calls/lifecycle/lifecycle-sweep.js';
import type { TelephonyProvider } from './provider/telephony-provider.js';
import { callStatusFromTwilio } from './webhooks/twilio-params.js';

// The carrier's clock and ours differ a little; a call created just before our row is still ours.
const CLOCK_SLACK_MS = 60_000;

/**
 * Finds an outbound call at the carrier by its parties and time, for a call whose carrier id we never
 * stored. Only an unambiguous answer counts: exactly one carrier call that no other call of ours claims.
 */
export function carrierLookup(telephony: TelephonyProvider, calls: CallsService): CarrierLookup {
  return async (call) => {
    if (!call.fromNumber || !call.toNumber) return null;
    const found = await telephony.findCalls({ from: call.fromNumber, to: call.toNumber, since: new Date(call.createdAt.getTime() - CLOCK_SLACK_MS) });
    const unclaimed = [];
    for (const f of found) if (!(await calls.byProviderSid(f.providerCallSid))) unclaimed.push(f);
    if (unclaimed.length !== 1) return null;
    const [match] = unclaimed;
    const status = callStatusFromTwilio(match!.status);
    return status ? { providerCallSid: match!.providerCallSid, status, durationSeconds: match!.durationSeconds } : null;
  };
}
