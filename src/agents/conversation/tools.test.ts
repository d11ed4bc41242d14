import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoopbackListener, type LoopbackListener } from '../../../test/helpers/listeners.js';
import type { HttpTool } from '../agents.schemas.js';
import { ToolRunner, type ToolOutcome } from './tools.js';

const tool = (url: string, over: Partial<HttpTool> = {}): HttpTool => ({
  type: 'http',
  name: 'lookup',
  description: 'Looks something up',
  url,
  method: 'POST',
  timeoutMs: 2000,
  parameters: { type: 'object' },
  ...over,
});

const run = (runner: ToolRunner, args: object = {}) => runner.run({ id: 'call_1', name: 'lookup', arguments: JSON.stringify(args) }, new AbortController().signal);

const errorOf = (outcome: ToolOutcome): string => {
  expect(outcome).toMatchObject({ kind: 'result', ok: false });
  return (JSON.parse(outcome.content) as { error: string }).error;
};

describe('HTTP tools and private networks', () => {
  let listener: LoopbackListener;

  beforeAll(async () => {
    listener = await startLoopbackListener('127.0.0.1');
  });
  afterAll(() => listener.close());

  // Each of these names 127.0.0.1 (or ::1) in a form the old prefix check did not recognise or that a
  // URL parser rewrites; none may reach the listener.
  it.each([
    ['IPv4-mapped IPv6, dotted', (p: number) => `http://[::ffff:127.0.0.1]:${p}/`],
    ['IPv4-mapped IPv6, hex', (p: number) => `http://[::ffff:7f00:1]:${p}/`],
    ['IPv4-mapped IPv6, long form', (p: number) => `http://[0:0:0:0:0:ffff:127.0.0.1]:${p}/`],
    ['decimal IPv4', (p: number) => `http://2130706433:${p}/`],
    ['hex IPv4', (p: number) => `http://0x7f000001:${p}/`],
    ['octal IPv4', (p: number) => `http://0177.0.0.1:${p}/`],
    ['short IPv4', (p: number) => `http://127.1:${p}/`],
    ['localhost with a trailing dot', (p: number) => `http://localhost.:${p}/`],
    ['uppercase LOCALHOST', (p: number) => `http://LOCALHOST:${p}/`],
    ['a .localhost subdomain', (p: number) => `http://api.localhost:${p}/`],
  ])('refuses a tool URL that maps to loopback through %s', async (_form, url) => {
    const before = listener.connections;
    const outcome = await run(new ToolRunner([tool(url(listener.port))]));
    expect(errorOf(outcome)).toMatch(/loopback|localhost/);
    expect(listener.connections).toBe(before);
    expect(listener.requests).toHaveLength(0);
  });

  it('reaches a loopback tool only when the operator allows private networks', async () => {
    const outcome = await run(new ToolRunner([tool(`http://[::ffff:127.0.0.1]:${listener.port}/hours`)], { allowPrivateNetwork: true }), { day: 'monday' });
    expect(outcome).toMatchObject({ kind: 'result', ok: true, status: 200, content: '{"ok":true}' });
    expect(listener.requests.at(-1)).toMatchObject({ method: 'POST', url: '/hours', body: '{"day":"monday"}' });
    listener.requests.length = 0;
  });

  it('refuses a tool URL with credentials in it', async () => {
    const outcome = await run(new ToolRunner([tool(`http://user:secret@127.0.0.1:${listener.port}/`)], { allowPrivateNetwork: true }));
    expect(errorOf(outcome)).toMatch(/credentials/);
    expect(listener.requests).toHaveLength(0);
  });
});
