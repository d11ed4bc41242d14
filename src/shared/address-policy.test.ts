import { describe, expect, it } from 'vitest';
import { classifyAddress, publicUnicastOnly } from './address-policy.js';
import { checkOutboundUrl, isOutboundUrlProblem } from './outbound-url.js';

// Pure classification: no packet is sent anywhere, so non-loopback forms are tested here only.
describe('classifying addresses by the IANA special-purpose registries', () => {
  it.each([
    // IPv4
    ['127.0.0.1', 'loopback', '127.0.0.1'],
    ['127.255.255.254', 'loopback', '127.255.255.254'],
    ['0.0.0.0', 'unspecified', '0.0.0.0'],
    ['0.1.2.3', 'unspecified', '0.1.2.3'],
    ['10.0.0.1', 'private', '10.0.0.1'],
    ['172.16.0.1', 'private', '172.16.0.1'],
    ['172.31.255.255', 'private', '172.31.255.255'],
    ['192.168.1.1', 'private', '192.168.1.1'],
    ['169.254.169.254', 'linkLocal', '169.254.169.254'],
    ['100.64.0.1', 'carrierGradeNat', '100.64.0.1'],
    ['100.127.255.255', 'carrierGradeNat', '100.127.255.255'],
    ['255.255.255.255', 'broadcast', '255.255.255.255'],
    ['224.0.0.1', 'multicast', '224.0.0.1'],
    ['239.255.255.250', 'multicast', '239.255.255.250'],
    ['198.18.0.1', 'reserved', '198.18.0.1'],
    ['198.19.255.255', 'reserved', '198.19.255.255'],
    ['192.0.0.8', 'reserved', '192.0.0.8'],
    ['192.0.2.1', 'reserved', '192.0.2.1'],
    ['198.51.100.7', 'reserved', '198.51.100.7'],
    ['203.0.113.9', 'reserved', '203.0.113.9'],
    ['192.88.99.1', 'reserved', '192.88.99.1'],
    ['240.0.0.1', 'reserved', '240.0.0.1'],
    ['192.31.196.1', 'as112', '192.31.196.1'],
    ['192.175.48.1', 'as112', '192.175.48.1'],
    ['192.52.193.1', 'amt', '192.52.193.1'],
    // IPv6
    ['::1', 'loopback', '::1'],
    ['::', 'unspecified', '::'],
    ['::ffff:127.0.0.1', 'loopback', '127.0.0.1'],
    ['::ffff:7f00:1', 'loopback', '127.0.0.1'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'linkLocal', '169.254.169.254'],
    ['::ffff:10.1.1.1', 'private', '10.1.1.1'],
    ['::7f00:1', 'ipv4Compatible', '::7f00:1'],
    ['::127.0.0.1', 'ipv4Compatible', '::7f00:1'],
    ['::a9fe:a9fe', 'ipv4Compatible', '::a9fe:a9fe'],
    ['::ffff:0:7f00:1', 'rfc6145', '::ffff:0:7f00:1'],
    ['64:ff9b::7f00:1', 'loopback', '127.0.0.1'],
    ['64:ff9b::169.254.169.254', 'linkLocal', '169.254.169.254'],
    ['64:ff9b::a00:1', 'private', '10.0.0.1'],
    ['64:ff9b:1::7f00:1', 'rfc6052', '64:ff9b:1::7f00:1'],
    ['2002:7f00:1::1', '6to4', '2002:7f00:1::1'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['fe80::1', 'linkLocal', 'fe80::1'],
    ['fe90::1', 'linkLocal', 'fe90::1'],
    ['febf:ffff::1', 'linkLocal', 'febf:ffff::1'],
    ['fe80::1%eth0', 'linkLocal', 'fe80::1%eth0'],
    ['fec0::1', 'deprecatedSiteLocal', 'fec0::1'],
    ['feff::1', 'deprecatedSiteLocal', 'feff::1'],
    ['fc00::1', 'uniqueLocal', 'fc00::1'],
    ['fd12:3456::1', 'uniqueLocal', 'fd12:3456::1'],
    ['ff02::1', 'multicast', 'ff02::1'],
    ['ff05::1:3', 'multicast', 'ff05::1:3'],
    ['100::1', 'discard', '100::1'],
    ['100:0:0:1::1', 'dummy', '100:0:0:1::1'],
    ['2001:db8::1', 'reserved', '2001:db8::1'],
    ['3fff::1', 'reserved', '3fff::1'],
    ['2001:2::1', 'benchmarking', '2001:2::1'],
    ['2001:20::1', 'orchid2', '2001:20::1'],
    ['5f00::1', 'segmentRouting', '5f00::1'],
    ['1::1', 'notGlobalUnicast', '1::1'],
    ['4000::1', 'notGlobalUnicast', '4000::1'],
    // Not addresses at all: names to a resolver, never accepted as addresses.
    ['2130706433', 'invalid', '2130706433'],
    ['0x7f.1', 'invalid', '0x7f.1'],
  ])('classifies %s as %s (%s) and refuses it', (address, range, effective) => {
    expect(classifyAddress(address)).toMatchObject({ range, effective });
    expect(publicUnicastOnly(address)).toEqual(expect.any(String));
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '198.20.0.1', '11.0.0.1', '::ffff:8.8.8.8', '64:ff9b::808:808', '2606:4700:4700::1111', '2a00:1450:4001::200e'])(
    'allows the public address %s',
    (address) => {
      expect(classifyAddress(address).range).toBe('unicast');
      expect(publicUnicastOnly(address)).toBeNull();
    },
  );

  it('names the address a mapped or NAT64 form stands for in the refusal', () => {
    expect(publicUnicastOnly('::ffff:7f00:1')).toBe('::ffff:7f00:1 (127.0.0.1) is not a public address (loopback)');
    expect(publicUnicastOnly('64:ff9b::a9fe:a9fe')).toBe('64:ff9b::a9fe:a9fe (169.254.169.254, through NAT64) is not a public address (link-local)');
  });
});

describe('checking a tenant URL before any I/O', () => {
  const refusal = (url: string, opts = {}) => {
    const result = checkOutboundUrl(url, opts);
    return isOutboundUrlProblem(result) ? result : null;
  };

  it.each([
    ['decimal IPv4', 'http://2130706433/', /127\.0\.0\.1.*loopback/],
    ['hex IPv4', 'http://0x7f000001/', /loopback/],
    ['dotted hex IPv4', 'http://0x7f.0.0.1/', /loopback/],
    ['octal IPv4', 'http://0177.0.0.1/', /loopback/],
    ['short IPv4', 'http://127.1/', /loopback/],
    ['IPv4 with a trailing dot', 'http://127.0.0.1./', /loopback/],
    ['percent-encoded IPv4', 'http://%31%32%37.0.0.1/', /loopback/],
    ['full-width digits', 'http://１２７.０.０.１/', /loopback/],
    ['metadata in decimal', 'http://2852039166/latest/meta-data/', /169\.254\.169\.254.*link-local/],
    ['private IPv4 in hex', 'http://0xa000001/', /10\.0\.0\.1.*private/],
    ['IPv4-mapped IPv6', 'http://[::ffff:127.0.0.1]:8080/', /127\.0\.0\.1.*loopback/],
    ['IPv4-mapped IPv6 in long form', 'http://[0:0:0:0:0:ffff:7f00:1]/', /loopback/],
    ['IPv4-compatible IPv6', 'http://[::127.0.0.1]/', /IPv4-compatible/],
    ['NAT64', 'http://[64:ff9b::127.0.0.1]/', /NAT64.*loopback/],
    ['IPv6 loopback', 'http://[::1]/', /loopback/],
    ['IPv6 unspecified', 'http://[::]/', /unspecified/],
    ['IPv6 link-local', 'https://[fe80::1]/', /link-local/],
    ['IPv6 site-local', 'https://[fec0::1]/', /site-local/],
    ['multicast', 'http://224.0.0.251/', /multicast/],
    ['broadcast', 'http://255.255.255.255/', /broadcast/],
    ['benchmarking space', 'http://198.18.0.10/', /reserved/],
    ['localhost', 'http://localhost/', /localhost name/],
    ['uppercase localhost', 'http://LOCALHOST:3000/', /localhost name/],
    ['localhost with a trailing dot', 'http://localhost./', /localhost name/],
    ['a name under .localhost', 'http://Admin.LocalHost/', /localhost name/],
  ])('refuses %s', (_form, url, reason) => {
    expect(refusal(url)).toMatchObject({ message: expect.stringMatching(reason) });
  });

  it.each([
    ['user and password', 'https://user:pass@api.example.com/', 'credentials'],
    ['a user alone', 'https://user@api.example.com/', 'credentials'],
    ['credentials before a private address', 'http://a:b@10.0.0.1/', 'credentials'],
    ['ftp', 'ftp://example.com/file', 'scheme'],
    ['file', 'file:///etc/passwd', 'scheme'],
    ['gopher', 'gopher://example.com:70/', 'scheme'],
    ['data', 'data:text/plain,hi', 'scheme'],
    ['javascript', 'javascript:alert(1)', 'scheme'],
    ['not a URL', 'not a url', 'invalid_url'],
  ])('refuses %s', (_what, url, reason) => {
    expect(refusal(url)).toMatchObject({ reason });
  });

  it('leaves names to the connection, normalized: lowercase, no trailing dot', () => {
    expect(checkOutboundUrl('HTTPS://API.Example.COM./v1')).toMatchObject({ host: 'api.example.com', address: null });
    // A name that only resolves to a private address is caught when it resolves (see safe-fetch.test.ts).
    expect(checkOutboundUrl('http://169.254.169.254.nip.io/')).toMatchObject({ address: null });
  });

  it('accepts private addresses and localhost only when the operator opts out, and never credentials', () => {
    const opts = { allowPrivateNetwork: true };
    expect(refusal('http://localhost:8080/', opts)).toBeNull();
    expect(refusal('http://[::ffff:10.0.0.1]/', opts)).toBeNull();
    expect(refusal('http://u:p@localhost/', opts)).toMatchObject({ reason: 'credentials' });
    expect(refusal('ftp://localhost/', opts)).toMatchObject({ reason: 'scheme' });
  });
});
