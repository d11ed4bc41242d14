import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLoopbackListener, type LoopbackListener } from '../../test/helpers/listeners.js';
import { classifyAddress, type AddressPolicy } from './address-policy.js';
import { safeFetch, SafeFetchError, type SafeFetchOptions, type SafeLookup } from './safe-fetch.js';

// Every packet here stays on 127.0.0.0/8 or ::1. Where a test needs a "public" address, 127.0.0.2 stands in
// for one through an injected address rule; 127.0.0.1 is then the internal network.
const standInOnly: AddressPolicy = (address) => (classifyAddress(address).effective === '127.0.0.2' ? null : `${address} is internal`);

/** A stub resolver that answers from a script and counts how often it was asked. */
function stubResolver(answers: string[][]): SafeLookup & { calls: string[] } {
  const calls: string[] = [];
  const lookup = async (hostname: string) => {
    calls.push(hostname);
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)] ?? [];
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(lookup, { calls });
}

const refusal = async (url: string, options: SafeFetchOptions = {}): Promise<SafeFetchError> => {
  const err = await safeFetch(url, options).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SafeFetchError);
  return err as SafeFetchError;
};

/** Two listeners on one port: 127.0.0.2 (the stand-in public host) and 127.0.0.1 (internal). */
async function listenerPair(handlePublic?: Parameters<typeof startLoopbackListener>[2]): Promise<{ pub: LoopbackListener; internal: LoopbackListener }> {
  for (let attempt = 0; ; attempt++) {
    const pub = await startLoopbackListener('127.0.0.2', 0, handlePublic);
    try {
      return { pub, internal: await startLoopbackListener('127.0.0.1', pub.port) };
    } catch (err) {
      await pub.close();
      if (attempt > 5) throw err;
    }
  }
}

describe('safeFetch: loopback in every disguise never receives a packet', () => {
  let v4: LoopbackListener;
  let v6: LoopbackListener;

  beforeAll(async () => {
    v4 = await startLoopbackListener('127.0.0.1');
    v6 = await startLoopbackListener('::1');
  });
  afterAll(async () => {
    await v4.close();
    await v6.close();
  });
  afterEach(() => {
    expect(v4.connections).toBe(0);
    expect(v6.connections).toBe(0);
  });

  it.each([
    ['dotted IPv4', (p: number) => `http://127.0.0.1:${p}/`],
    ['IPv4-mapped IPv6, dotted', (p: number) => `http://[::ffff:127.0.0.1]:${p}/`],
    ['IPv4-mapped IPv6, hex', (p: number) => `http://[::ffff:7f00:1]:${p}/`],
    ['IPv4-mapped IPv6, long form, uppercase', (p: number) => `http://[0:0:0:0:0:FFFF:7F00:0001]:${p}/`],
    ['decimal IPv4', (p: number) => `http://2130706433:${p}/`],
    ['hex IPv4', (p: number) => `http://0x7f000001:${p}/`],
    ['octal IPv4', (p: number) => `http://0177.0.0.1:${p}/`],
    ['short IPv4', (p: number) => `http://127.1:${p}/`],
    ['IPv4 with a trailing dot', (p: number) => `http://127.0.0.1.:${p}/`],
    ['localhost with a trailing dot', (p: number) => `http://localhost.:${p}/`],
    ['uppercase LOCALHOST', (p: number) => `http://LOCALHOST:${p}/`],
    ['https to localhost', (p: number) => `https://localhost:${p}/`],
  ])('refuses 127.0.0.1 written as %s', async (_form, url) => {
    const err = await refusal(url(v4.port), { method: 'POST', body: '{}' });
    expect(err.reason).toMatch(/blocked_address|localhost/);
  });

  it('refuses ::1 written as an IPv6 literal', async () => {
    expect((await refusal(`http://[::1]:${v6.port}/`)).reason).toBe('blocked_address');
    expect((await refusal(`http://[0:0:0:0:0:0:0:1]:${v6.port}/`)).reason).toBe('blocked_address');
  });

  it('refuses a name that resolves to loopback, after one resolution', async () => {
    const lookup = stubResolver([['127.0.0.1']]);
    const err = await refusal(`http://tools.example.test:${v4.port}/`, { lookup });
    expect(err).toMatchObject({ reason: 'blocked_address', message: 'tools.example.test resolves to a refused address: 127.0.0.1 is not a public address (loopback)' });
    expect(lookup.calls).toEqual(['tools.example.test']);
  });

  it('refuses a name that resolves to a mapped loopback address or ::1', async () => {
    expect((await refusal(`http://a.example.test:${v4.port}/`, { lookup: stubResolver([['::ffff:127.0.0.1']]) })).reason).toBe('blocked_address');
    expect((await refusal(`http://b.example.test:${v6.port}/`, { lookup: stubResolver([['::1']]) })).reason).toBe('blocked_address');
  });

  it('refuses a name when any one of its addresses is refused, so no fallback reaches it', async () => {
    const err = await refusal(`http://mixed.example.test:${v4.port}/`, { lookup: stubResolver([['127.0.0.2', '127.0.0.1']]), addressPolicy: standInOnly });
    expect(err.message).toMatch(/127\.0\.0\.1 is internal/);
  });

  it('refuses credentials in the URL before connecting, even with private networks allowed', async () => {
    const err = await refusal(`http://user:secret@127.0.0.1:${v4.port}/`, { allowPrivateNetwork: true });
    expect(err.reason).toBe('credentials');
  });

  it('refuses other schemes', async () => {
    expect((await refusal('file:///etc/passwd')).reason).toBe('scheme');
    expect((await refusal(`ftp://127.0.0.1:${v4.port}/`, { allowPrivateNetwork: true })).reason).toBe('scheme');
  });

  it('reports a name that does not resolve', async () => {
    const failing: SafeLookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    expect(await refusal('http://nowhere.example.test/', { lookup: failing })).toMatchObject({ reason: 'dns', message: 'could not resolve nowhere.example.test: ENOTFOUND' });
  });
});

describe('safeFetch: one resolution, and the connection goes to the address that was checked', () => {
  let pub: LoopbackListener;
  let internal: LoopbackListener;

  beforeAll(async () => {
    ({ pub, internal } = await listenerPair());
  });
  afterAll(async () => {
    await pub.close();
    await internal.close();
  });

  it('connects to the checked address when the resolver answers differently the second time (DNS rebinding)', async () => {
    const lookup = stubResolver([['127.0.0.2'], ['127.0.0.1']]);
    const res = await safeFetch(`http://rebind.example.test:${pub.port}/data`, { lookup, addressPolicy: standInOnly });
    expect(res).toMatchObject({ status: 200, ok: true });
    expect(res.text()).toBe('{"ok":true}');
    expect(lookup.calls).toEqual(['rebind.example.test']);
    expect(pub.requests).toMatchObject([{ url: '/data', headers: { host: `rebind.example.test:${pub.port}` }, localAddress: '127.0.0.2' }]);
    expect(internal.connections).toBe(0);

    // The next request resolves again, gets the internal answer, and is refused before connecting.
    const err = await refusal(`http://rebind.example.test:${pub.port}/data`, { lookup, addressPolicy: standInOnly });
    expect(err.reason).toBe('blocked_address');
    expect(lookup.calls).toHaveLength(2);
    expect(internal.connections).toBe(0);
    expect(pub.requests).toHaveLength(1);
  });
});

describe('safeFetch: redirects', () => {
  let pub: LoopbackListener;
  let internal: LoopbackListener;
  let location = '';
  let status = 302;

  beforeAll(async () => {
    ({ pub, internal } = await listenerPair((req, res) => {
      if (req.url.startsWith('/final')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${req.method} ${req.body}`);
        return;
      }
      res.writeHead(status, { location });
      res.end();
    }));
  });
  afterAll(async () => {
    await pub.close();
    await internal.close();
  });
  afterEach(() => {
    expect(internal.connections).toBe(0);
    pub.requests.length = 0;
    status = 302;
  });

  const opts = (over: SafeFetchOptions = {}): SafeFetchOptions => ({ lookup: stubResolver([['127.0.0.2']]), addressPolicy: standInOnly, redirect: { follow: 3 }, ...over });

  it('does not follow redirects unless asked, and does not contact the target', async () => {
    location = `http://127.0.0.1:${internal.port}/final`;
    const err = await refusal(`http://127.0.0.2:${pub.port}/start`, opts({ redirect: 'error' }));
    expect(err).toMatchObject({ reason: 'redirect', message: expect.stringContaining('302') });
  });

  it('hands back the 3xx itself with redirect manual', async () => {
    location = `http://127.0.0.1:${internal.port}/final`;
    const res = await safeFetch(`http://127.0.0.2:${pub.port}/start`, opts({ redirect: 'manual' }));
    expect(res).toMatchObject({ status: 302, headers: { location } });
  });

  it.each([
    ['a literal internal address', (p: number) => `http://127.0.0.1:${p}/final`],
    ['an IPv4-mapped internal address', (p: number) => `http://[::ffff:7f00:1]:${p}/final`],
    ['a decimal internal address', (p: number) => `http://2130706433:${p}/final`],
    ['localhost', (p: number) => `http://localhost:${p}/final`],
  ])('checks every hop: refuses a redirect to %s', async (_what, target) => {
    location = target(internal.port);
    const err = await refusal(`http://127.0.0.2:${pub.port}/start`, opts());
    expect(err.reason).toMatch(/blocked_address|localhost/);
    expect(err.message).toMatch(/^redirect to /);
    expect(pub.requests).toHaveLength(1);
  });

  it('resolves a redirect target name once more and refuses it when it resolves inside', async () => {
    location = `http://sneaky.example.test:${internal.port}/final`;
    const lookup = stubResolver([['127.0.0.1']]);
    const err = await refusal(`http://127.0.0.2:${pub.port}/start`, opts({ lookup }));
    expect(err.reason).toBe('blocked_address');
    expect(lookup.calls).toEqual(['sneaky.example.test']);
  });

  it('follows allowed hops, turning a POST into a GET on 303 and keeping credentials on the same origin', async () => {
    status = 303;
    location = '/final';
    const res = await safeFetch(`http://127.0.0.2:${pub.port}/start`, opts({ method: 'POST', body: 'payload', headers: { authorization: 'Bearer same-origin', 'content-type': 'text/plain' } }));
    expect(res).toMatchObject({ status: 200, redirects: 1, url: `http://127.0.0.2:${pub.port}/final` });
    expect(res.text()).toBe('GET ');
    expect(pub.requests.map((r) => [r.method, r.url, r.headers.authorization])).toEqual([
      ['POST', '/start', 'Bearer same-origin'],
      ['GET', '/final', 'Bearer same-origin'],
    ]);
  });

  it('drops credentials on a redirect to another origin', async () => {
    status = 307;
    location = `http://other.example.test:${pub.port}/final`;
    const res = await safeFetch(`http://127.0.0.2:${pub.port}/start`, opts({ method: 'POST', body: 'x', headers: { authorization: 'Bearer first-origin-only', 'x-api-key': 'k', accept: 'text/plain' } }));
    expect(res.text()).toBe('POST x');
    const second = pub.requests[1]!;
    expect(second.headers).toMatchObject({ host: `other.example.test:${pub.port}`, accept: 'text/plain' });
    expect(second.headers.authorization).toBeUndefined();
    expect(second.headers['x-api-key']).toBeUndefined();
  });

  it('stops after the allowed number of hops', async () => {
    location = '/again';
    const err = await refusal(`http://127.0.0.2:${pub.port}/start`, opts({ redirect: { follow: 2 } }));
    expect(err.reason).toBe('too_many_redirects');
    expect(pub.requests).toHaveLength(3);
  });
});

describe('safeFetch: limits', () => {
  let slow: LoopbackListener;
  let big: LoopbackListener;

  beforeAll(async () => {
    slow = await startLoopbackListener('127.0.0.1', 0, () => {});
    big = await startLoopbackListener('127.0.0.1', 0, (_req, res) => {
      res.writeHead(200);
      res.end('x'.repeat(100_000));
    });
  });
  afterAll(async () => {
    await slow.close();
    await big.close();
  });

  it('gives up after the timeout', async () => {
    const started = Date.now();
    const err = await refusal(`http://127.0.0.1:${slow.port}/`, { allowPrivateNetwork: true, timeoutMs: 300 });
    expect(err).toMatchObject({ reason: 'timeout', message: 'timed out after 300 ms' });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('stops when the caller aborts', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    expect((await refusal(`http://127.0.0.1:${slow.port}/`, { allowPrivateNetwork: true, signal: controller.signal })).reason).toBe('aborted');
  });

  it('reads no more than the response limit', async () => {
    const res = await safeFetch(`http://127.0.0.1:${big.port}/`, { allowPrivateNetwork: true, maxResponseBytes: 1000 });
    expect(res.body.byteLength).toBe(1000);
    expect(res.truncated).toBe(true);
  });
});

describe('safeFetch over TLS to a pinned address', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vocelio-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=tools.example.test', '-addext', 'subjectAltName=DNS:tools.example.test'], { stdio: 'ignore' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sends the host name as SNI and still verifies the certificate', async () => {
    const servernames: string[] = [];
    const credentials = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
    const context = createSecureContext(credentials);
    const server = createTlsServer({ ...credentials, SNICallback: (name, cb) => { servernames.push(name); cb(null, context); } }, (_req, res) => res.end('secret'));
    server.on('tlsClientError', () => {});
    const seen: string[] = [];
    server.prependListener('connection', (socket: Socket) => seen.push(socket.localAddress ?? ''));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      // Self-signed: a client that checks certificates must refuse it; one that connected by IP would send no SNI.
      const err = await refusal(`https://tools.example.test:${port}/`, { lookup: stubResolver([['127.0.0.2']]), addressPolicy: standInOnly });
      expect(err).toMatchObject({ reason: 'network', message: expect.stringMatching(/self[- ]signed/i) });
      expect(seen).toEqual(['127.0.0.2']);
      expect(servernames).toEqual(['tools.example.test']);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
