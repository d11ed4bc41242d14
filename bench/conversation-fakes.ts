// The fake speech-to-text (Deepgram) and LLM (OpenAI) servers of the call benchmark's conversation mode, in
// a child process of the server's (bench/call-bench.ts forks it): the fake Deepgram decodes and segments
// every call's audio, which at 100 calls is real work that must not count as the server's CPU or delay its
// event loop. They answer with the latencies of the provider profile named by the first argument
// (bench/provider-profile.ts; `zero`: no added delay); the `cloud` profile adds a fake ElevenLabs voice.
import { performance } from 'node:perf_hooks';
import { startFakeDeepgram } from '../test/fakes/deepgram.js';
import { startFakeElevenLabs, type FakeElevenLabs } from '../test/fakes/elevenlabs.js';
import { startFakeOpenAi, type FakeOpenAiRequest } from '../test/fakes/openai.js';
import { loadUtterances } from './caller-common.js';
import { FAKE_KEYS, type FromFakes, type ToFakes } from './call-protocol.js';
import { LatencyDraw, parseProfile } from './provider-profile.js';

/** Two short sentences each (about 2.5 s with the test Piper voice), so a reply is long enough to talk over. */
const REPLIES = [
  'Of course, a table for two is no problem. What day would you like to come in?',
  'Tomorrow at seven works well for us. Is there anything else I can help you with?',
];

const send = (m: FromFakes): void => {
  process.send?.(m);
};

function lastUserText(request: FakeOpenAiRequest): string {
  const users = (request.messages as Array<{ role?: unknown; content?: unknown }>).filter((m) => m.role === 'user');
  const content = users.at(-1)?.content;
  return typeof content === 'string' ? content : '';
}

async function main(): Promise<void> {
  // The fake "hears" what the fixture says; which of the two it reports does not change the timing.
  const transcripts = loadUtterances().map((u) => u.text);
  const profile = parseProfile(process.argv[2]);
  const draw = new LatencyDraw();
  const deepgram = await startFakeDeepgram({
    apiKey: FAKE_KEYS.deepgram,
    transcripts,
    // A final never comes before the fake's own endpoint; after it, only what is left of the provider's delay.
    finalDelayMs: (f) => (f.fromFinalize ? draw.ms(profile.sttFinalizeMs) : Math.max(0, draw.ms(profile.sttFinalAfterSpeechMs) - f.afterSpeechMs)),
  });
  const openai = await startFakeOpenAi({
    apiKey: FAKE_KEYS.openai,
    respond: (request) => ({
      text: lastUserText(request).includes('table') ? REPLIES[0]! : REPLIES[1]!,
      firstTokenDelayMs: draw.ms(profile.llmFirstTokenMs),
      tokenDelayMs: draw.ms(profile.llmTokenMs),
    }),
  });
  const elevenlabs: FakeElevenLabs | null = profile.tts === 'elevenlabs' ? await startFakeElevenLabs({ apiKey: FAKE_KEYS.elevenlabs, firstByteDelayMs: () => draw.ms(profile.ttsFirstByteMs) }) : null;
  let cpuStart = process.cpuUsage();
  let wallStart = performance.now();
  let requestsStart = 0;
  let finalizesStart = 0;

  process.on('message', (m: ToFakes) => {
    switch (m.kind) {
      case 'window-start':
        cpuStart = process.cpuUsage();
        wallStart = performance.now();
        requestsStart = openai.requests.length;
        finalizesStart = deepgram.finalizes;
        break;
      case 'window-end': {
        const cpu = process.cpuUsage(cpuStart);
        const wallMs = performance.now() - wallStart;
        send({
          kind: 'window',
          window: {
            cpuPct: wallMs > 0 ? ((cpu.user + cpu.system) / 1000 / wallMs) * 100 : 0,
            llmRequests: openai.requests.length - requestsStart,
            finalizes: deepgram.finalizes - finalizesStart,
          },
        });
        break;
      }
      case 'close':
        void Promise.allSettled([deepgram.close(), openai.close(), elevenlabs?.close()]).then(() => process.exit(0));
        break;
      default: {
        const never: never = m;
        throw new Error(`unexpected message ${JSON.stringify(never)}`);
      }
    }
  });
  send({ kind: 'ready', deepgramUrl: deepgram.url, openaiBaseUrl: openai.baseUrl, elevenlabsUrl: elevenlabs?.url ?? null });
}

main().catch((err: unknown) => {
  send({ kind: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
});
// The server process is gone (crashed or killed): do not linger.
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group; the server process closes the fakes when it is done with them.
process.on('SIGINT', () => {});
