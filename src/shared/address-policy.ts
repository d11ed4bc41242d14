import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Why an address may not be contacted, or null when it may. The seam through which tests let 127.0.0.2 stand
 * in for a public address (tests never send a packet outside loopback).
 */
export type AddressPolicy = (address: string) => string | null;

/** What an IP address is, by the IANA special-purpose registries; `unicast` is the ordinary public kind. */
export interface AddressClass {
  /** ipaddr.js's range name, or one of ours (`ipv4Compatible`, `notGlobalUnicast`, `dummy`, `invalid`). */
  range: string;
  /** The address as an outbound connection would reach it: IPv4-mapped and NAT64 forms unwrapped. */
  effective: string;
  /** Set for NAT64 (64:ff9b::/96): the class of the IPv4 address the translator connects to. */
  via?: 'nat64';
}

// Human names for the error message; range names not listed here are shown as they are.
const RANGE_NAMES: Record<string, string> = {
  unicast: 'public unicast',
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT',
  private: 'private',
  reserved: 'reserved or documentation',
  as112: 'AS112 DNS sink',
  amt: 'AMT relay anycast',
  uniqueLocal: 'unique-local',
  ipv4Mapped: 'IPv4-mapped',
  deprecatedSiteLocal: 'site-local',
  discard: 'discard-only',
  rfc6145: 'IPv4-translated',
  rfc6052: 'local-use NAT64',
  '6to4': '6to4',
  teredo: 'Teredo',
  benchmarking: 'benchmarking',
  as112v6: 'AS112 DNS sink',
  deprecatedOrchid: 'ORCHID',
  orchid2: 'ORCHIDv2',
  droneRemoteIdProtocolEntityTags: 'drone remote ID',
  segmentRouting: 'SRv6 SID',
  ipv4Compatible: 'IPv4-compatible',
  notGlobalUnicast: 'non-global IPv6',
  dummy: 'dummy IPv6 prefix',
  invalid: 'invalid',
};

// Ranges ipaddr.js (2.5) does not name, from the IANA registries it otherwise follows:
// - ::/96, IPv4-compatible IPv6 (RFC 4291 §2.5.5.1, deprecated): inside "::/8 Reserved by IETF" of the IANA
//   IPv6 Address Space registry; ipaddr.js names only :: and ::1 in it and calls the rest unicast.
// - 100:0:0:1::/64, the dummy IPv6 prefix (RFC 9780), added to the IANA IPv6 Special-Purpose Address
//   Registry in 2025.
// - Everything outside 2000::/3: the IANA IPv6 Address Space registry allocates only 2000::/3 as Global
//   Unicast; the rest is reserved, unique-local, link-local or multicast, so nothing public lives there.
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96');
const DUMMY_PREFIX = ipaddr.parseCIDR('100:0:0:1::/64');
const GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');
// The NAT64 well-known prefix (RFC 6052 §2.1): the translator connects to the IPv4 address in the last 32
// bits, so that address decides. (64:ff9b:1::/48 is for local use, RFC 8215, and stays refused.)
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');

/** Classifies a literal IP address (as `net.isIP` accepts it: dotted IPv4, any IPv6 text form). */
export function classifyAddress(address: string): AddressClass {
  const text = canonical(address.replace(/^\[|\]$/g, ''));
  // Strict: '2130706433' or '0x7f.1' are names to a resolver, never addresses here.
  if (text === null || !ipaddr.isValid(text)) return { range: 'invalid', effective: address };
  const ip = ipaddr.process(text);
  if (ip instanceof ipaddr.IPv4) return { range: ip.range(), effective: ip.toString() };
  const v6 = ip;
  if (v6.match(NAT64_WELL_KNOWN)) {
    const bytes = v6.toByteArray().slice(12);
    const inner = ipaddr.fromByteArray(bytes) as ipaddr.IPv4;
    return { range: inner.range(), effective: inner.toString(), via: 'nat64' };
  }
  const named = v6.range();
  if (named !== 'unicast') return { range: named, effective: v6.toString() };
  if (v6.match(IPV4_COMPATIBLE)) return { range: 'ipv4Compatible', effective: v6.toString() };
  if (v6.match(DUMMY_PREFIX)) return { range: 'dummy', effective: v6.toString() };
  if (!v6.match(GLOBAL_UNICAST)) return { range: 'notGlobalUnicast', effective: v6.toString() };
  return { range: 'unicast', effective: v6.toString() };
}

/**
 * The address in the WHATWG parser's canonical form, or null when it is not an IP address. ipaddr.js reads
 * `::127.0.0.1` (IPv4-compatible) as `::ffff:127.0.0.1` (IPv4-mapped), so IPv6 text goes through the same
 * parser as our URLs before ipaddr.js sees it; hex groups it reads correctly.
 */
function canonical(text: string): string | null {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6) return null;
  const [bare = '', zone] = text.split('%');
  try {
    const host = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    return zone === undefined ? host : `${host}%${zone}`;
  } catch {
    return null;
  }
}

/** A readable name of an address's range, e.g. "loopback" or "link-local". */
export function rangeName(range: string): string {
  return RANGE_NAMES[range] ?? range;
}

/** The default policy: only public unicast addresses; everything in a special-purpose range is refused. */
export const publicUnicastOnly: AddressPolicy = (address) => {
  const c = classifyAddress(address);
  if (c.range === 'unicast') return null;
  const shown = c.effective === address ? address : `${address} (${c.effective}${c.via ? ', through NAT64' : ''})`;
  return c.range === 'invalid' ? `${address} is not an IP address` : `${shown} is not a public address (${rangeName(c.range)})`;
};

/** The operator's opt-out (`TOOLS_ALLOW_PRIVATE_NETWORK=true`): any valid address. */
export const anyValidAddress: AddressPolicy = (address) => (isIP(address.replace(/^\[|\]$/g, '')) === 0 ? `${address} is not an IP address` : null);
