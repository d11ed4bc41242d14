import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Backends } from './api-server.js';
import { KIND_LABELS, REQUEST_KINDS, type RequestKind } from './load-protocol.js';
import { machineLine, type Machine } from './machine.js';
import type { LatencySummary, Percentiles } from './stats.js';

/** ARCHITECTURE.md §9: "API p99 at 500 req/s while 50 calls are live <= 50 ms". */
export const API_BUDGET = { rate: 500, p99Ms: 50, liveCalls: 50 } as const;
/** ARCHITECTURE.md §9: "main-thread event-loop delay under 50 calls p99 <= 10 ms". */
export const EVENT_LOOP_BUDGET = { p99Ms: 10 } as const;

/** Everything one API run measured. */
export interface ApiRun {
  /** Target rate, requests per second. */
  rate: number;
  /** Responses per second over the measured window. */
  achievedRate: number;
  warmupS: number;
  durationS: number;
  agentsSeeded: number;
  requests: number;
  errors: number;
  errorsBy: Record<string, number>;
  latencyMs: Percentiles;
  byRoute: Record<RequestKind, LatencySummary>;
  /** Server (main) thread only. */
  eventLoopDelayMs: { p99: number; max: number };
  /** Share of the measured window the server thread was busy, 0-1. */
  eventLoopUtilization: number;
  /** Generator lateness, already included in the latencies. */
  sendLagMs: { mean: number; max: number };
  interrupted: boolean;
}

/** A finished benchmark run with its context. */
export interface BenchReport {
  date: string;
  command: string;
  api: ApiRun;
  backends: Backends;
  machine: Machine;
}

/** The `--json` object: the figures, the backends and the machine, nothing else. */
export function toJson(r: BenchReport): object {
  const a = r.api;
  return {
    api: {
      rate: a.rate,
      achievedRate: a.achievedRate,
      durationS: a.durationS,
      requests: a.requests,
      errors: a.errors,
      latencyMs: a.latencyMs,
      eventLoopDelayMs: { p99: a.eventLoopDelayMs.p99 },
      byRoute: Object.fromEntries(REQUEST_KINDS.map((k) => [KIND_LABELS[k], a.byRoute[k]])),
    },
    backends: r.backends,
    machine: r.machine,
  };
}

/** "PostgreSQL + BullMQ/Redis" and the like. */
export function backendsLabel(b: Backends): string {
  const db = b.database === 'pglite' ? 'PGlite (embedded)' : 'PostgreSQL';
  const queue = b.queue === 'bullmq' ? 'BullMQ on Redis' : 'in-process queue';
  const limits = b.rateLimiter === 'redis' ? 'rate limits in Redis' : 'rate limits in memory';
  return `${db}, ${queue}, ${limits}`;
}

const fmt = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');

function rows(a: ApiRun): Array<[string, LatencySummary]> {
  return [['all', { requests: a.requests, errors: a.errors, latencyMs: a.latencyMs }], ...REQUEST_KINDS.map((k): [string, LatencySummary] => [KIND_LABELS[k], a.byRoute[k]])];
}

/** What the API figure means against the budget, in one sentence. */
export function budgetVerdict(a: ApiRun): string {
  const caveat = 'no calls are live during this run (the call benchmark measures calls on their own), so this is the API-only figure';
  if (a.interrupted) return `run interrupted; not compared with the budget (${caveat})`;
  if (a.rate !== API_BUDGET.rate) {
    return `budget is stated at ${API_BUDGET.rate} req/s; this run used ${a.rate} req/s, so it is not a budget check (${caveat})`;
  }
  const within = a.latencyMs.p99 <= API_BUDGET.p99Ms && a.errors === 0;
  const verdict = within ? 'within budget' : a.errors > 0 ? `${a.errors} errors: not a pass whatever the latency` : 'OVER budget';
  return `p99 ${fmt(a.latencyMs.p99)} ms vs budget <= ${API_BUDGET.p99Ms} ms at ${API_BUDGET.rate} req/s with ${API_BUDGET.liveCalls} live calls: ${verdict}; ${caveat}`;
}

/** A warning when the server could not keep up, else null: then the latencies are mostly queueing. */
export function saturationNote(a: ApiRun): string | null {
  if (a.interrupted || a.achievedRate >= a.rate * 0.97) return null;
  return (
    `the server could not sustain ${a.rate} req/s (it answered ${a.achievedRate.toFixed(1)} req/s with its thread ` +
    `${(a.eventLoopUtilization * 100).toFixed(0)} % busy), so requests queued for the whole run and the latencies are mostly that queue`
  );
}

/** The human-readable result, for stdout. */
export function humanReport(r: BenchReport): string {
  const a = r.api;
  const head = ['', 'requests', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'];
  const body = rows(a).map(([name, s]) => [name, String(s.requests), String(s.errors), fmt(s.latencyMs.p50), fmt(s.latencyMs.p95), fmt(s.latencyMs.p99), fmt(s.latencyMs.max)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const errorsBy = Object.entries(a.errorsBy).map(([k, v]) => `${k}: ${v}`).join(', ');
  return [
    `Vocelio API benchmark${a.interrupted ? ' (INTERRUPTED: partial figures)' : ''}`,
    `backends:  ${backendsLabel(r.backends)}`,
    `machine:   ${machineLine(r.machine)}`,
    `load:      open loop, ${a.rate} req/s for ${a.durationS} s after ${a.warmupS} s warm-up; ${a.agentsSeeded} agents seeded`,
    '',
    line(head),
    ...body.map(line),
    '',
    `achieved rate:            ${a.achievedRate.toFixed(1)} req/s`,
    `errors:                   ${a.errors}${errorsBy ? ` (${errorsBy})` : ''}`,
    `event-loop delay (server thread): p99 ${fmt(a.eventLoopDelayMs.p99)} ms, max ${fmt(a.eventLoopDelayMs.max)} ms`,
    `server thread busy:       ${(a.eventLoopUtilization * 100).toFixed(0)} % (event-loop utilization)`,
    `generator send lag:       mean ${fmt(a.sendLagMs.mean)} ms, max ${fmt(a.sendLagMs.max)} ms (included in latencies)`,
    '',
    ...(saturationNote(a) ? [`SATURATED: ${saturationNote(a)}.`] : []),
    `budget: ${budgetVerdict(a)}`,
  ].join('\n');
}

/** Identifies a run's configuration; `--write` replaces the section with the same key. */
export function sectionKey(r: BenchReport): string {
  return `api:${r.backends.database}:${r.backends.queue}:${r.api.rate}`;
}

/** The BENCHMARKS.md section of one run. */
export function markdownSection(r: BenchReport): string {
  const a = r.api;
  const key = sectionKey(r);
  const table = [
    '| requests | count | errors | p50 ms | p95 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows(a).map(([name, s]) => `| ${name === 'all' ? '**all**' : `\`${name}\``} | ${s.requests} | ${s.errors} | ${fmt(s.latencyMs.p50)} | ${fmt(s.latencyMs.p95)} | ${fmt(s.latencyMs.p99)} | ${fmt(s.latencyMs.max)} |`),
  ];
  const eldWithin = a.eventLoopDelayMs.p99 <= EVENT_LOOP_BUDGET.p99Ms;
  return [
    `<!-- bench:${key} -->`,
    `## API at ${a.rate} req/s: ${backendsLabel(r.backends)}`,
    '',
    `- Date: ${r.date}`,
    `- Command: \`${r.command}\``,
    `- Machine: ${machineLine(r.machine)}`,
    `- Backends: ${r.backends.databaseDetail}; queue ${r.backends.queue}; rate limiter ${r.backends.rateLimiter}` +
      `${r.backends.consumersInProcess ? '; job consumers in the same process (embedded serve)' : ''}`,
    `- Load: open loop, ${a.rate} req/s for ${a.durationS} s after a ${a.warmupS} s warm-up, ${a.agentsSeeded} agents seeded; ` +
      `achieved ${a.achievedRate.toFixed(1)} req/s, ${a.errors} errors`,
    '',
    ...table,
    '',
    `| figure | measured | budget (ARCHITECTURE.md §9) |`,
    '|---|---:|---|',
    `| API p99 | ${fmt(a.latencyMs.p99)} ms | <= ${API_BUDGET.p99Ms} ms at ${API_BUDGET.rate} req/s while ${API_BUDGET.liveCalls} calls are live |`,
    `| server thread event-loop delay p99 (max) | ${fmt(a.eventLoopDelayMs.p99)} ms (${fmt(a.eventLoopDelayMs.max)} ms) | <= ${EVENT_LOOP_BUDGET.p99Ms} ms under 50 calls${eldWithin ? '' : ' (exceeded by the API alone)'} |`,
    `| server thread busy (event-loop utilization) | ${(a.eventLoopUtilization * 100).toFixed(0)} % | - |`,
    `| generator send lag, mean / max (inside the latencies) | ${fmt(a.sendLagMs.mean)} / ${fmt(a.sendLagMs.max)} ms | - |`,
    '',
    ...(saturationNote(a) ? [`**Saturated:** ${saturationNote(a)}.`, ''] : []),
    `Budget: ${budgetVerdict(a)}.`,
    `<!-- /bench:${key} -->`,
  ].join('\n');
}

const INTRO = `# Benchmarks

Measured figures for the budgets in \`ARCHITECTURE.md\` §9. They depend on the machine: compare runs
of the same machine only, and look at the machine line of each section.

## How to run

\`\`\`sh
npm run bench                                   # calls: 1, 10, 50, 100 concurrent calls with a conversation agent (fake providers), then a
                                                #   50-call echo level, Piper's real-time factor and the ElevenLabs SDK check (embedded: PGlite + in-process queue)
npm run bench -- --calls 50 --json              # one level (and its echo level); one JSON object on stdout (use \`npm run -s\` to drop npm's banner)
npm run bench -- --echo                         # echo agents only: the call benchmark as it was before the conversation engine
npm run bench -- --workers 2 --duration 60      # media worker threads (default cores - 1), seconds measured per level (default 20)
npm run bench -- --stagger 1000                 # callers start over 1 s instead of 5 s, so their turns come in bursts (default 5000; echo 1000)
npm run bench -- --api                          # the HTTP API under open-loop load (default 500 req/s for 10 s)
npm run bench -- --api --rate 1000 --duration 30
DATABASE_URL=postgres://... REDIS_URL=redis://... npm run bench   # PostgreSQL + BullMQ/Redis, either benchmark
npm run bench -- --write                        # also record the run in this file (either benchmark)
\`\`\`

Progress goes to stderr; stdout carries only the result. Both benchmarks build the real app in-process the
way \`vocelio serve\` does (migrations, bootstrap of an organization and owner key, job consumers when
embedded) and listen on 127.0.0.1. With \`DATABASE_URL\` each server gets a scratch database
\`vocelio_bench_<random>\` on that server, dropped at the end, so the database named in the URL is never
written. With \`REDIS_URL\` the only keys left behind are rate-limit counters, which expire within about a
minute. \`--write\` replaces the section of the same kind (backends and rate; agents, backends, levels, worker
count and a non-default stagger), or appends a new one. API sections recorded before the call benchmark
existed show \`npm run bench -- --write\`; that command is now \`npm run bench -- --api --write\`. Echo-mode call
sections recorded before the conversation benchmark existed show \`npm run bench -- --write\` too; that
command is now \`npm run bench -- --echo --write\`.

### The call benchmark (default)

\`bench/call-bench.ts\` runs each level on a **fresh server** (its own database, worker pool and sockets, in
the same process) with a real \`MediaWorkerPool\` (cores - 1 threads unless \`--workers\`), Silero VAD, and one
agent. The server process creates N calls and N single-use stream tokens, then forks the **callers as a
child process** (\`bench/call-callers.ts\`). A child process rather than a worker thread, because CPU time
(\`process.cpuUsage\`) and RSS are per process: callers in the same process would count as server CPU and
memory, and their 20 ms timers would share its event loop. The callers still share the machine's cores
with the server, so their CPU use and own event-loop delay are reported alongside.

**Conversation agents (the default).** The agent has \`voice: { provider: 'piper', voiceId: 'test-voice' }\`,
\`stt: deepgram\`, \`llm: openai\`, and the server is configured (\`DEEPGRAM_API_KEY\`/\`DEEPGRAM_BASE_URL\`,
\`OPENAI_API_KEY\`/\`OPENAI_BASE_URL\`) to reach the fake Deepgram and OpenAI servers of the tests
(\`test/fakes/deepgram.ts\`, \`test/fakes/openai.ts\`) through the real SDKs. The fakes run in **a third
process** (\`bench/conversation-fakes.ts\`): the fake Deepgram decodes and segments every call's audio, which
at 100 calls is real work that must not count as the server's CPU or delay its event loop; its CPU is
reported as "fake providers process". Both answer with **zero added delay**: the transcript of each
utterance when its speech ends (or at once on \`Finalize\`), and two short sentences per turn from the
model (about 2 s of audio). Piper runs in the media workers on the **test voice**
(\`test/fakes/piper-model.ts\`, written to a temp voices dir): a tiny ONNX graph with Piper's signature that
renders a tone, so synthesis measures our own path (phonemes, ids, inference call, resampling, mu-law,
transfer), not a real VITS model. The conversation engine runs unchanged: STT stream per call, turn
detection (VAD end of speech + STT final), LLM streaming, sentence chunking, Piper per sentence, the paced
outbound queue with a mark per sentence, barge-in, and turn and usage records written to the database.

Each caller is Twilio's side of one Media Stream (\`src/simulator/twilio-stream-client.ts\`, connected to
\`/twilio/media\` with its own token; it plays what it receives in real time and echoes each mark when its
playback reaches it, as Twilio does) and sends a 20 ms mu-law frame every 20 ms on its own clock. It says
one of the two sentences of \`test/fixtures/audio/two-utterances.ulaw\` (cut in the pause between them; each
about 2 s of speech in about 3 s of audio), keeps sending silence while the agent answers, and once its
playback has reached the reply's last mark it waits 300 ms and says the other sentence. **Every other
reply is talked over**: 500 ms after that reply's first frame arrived, the caller starts its next
sentence (speech from its first frame), so VAD sees speech over the agent and the server must send
\`clear\`; that sentence is then answered like any other. A call thus has a turn every 4-6 s. Callers start
at evenly spread offsets over 5 s, about one turn cycle (caller *i* at *5i/N* s), so the calls' turns fall
at independent moments as real calls' do; with \`--stagger 1000\` all calls end their speech within the
same second of every cycle, a burst the server then queues (see the notes). Measuring starts once every
caller is streaming and lasts \`--duration\` seconds.

After the conversation levels, a conversation run measures three more things, each once: a 10 s **echo
level** at 50 calls (or at \`--calls N\`) on a fresh server, for \`echoOverheadMs\` (a level of its own rather
than echo calls mixed into the conversation levels, which would change the load those measure); **Piper's
real-time factor** on the test voice (\`bench/piper-bench.ts\`: one worker, no calls, 5 sentences 3 times)
as \`piperRtf\`; and the **ElevenLabs SDK's overhead** against plain \`fetch\` (\`bench/elevenlabs-sdk-bench.ts\`,
local fake, 50 requests each) as \`elevenLabsSdk\`, for information (no budget).

**Echo agents (\`--echo\`).** The agent has \`voice: echo\`: each caller utterance is played back once VAD ends
it. The callers say the same sentences, wait 300 ms after the echo's mark and never talk over it; they
start over 1 s. Echo mode replays the caller's frames byte for byte, so every echoed frame is checked
against what the caller said.

What each figure means:

- **overhead** (\`overheadMs\`; conversation): \`app.callLatencies.turnOverheadMs\`, reset at the start of the
  window: from the instant the media worker's VAD decided the caller's speech had ended (the turn's end of
  speech) to the instant the main thread sent the answer's first audio frame, **minus provider time**: the
  wait for the STT's final transcript after the end of speech (0 when it came first), the LLM's time from
  request to the first complete sentence, and TTS's time from request to first audio (Piper, in the
  worker). What is left is our own: thread hops, turn detection, prompt and history, the sentence chunker,
  the hand-off to the pacer and the first send, and any time these waited for the main thread. Slower real
  providers would not change it except through load, since their time is subtracted.
- **response** (\`responseMs\`; conversation): the same without subtracting provider time, with zero-delay
  fakes: local round trips through the SDKs, Piper's first audio and our overhead.
- **barge-in** (\`bargeInMs\`): \`app.callLatencies.bargeInMs\`: from the instant VAD decided the caller had
  started speaking (after the agent's \`interruption.minSpeechMs\`, default 200 ms of speech) to the instant
  the main thread sent \`clear\`. ARCHITECTURE.md states the budget as "speech onset -> clear <= VAD onset +
  50 ms", so this figure's p95 is held to 50 ms. "talked-over replies: cleared / attempted" counts, on the
  callers' side, the replies they talked over and those that a \`clear\` stopped.
- **echo overhead** (\`echoOverheadMs\`; echo): from VAD's end-of-speech decision to the first echoed frame
  sent (\`app.callLatencies.echoOverheadMs\`): the thread hop, the session's handling and the first send.
- **server event-loop delay**: \`monitorEventLoopDelay\` on the server's main thread (10 ms resolution, the
  resolution itself subtracted), over the measured window. The media workers, the callers and the fakes
  do not count.
- **media worker lag**: each worker's own event-loop delay p99 over the last second, as the pool reports
  it (\`stats().maxLagP99Ms\`, worst worker), sampled every second; the worst second and the mean. The pool
  gives no new calls to a worker above 20 ms while another is under it (with one worker there is no other).
- **CPU per call**: (server process CPU over the window - the same server's CPU while idle) / N, in % of
  one core. The server process is the main thread, the media workers and the native threads.
- **memory per call**: (mean RSS during the window - idle RSS) / N, the idle RSS being the mean of the
  figures taken before the calls connected and after they hung up, which cancels a steady drift. The
  process's RSS moves by tens of MB on its own (it keeps giving memory back for a while after start-up), so
  below about 10 calls the figure is noise. "main heap" is the main thread's JS heap after a forced GC,
  with the calls live vs idle.
- **VAD cost**: the media workers' busy time (their event-loop utilization, read from the parent) per
  caller frame processed, over the window; in echo mode nearly all of it is Silero. In conversation mode
  the workers also run Piper, so the worker-measured synthesis time of the sentences completed in the
  window (the pool's \`ttsTotals\`) is subtracted first; sentences cut by a barge-in are not, so the figure
  is an estimate (synthesis time is wall-clock in the worker: it leaves out sentences cut by a barge-in,
  but takes in VAD frames handled between two sentences; shown as "-" when it exceeds the busy time, as on
  a saturated machine). \`--echo\` measures VAD alone. "per 32 ms window" is that x 1.6 (a 20 ms frame is
  0.625 of a Silero window at 8 kHz). The pool's own \`stats().vadMeanMs\` is shown too, as "VAD push ->
  result": it times each frame from push to result, so it includes waiting behind other calls' windows
  (and Piper) on the same worker and grows with load; it is a latency, not a cost.
- **Piper in the calls**: sentences synthesized to the end in the window and their real-time factor
  (worker-measured synthesis time / audio duration). \`piperRtf\` is the same on an idle worker.
- **late frames** (\`lateFrames\`): the callers play each reply in real time from its first frame, so frame
  *k* of a reply plays *20 k* ms after the first arrived; a frame that arrives after its play-out time is
  late (a real caller hears a gap). The server sends up to 100 ms ahead of real time, so a frame is late
  only if a stall ate that lead. Also shown: inter-arrival gaps over 60 ms within a reply, and the largest
  gap (a conversation reply is several sentences, each synthesized separately, so a gap between
  sentences counts too).
- **dropped frames** (\`droppedFrames\`): inbound frames the callers sent that the server's sessions never
  counted ("inbound lost"), plus, in echo mode, frames missing between two echoed frames that did arrive
  (the reply jumps ahead in the utterance); "corrupt" = echoed frames that match nothing the caller said or
  arrive out of order.
- **replies**: utterances spoken to the end; replies heard to the end (echo: their mark arrived;
  conversation: playback reached their last mark); utterances still without any reply 10 s after they
  ended (missed); replies that started before the utterance's last speech frame was even sent (VAD ended
  the turn at a pause: split); \`clear\` messages received. Echo mode also counts complete replies lacking
  more than 100 ms of the utterance's speech at either end (short). Missed, split, short and (echo) clears
  should all be 0.
- **caller-heard turn**: the caller's view, from sending its last speech frame to receiving the first
  reply frame; it includes the 400 ms of silence VAD waits for before ending a turn, and the VAD window.
- **fake providers process**: the CPU of the fakes' process over the window, and the chat requests the
  fake OpenAI answered.
- **other work on the machine**: CPU time of all cores over the window minus the server's, the callers'
  and the fakes' (\`os.cpus()\`), and the 1-minute load average. With \`DATABASE_URL\` and \`REDIS_URL\`,
  PostgreSQL's and Redis's work lands here too. Above 15 % of a core the level is flagged as possibly
  disturbed; rerun it on a quiet machine.

\`--json\` prints, for one level, that level's object; for the sweep, \`{ runs: [...] }\`; either with
\`echoOverheadMs\` (from the echo level, its details under \`echo\`), \`piperRtf\` (details under \`piper\`),
\`elevenLabsSdk\`, and the date, command, backends and machine. A conversation level's headline fields are
\`overheadMs\`, \`responseMs\` and \`bargeInMs\` (\`{p50, p95, p99, max, samples}\`), \`eventLoopDelayMs.p99\`,
\`cpuPerCallPct\`, \`memPerCallMb\`, \`vadFrameMs\`/\`vadWindowMs\`, \`droppedFrames\` and \`lateFrames\`; an echo
level has \`echoOverheadMs\` where a conversation level has \`overheadMs\`. Before the conversation engine,
\`overheadMs\` was the echo figure; it is now the conversation overhead.

### The API benchmark (\`--api\`)

\`bench/api-bench.ts\` seeds 50 agents, then a worker thread drives the app over real keep-alive HTTP
connections with an **open-loop** generator: request *i* is due at *start + i/rate* whatever the server
does, and its latency runs from that due time, so a stalled server shows up as latency instead of as fewer
requests (no coordinated omission). The mix is 80 % \`GET /v1/agents?limit=20\`, 10 % \`GET /v1/agents/:id\`,
10 % \`POST /v1/agents\`, all with the owner's API key. The first 2 s are warm-up and not counted. Any
non-2xx, network error or timeout is an error. Event-loop delay is measured on the server's thread only
(\`monitorEventLoopDelay\`, 10 ms resolution, the resolution itself subtracted); the generator's thread does
not count. No media worker pool is started and no calls are live.
`;

/** Adds or replaces this run's section in the BENCHMARKS.md at `path` (created with an intro if absent). */
export function writeBenchmarks(path: string, r: BenchReport): void {
  writeSection(path, sectionKey(r), markdownSection(r));
}

/**
 * Replaces the section between `<!-- bench:<key> -->` and `<!-- /bench:<key> -->` in the BENCHMARKS.md at
 * `path` with `section` (which carries those markers), or appends it; creates the file with an intro if absent.
 */
export function writeSection(path: string, key: string, section: string): void {
  let text = existsSync(path) ? readFileSync(path, 'utf8') : INTRO;
  const start = text.indexOf(`<!-- bench:${key} -->`);
  const endMarker = `<!-- /bench:${key} -->`;
  const end = text.indexOf(endMarker);
  if (start >= 0 && end > start) {
    text = text.slice(0, start) + section + text.slice(end + endMarker.length);
  } else {
    text = `${text.trimEnd()}\n\n${section}\n`;
  }
  writeFileSync(path, text);
}
