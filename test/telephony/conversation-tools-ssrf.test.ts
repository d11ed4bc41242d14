import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { fixture, startConversationRig, type ConversationRig } from './conversation-helpers.js';
import { startLoopbackListener, type LoopbackListener } from '../helpers/listeners.js';
import { agents } from '../../src/agents/agents.table.js';
import type { AgentTool } from '../../src/agents/agents.schemas.js';

// The rig without the operator's opt-out: tenants' tools may not reach loopback or private networks.
describe('an HTTP tool during a call, private networks not allowed', () => {
  let rig: ConversationRig;
  let internal: LoopbackListener;

  beforeAll(async () => {
    rig = await startConversationRig({ deepgram: { transcripts: ['What time do you open on Monday?'] }, allowPrivateTools: false });
    internal = await startLoopbackListener('127.0.0.1');
  }, 60_000);
  afterAll(async () => {
    await internal?.close();
    await rig?.close();
  });

  it('never lets the tool request reach a loopback listener through an IPv4-mapped address, and tells the model why', async () => {
    rig.openai.setRespond((req) => {
      const last = req.messages.at(-1) as { role: string };
      if (last.role === 'tool') return { text: 'Sorry, I cannot look that up right now.' };
      return { toolCalls: [{ name: 'get_hours', arguments: { day: 'monday' } }] };
    });
    const tool = { type: 'http', name: 'get_hours', description: 'Opening hours for a day', url: 'https://hours.example.test/hours', method: 'POST', timeoutMs: 2000, parameters: { type: 'object', properties: { day: { type: 'string' } } } };
    const agentId = await rig.createAgent({ tools: [tool] });
    // Saved before URLs were checked on save (or while the operator allowed private networks): only the
    // call-time check stands between this URL and the internal listener.
    const mapped = [{ ...tool, url: `http://[::ffff:127.0.0.1]:${internal.port}/admin` }] as AgentTool[];
    await rig.t.database.db.update(agents).set({ tools: mapped }).where(eq(agents.id, agentId));

    const { call, client } = await rig.dial(agentId);
    await client.speak(fixture('hello.ulaw'));
    const turns = await rig.waitForTurns(call.id, (ts) => ts.some((x) => x.role === 'assistant' && x.endedAt !== null), 12_000);

    expect(internal.connections).toBe(0);
    expect(internal.requests).toHaveLength(0);
    const toolMessage = rig.openai.requests.at(-1)!.messages.at(-1) as { role: string; content: string };
    expect(toolMessage.role).toBe('tool');
    expect(JSON.parse(toolMessage.content)).toEqual({ error: expect.stringMatching(/127\.0\.0\.1.*loopback/) });
    expect(turns.find((x) => x.role === 'tool')).toMatchObject({ kind: 'tool_call', detail: { name: 'get_hours', ok: false } });
    expect(turns.find((x) => x.role === 'assistant')!.text).toBe('Sorry, I cannot look that up right now.');
    client.stop();
    await client.closed;
  }, 30_000);
});
