import { isIP } from 'node:net';
import { anyValidAddress, publicUnicastOnly, type AddressPolicy } from './address-policy.js';

/** Why a URL may not be requested, as a stable code. */
export type OutboundUrlFailure = 'invalid_url' | 'scheme' | 'credentials' | 'localhost' | 'blocked_address';

/** A refused URL: the code and a sentence that names the problem. */
export interface OutboundUrlProblem {
  reason: OutboundUrlFailure;
  message: string;
}

/** How strict the checks are. */
export interface OutboundUrlOptions {
  /** The operator's opt-out: loopback, private and other special addresses (and localhost names) allowed. */
  allowPrivateNetwork?: boolean;
  /** Replaces the address rule (tests let 127.0.0.2 stand in for a public address). */
  addressPolicy?: AddressPolicy;
}

/** A URL that passed the checks that need no DNS. */
export interface CheckedUrl {
  url: URL;
  /** The host without IPv6 brackets or trailing dots; what a resolver or the address rule sees. */
  host: string;
  /** The host when it is an IP literal (already checked); null for a name (checked when it resolves). */
  address: string | null;
}

/** The address rule the options select. */
export function addressPolicyFor(opts: OutboundUrlOptions): AddressPolicy {
  return opts.addressPolicy ?? (opts.allowPrivateNetwork ? anyValidAddress : publicUnicastOnly);
}

/**
 * Checks a tenant-chosen URL without any I/O: http(s) only, no credentials, no localhost names, and an IP
 * literal must pass the address rule. Numeric IPv4 forms (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) need
 * no rule of their own: the WHATWG parser turns them into dotted IPv4 before we look.
 */
export function checkOutboundUrl(target: string | URL, opts: OutboundUrlOptions = {}): CheckedUrl | OutboundUrlProblem {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return { reason: 'invalid_url', message: 'is not a valid URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { reason: 'scheme', message: `must be http or https, not ${url.protocol.replace(/:$/, '')}` };
  }
  // Credentials in a URL end up in logs and in every redirect's Referer; headers are the place for them.
  if (url.username !== '' || url.password !== '') {
    return { reason: 'credentials', message: 'must not contain credentials (user:password@); send them in a header' };
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.+$/, '');
  if (host === '') return { reason: 'invalid_url', message: 'has no host' };
  if (isIP(host) !== 0) {
    const why = addressPolicyFor(opts)(host);
    return why ? { reason: 'blocked_address', message: why } : { url, host, address: host };
  }
  // RFC 6761 §6.3: localhost and every name under it are this machine, whatever a resolver says.
  if (!opts.allowPrivateNetwork && (host === 'localhost' || host.endsWith('.localhost'))) {
    return { reason: 'localhost', message: `${host} is a localhost name (this machine)` };
  }
  return { url, host, address: null };
}

/** True when {@link checkOutboundUrl} refused the URL. */
export function isOutboundUrlProblem(result: CheckedUrl | OutboundUrlProblem): result is OutboundUrlProblem {
  return 'reason' in result;
}
