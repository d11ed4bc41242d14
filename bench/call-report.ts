import type { Backends } from './api-server.js';
import type { CallRun, Samples } from './call-bench.js';
import type { CallMode } from './call-protocol.js';
import type { ElevenLabsSdkOverhead } from './elevenlabs-sdk-bench.js';
import { machineLine, type Machine } from './machine.js';
import type { PiperBenchResult } from './piper-bench.js';
import { backendsLabel } from './report.js';

/** ARCHITECTURE.md §9, the budgets the call benchmark checks. */
export const CALL_BUDGETS = {
  /** Our own overhead, end of speech -> first outbound frame, provider time excluded, 50 concurrent calls, 2 cores: p95. */
  overheadP95Ms: 15,
  /** Main-thread event-loop delay under 50 calls: p99. */
  eventLoopP99Ms: 10,
  /** Barge-in, caller speech onset -> `clear` sent: p95 <= VAD onset + 50 ms (measured from VAD's onset decision). */
  bargeInP95Ms: 50,
  /** Silero VAD per 32 ms window, 1 thread: mean. */
  vadWindowMs: 0.2,
  /** Memory per active call. */
  memPerCallMb: 8,
  /** The load the overhead, event-loop and memory budgets are stated at. */
  calls: 50,
} as const;

/** A finished call benchmark: one run per level, plus the side measurements of a conversation run. */
export interface CallReport {
  mode: CallMode;
  date: string;
  command: string;
  runs: CallRun[];
  /** Conversation mode: the short echo-mode level run after the conversation levels (`echoOverheadMs`). */
  echo: CallRun | null;
  /** Piper's real-time factor on the test voice (bench/piper-bench.ts), measured after the levels. */
  piper: PiperBenchResult | null;
  /** ElevenLabs SDK vs plain fetch, time to first byte against the local fake (bench/elevenlabs-sdk-bench.ts). */
  elevenLabs: ElevenLabsSdkOverhead | null;
  backends: Backends;
  machine: Machine;
  /** True when `--workers` was not given and the pool chose its size (cores - 1). */
  defaultWorkers: boolean;
  /** True when `--stagger` was not given (the mode's default start window). */
  defaultStagger: boolean;
}

/** Other processes' CPU (% of one core) above which a level's figures are flagged as possibly disturbed. */
const OTHER_WORK_WARN_PCT = 15;

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const pct = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(1)} %` : '-');
const p3 = (s: Samples) => ({ p50: s.p50, p95: s.p95, p99: s.p99 });
const round4 = (n: number): number => Math.round(n * 10_000) / 10_000;

/** The `--json` object of one run: the figures the issues ask for at the top level, details below them. */
export function runJson(r: CallRun): object {
  const headline =
    r.mode === 'conversation'
      ? {
          profile: r.profile,
          turn: r.turn,
          callerWaitMs: p3(r.callerWaitMs),
          callerWaitServerMs: p3(r.callerWaitServerMs),
          callerWaitPartsMs: r.callerWaitParts,
          overheadMs: p3(r.overheadMs),
          responseMs: p3(r.responseMs),
          bargeInMs: { p50: r.bargeInMs.p50, p95: r.bargeInMs.p95, p99: r.bargeInMs.p99, max: r.bargeInMs.max, samples: r.bargeInMs.samples },
        }
      : { echoOverheadMs: p3(r.echoOverheadMs) };
  return {
    mode: r.mode,
    calls: r.calls,
    ...headline,
    eventLoopDelayMs: { p99: r.eventLoopDelayMs.p99 },
    cpuPerCallPct: r.cpu.perCallPct,
    memPerCallMb: r.memory.rssPerCallMb,
    vadFrameMs: r.vad.frameMs,
    vadWindowMs: r.vad.windowMs,
    droppedFrames: r.frames.dropped + Math.max(0, r.frames.inboundLost),
    lateFrames: r.frames.late,
    workers: r.workers,
    durationS: r.durationS,
    liveCalls: r.liveCalls,
    ...(r.mode === 'conversation'
      ? { callerWaitDetailMs: r.callerWaitMs, callerWaitServerDetailMs: r.callerWaitServerMs, overheadDetailMs: r.overheadMs, responseDetailMs: r.responseMs, tts: r.tts, fakes: r.fakes }
      : { echoOverheadDetailMs: r.echoOverheadMs, bargeIns: r.bargeInMs.samples }),
    eventLoopDelayDetailMs: r.eventLoopDelayMs,
    eventLoopUtilization: r.eventLoopUtilization,
    workerLagMs: r.workerLagMs,
    cpu: r.cpu,
    memory: r.memory,
    vad: r.vad,
    frames: r.frames,
    replies: r.replies,
    turnLatencyMs: r.turnLatencyMs,
    loadAverage: r.loadAverage,
    callers: r.callers,
    interrupted: r.interrupted,
  };
}

/**
 * `--json`: the run itself for one level, `{ runs: [...] }` for the sweep; both with the context. A
 * conversation run adds `echoOverheadMs` (from its echo level, details under `echo`), `piperRtf` and,
 * when measured, `elevenLabsSdk`.
 */
export function callJson(r: CallReport, single: boolean): object {
  const context = { date: r.date, command: r.command, backends: r.backends, machine: r.machine };
  const extras = {
    ...(r.echo ? { echoOverheadMs: p3(r.echo.echoOverheadMs), echo: runJson(r.echo) } : {}),
    ...(r.piper ? { piperRtf: round4(r.piper.rtf), piper: r.piper } : {}),
    ...(r.elevenLabs ? { elevenLabsSdk: r.elevenLabs } : {}),
  };
  if (single && r.runs.length === 1) return { ...runJson(r.runs[0]!), ...extras, ...context };
  return { runs: r.runs.map(runJson), ...extras, ...context };
}

type Row = { label: string; cells: string[]; budget: string };

function callerWaitPartsCell(r: CallRun): string {
  const p = r.callerWaitParts;
  if (!p) return '-';
  return `${fmt(p.endOfTurnMs.p50, 0)} (${fmt(p.sttFinalMs.p50, 0)}) + ${fmt(p.llmFirstTokenMs.p50, 0)} + ${fmt(p.firstChunkMs.p50, 0)} + ${fmt(p.ttsFirstByteMs.p50, 0)} + ${fmt(p.overheadMs.p50, 1)}`;
}

/** The rows both the terminal and BENCHMARKS.md show, one cell per level. */
function rows(runs: CallRun[], mode: CallMode): Row[] {
  const row = (label: string, budget: string, cell: (r: CallRun) => string): Row => ({ label, budget, cells: runs.map(cell) });
  const pcts = (s: Samples) => `${fmt(s.p50)} / ${fmt(s.p95)} / ${fmt(s.p99)}`;
  const overheadBudget = `p95 <= ${CALL_BUDGETS.overheadP95Ms} ms at ${CALL_BUDGETS.calls} calls`;
  const latency =
    mode === 'conversation'
      ? [
          row('caller wait p50 / p95 / p99 ms (caller: last voiced frame sent -> first reply frame)', '', (r) => `${pcts(r.callerWaitMs)} (${r.callerWaitMs.samples})`),
          row('caller wait p50 / p95 / p99 ms (server: last voiced frame in -> first frame out)', '', (r) => `${pcts(r.callerWaitServerMs)} (${r.callerWaitServerMs.samples})`),
          row('caller wait parts p50 ms: end of turn (of it STT final) + LLM first token + first chunk + TTS first byte + ours', '', (r) => callerWaitPartsCell(r)),
          row('overhead p50 / p95 / p99 ms (ours, provider time excluded)', overheadBudget, (r) => pcts(r.overheadMs)),
          row('overhead max ms (turns answered)', '', (r) => `${fmt(r.overheadMs.max)} (${r.overheadMs.samples})`),
          row('response p50 / p95 / p99 ms (VAD end of speech -> first frame, providers included)', '', (r) => pcts(r.responseMs)),
          row('barge-in p50 / p95 ms, max (samples)', `p95 <= ${CALL_BUDGETS.bargeInP95Ms} ms after VAD onset`, (r) => `${fmt(r.bargeInMs.p50)} / ${fmt(r.bargeInMs.p95)}, ${fmt(r.bargeInMs.max)} (${r.bargeInMs.samples})`),
        ]
      : [
          row('echo overhead p50 / p95 / p99 ms', overheadBudget, (r) => pcts(r.echoOverheadMs)),
          row('echo overhead max ms (samples)', '', (r) => `${fmt(r.echoOverheadMs.max)} (${r.echoOverheadMs.samples})`),
        ];
  const server = [
    row('server event-loop delay p99 (max) ms', `p99 <= ${CALL_BUDGETS.eventLoopP99Ms} ms under ${CALL_BUDGETS.calls} calls`, (r) => `${fmt(r.eventLoopDelayMs.p99)} (${fmt(r.eventLoopDelayMs.max)})`),
    row('server main thread busy (ELU)', '', (r) => pct(r.eventLoopUtilization * 100)),
    row('media worker lag p99 ms, worst second (mean)', '', (r) => `${fmt(r.workerLagMs.max)} (${fmt(r.workerLagMs.mean)})`),
    row('CPU per call, % of one core', '', (r) => pct(r.cpu.perCallPct)),
    row('server process CPU (idle before calls)', '', (r) => `${pct(r.cpu.serverPct)} (${pct(r.cpu.idlePct)})`),
    row('memory per call MB: RSS (main heap)', `<= ${CALL_BUDGETS.memPerCallMb} MB`, (r) => `${fmt(r.memory.rssPerCallMb)} (${fmt(r.memory.heapPerCallMb)})`),
    row('server RSS MB: idle -> mean, peak during', '', (r) => `${fmt(r.memory.rssIdleMb, 0)} -> ${fmt(r.memory.rssMb, 0)}, ${fmt(r.memory.rssPeakMb, 0)}`),
  ];
  const vadBudget = `<= ${CALL_BUDGETS.vadWindowMs} ms per window, 1 thread`;
  const media =
    mode === 'conversation'
      ? [
          row('VAD cost per 20 ms frame ms (per 32 ms window), Piper time subtracted', vadBudget, (r) => `${fmt(r.vad.frameMs, 3)} (${fmt(r.vad.windowMs, 3)})`),
          row('Piper in the calls: sentences, RTF', '', (r) => `${r.tts.sentences}, ${fmt(r.tts.rtf, 4)}`),
          row('media workers busy; VAD push -> result ms (pool figure)', '', (r) => `${pct(r.vad.workerBusyPct)}; ${fmt(r.vad.pushLatencyMs, 3)}`),
          row('agent frames: received / late', '', (r) => `${r.frames.received} / ${r.frames.late}`),
          row('agent frames: gaps > 60 ms, max gap ms', '', (r) => `${r.frames.gapsOver60Ms}, ${fmt(r.frames.maxGapMs, 1)}`),
          row('inbound frames: sent / lost before the session', '', (r) => `${r.frames.sentByCallers} / ${r.frames.inboundLost}`),
          row('utterances / replies heard / missed / split / clears', '', (r) => `${r.replies.utterances} / ${r.replies.complete} / ${r.replies.missed} / ${r.replies.split} / ${r.replies.clears}`),
          row('replies talked over: cleared / attempted', '', (r) => `${r.replies.bargeInsCleared} / ${r.replies.bargeInsAttempted}`),
          row('caller-heard turn p50 / p95 ms (incl. 400 ms VAD silence)', '', (r) => `${fmt(r.turnLatencyMs.p50, 0)} / ${fmt(r.turnLatencyMs.p95, 0)}`),
          row('caller process: CPU, event-loop p99 ms, send lag max ms', '', (r) => `${pct(r.cpu.callersPct)}, ${fmt(r.callers.eventLoopDelayP99Ms)}, ${fmt(r.callers.sendLagMs.max)}`),
          row('fake providers process: CPU; LLM requests', '', (r) => `${pct(r.cpu.fakesPct)}; ${r.fakes?.llmRequests ?? '-'}`),
        ]
      : [
          row('VAD cost per 20 ms frame ms (per 32 ms window)', vadBudget, (r) => `${fmt(r.vad.frameMs, 3)} (${fmt(r.vad.windowMs, 3)})`),
          row('media workers busy; VAD push -> result ms (pool figure)', '', (r) => `${pct(r.vad.workerBusyPct)}; ${fmt(r.vad.pushLatencyMs, 3)}`),
          row('echoed frames: received / dropped / late', '', (r) => `${r.frames.received} / ${r.frames.dropped} / ${r.frames.late}`),
          row('echoed frames: gaps > 60 ms, max gap ms, corrupt', '', (r) => `${r.frames.gapsOver60Ms}, ${fmt(r.frames.maxGapMs, 1)}, ${r.frames.corrupt}`),
          row('inbound frames: sent / lost before the session', '', (r) => `${r.frames.sentByCallers} / ${r.frames.inboundLost}`),
          row('utterances / replies / missed / short / split / clears', '', (r) => `${r.replies.utterances} / ${r.replies.complete} / ${r.replies.missed} / ${r.replies.short} / ${r.replies.split} / ${r.replies.clears}`),
          row('caller-heard turn p50 / p95 ms (incl. 400 ms VAD silence)', '', (r) => `${fmt(r.turnLatencyMs.p50, 0)} / ${fmt(r.turnLatencyMs.p95, 0)}`),
          row('caller process: CPU, event-loop p99 ms, send lag max ms', '', (r) => `${pct(r.cpu.callersPct)}, ${fmt(r.callers.eventLoopDelayP99Ms)}, ${fmt(r.callers.sendLagMs.max)}`),
        ];
  return [
    ...latency,
    ...server,
    ...media,
    row('other work on the machine: CPU; load average start -> end', '', (r) => `${pct(r.cpu.otherPct)}; ${fmt(r.loadAverage.before)} -> ${fmt(r.loadAverage.after)}`),
  ];
}

const levelLabel = (r: CallRun) => `${r.calls} call${r.calls === 1 ? '' : 's'}`;

const verdict = (value: number, budget: number, unit: string): string => {
  if (!Number.isFinite(value)) return 'not measured';
  if (value <= budget) return `within budget (${fmt((value / budget) * 100, 0)} % of it)`;
  return `**OVER budget** by ${fmt(value - budget, unit === 'ms' && budget < 1 ? 3 : 2)} ${unit} (${fmt((value / budget) * 100, 0)} % of it)`;
};

/** Each budget judged on the level it is stated at (or the nearest measured one), in a sentence. */
export function budgetVerdicts(report: Pick<CallReport, 'mode' | 'runs' | 'echo'>): string[] {
  const { runs } = report;
  const at = (calls: number) => runs.find((r) => r.calls === calls);
  const largest = runs.reduce<CallRun | undefined>((m, r) => (!m || r.calls > m.calls ? r : m), undefined);
  const lines: string[] = [];
  const ref = at(CALL_BUDGETS.calls);
  const stated = ref ? `at ${CALL_BUDGETS.calls} calls` : largest ? `at ${largest.calls} calls (stated at ${CALL_BUDGETS.calls}: indicative only)` : '';
  const r50 = ref ?? largest;
  const conversation = report.mode === 'conversation';
  if (r50) {
    if (conversation) {
      lines.push(`Our overhead p95 ${stated}: ${fmt(r50.overheadMs.p95)} ms vs <= ${CALL_BUDGETS.overheadP95Ms} ms: ${verdict(r50.overheadMs.p95, CALL_BUDGETS.overheadP95Ms, 'ms')}.`);
    } else {
      lines.push(`Echo overhead p95 ${stated}: ${fmt(r50.echoOverheadMs.p95)} ms vs <= ${CALL_BUDGETS.overheadP95Ms} ms: ${verdict(r50.echoOverheadMs.p95, CALL_BUDGETS.overheadP95Ms, 'ms')}.`);
    }
    lines.push(`Server event-loop delay p99 ${stated}: ${fmt(r50.eventLoopDelayMs.p99)} ms vs <= ${CALL_BUDGETS.eventLoopP99Ms} ms: ${verdict(r50.eventLoopDelayMs.p99, CALL_BUDGETS.eventLoopP99Ms, 'ms')}.`);
    // RSS per call is noisy (the process's own drift, see BENCHMARKS.md); the main heap's growth is exact but
    // partial. The larger of the two is judged, so a negative RSS reading cannot pass on its own.
    const mem = r50.memory;
    const judged = Math.max(mem.rssPerCallMb, mem.heapPerCallMb);
    lines.push(`Memory per call ${stated}: ${fmt(mem.rssPerCallMb)} MB RSS, ${fmt(mem.heapPerCallMb)} MB main heap vs <= ${CALL_BUDGETS.memPerCallMb} MB: ${verdict(judged, CALL_BUDGETS.memPerCallMb, 'MB')}.`);
  }
  if (conversation) {
    // Stated for no particular load: judged at every level.
    for (const r of runs) {
      lines.push(`Barge-in p95 at ${levelLabel(r)} (${r.bargeInMs.samples} samples): ${fmt(r.bargeInMs.p95)} ms after VAD onset vs <= ${CALL_BUDGETS.bargeInP95Ms} ms: ${verdict(r.bargeInMs.p95, CALL_BUDGETS.bargeInP95Ms, 'ms')}.`);
    }
  }
  // Stated for one thread; every level here runs the pool's threads, so each level is a case of it. The cost
  // per window depends on how busy the worker is (see BENCHMARKS.md), so the stated load and 1 call are both judged.
  for (const r of new Set([r50, at(1)])) {
    if (!r) continue;
    const how = conversation ? ' (estimate: workers busy minus Piper)' : '';
    lines.push(`VAD cost per 32 ms window at ${levelLabel(r)}${how}: ${fmt(r.vad.windowMs, 3)} ms vs <= ${CALL_BUDGETS.vadWindowMs} ms: ${verdict(r.vad.windowMs, CALL_BUDGETS.vadWindowMs, 'ms')}.`);
  }
  const echo = report.echo;
  if (echo) {
    lines.push(
      `Echo overhead p95 at ${levelLabel(echo)} (echo level, for comparison with the figures before the conversation engine): ${fmt(echo.echoOverheadMs.p95)} ms vs <= ${CALL_BUDGETS.overheadP95Ms} ms: ${verdict(echo.echoOverheadMs.p95, CALL_BUDGETS.overheadP95Ms, 'ms')}.`,
    );
  }
  return lines;
}

/** Readable lines that explain anything that would make the figures suspect. */
function warnings(runs: CallRun[]): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const what = `${levelLabel(r)}${r.mode === 'echo' ? ' (echo)' : ''}`;
    if (r.interrupted) out.push(`${what}: interrupted, partial figures.`);
    if (r.liveCalls !== r.calls) out.push(`${what}: only ${r.liveCalls} of ${r.calls} sessions were live when measuring started.`);
    if (r.cpu.otherPct > OTHER_WORK_WARN_PCT) out.push(`${what}: other work on the machine used ${pct(r.cpu.otherPct)} of a core during the window; the figures may be disturbed.`);
    if (r.callers.closedEarly > 0) out.push(`${what}: ${r.callers.closedEarly} calls were closed by the server before hang-up.`);
    const q = r.replies;
    if (r.mode === 'echo' && (q.missed > 0 || q.split > 0 || q.clears > 0)) {
      out.push(`${what}: ${q.missed} utterances got no reply, ${q.split} replies started mid-utterance, ${q.clears} clears.`);
    }
    if (r.mode === 'conversation') {
      const unexpected = q.clears - q.bargeInsCleared;
      if (q.missed > 0 || q.split > 0 || unexpected > 0 || q.bargeInsCleared < q.bargeInsAttempted) {
        out.push(
          `${what}: ${q.missed} utterances got no reply, ${q.split} replies started while the caller talked, ` +
            `${q.bargeInsAttempted - q.bargeInsCleared} of ${q.bargeInsAttempted} talked-over replies were not cleared, ${unexpected} clears nobody provoked.`,
        );
      }
    }
  }
  return out;
}

/** The side measurements of a conversation run, one line each. */
function extraLines(r: CallReport): string[] {
  const out: string[] = [];
  if (r.echo) {
    const e = r.echo;
    out.push(
      `Echo mode at ${levelLabel(e)} (${fmt(e.durationS, 0)} s, a fresh server, \`echoOverheadMs\`): overhead p50 / p95 / p99 ${fmt(e.echoOverheadMs.p50)} / ${fmt(e.echoOverheadMs.p95)} / ${fmt(e.echoOverheadMs.p99)} ms ` +
        `(${e.echoOverheadMs.samples} samples), event-loop p99 ${fmt(e.eventLoopDelayMs.p99)} ms, CPU per call ${pct(e.cpu.perCallPct)}, ` +
        `VAD ${fmt(e.vad.windowMs, 3)} ms per window, dropped ${e.frames.dropped}, late ${e.frames.late}.`,
    );
  }
  if (r.piper) {
    const p = r.piper;
    out.push(
      `Piper real-time factor on the test voice (\`piperRtf\`, bench/piper-bench.ts, 1 worker, no calls): ${fmt(p.rtf, 4)} ` +
        `(${fmt(p.synthMs, 0)} ms of synthesis for ${fmt(p.audioMs, 0)} ms of audio, ${p.sentences} sentences); first audio ${fmt(p.firstAudioMs)} ms warm, ${fmt(p.coldFirstAudioMs)} ms with the voice loading.`,
    );
  }
  if (r.elevenLabs) {
    const e = r.elevenLabs;
    out.push(
      `ElevenLabs SDK (bench/elevenlabs-sdk-bench.ts, local fake, zero delay): first audio byte p50 / p95 ${fmt(e.sdkFirstByteMs.p50)} / ${fmt(e.sdkFirstByteMs.p95)} ms ` +
        `through the SDK vs ${fmt(e.fetchFirstByteMs.p50)} / ${fmt(e.fetchFirstByteMs.p95)} ms with plain fetch: the SDK adds ${fmt(e.overheadMs)} ms at p50.`,
    );
  }
  return out;
}

const title = (r: CallReport): string => (r.mode === 'conversation' ? 'Calls with a conversation agent (Deepgram and OpenAI fakes, Piper test voice)' : 'Calls in echo mode');

/** The human-readable result, for stdout. */
export function humanCallReport(r: CallReport): string {
  const table = rows(r.runs, r.mode);
  const head = ['', ...r.runs.map(levelLabel)];
  const body = table.map((row) => [row.label, ...row.cells]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const first = r.runs[0];
  const all = r.echo ? [...r.runs, r.echo] : r.runs;
  return [
    `Vocelio call benchmark: ${title(r)}${all.some((x) => x.interrupted) ? ' (INTERRUPTED: partial figures)' : ''}`,
    `backends:  ${backendsLabel(r.backends)}`,
    `machine:   ${machineLine(r.machine)}`,
    first ? `media:     ${first.workers} media worker thread${first.workers === 1 ? '' : 's'}${r.defaultWorkers ? ' (default: cores - 1)' : ''}; ${first.durationS.toFixed(0)} s measured per level after a ${first.staggerMs} ms staggered start` : '',
    '',
    line(head),
    ...body.map(line),
    '',
    ...extraLines(r),
    ...warnings(all),
    ...budgetVerdicts(r).map((l) => `budget: ${l.replaceAll('**', '')}`),
  ].join('\n');
}

/** Identifies a run's configuration; `--write` replaces the section with the same key. */
export function callSectionKey(r: CallReport): string {
  const workers = r.defaultWorkers ? 'default' : String(r.runs[0]?.workers ?? 'default');
  // Echo sections keep the key they had before conversation mode existed, so an `--echo --write` replaces them.
  // The zero profile with the agent's default turn detection keeps the key it had before profiles existed.
  const first = r.runs[0];
  const variant = r.mode === 'conversation' && first ? `${first.profile === 'zero' ? '' : `-${first.profile}`}${first.turn ? `-turn-${first.turn}` : ''}` : '';
  const kind = r.mode === 'conversation' ? `conversation${variant}` : 'calls';
  const stagger = r.defaultStagger ? '' : `:stagger-${r.runs[0]?.staggerMs ?? 0}`;
  return `${kind}:${r.backends.database}:${r.backends.queue}:${r.runs.map((x) => x.calls).join('-')}:workers-${workers}${stagger}`;
}

/** The BENCHMARKS.md section of one sweep (or one level). */
export function callMarkdownSection(r: CallReport): string {
  const key = callSectionKey(r);
  const table = rows(r.runs, r.mode);
  const first = r.runs[0];
  const levels = r.runs.map((x) => x.calls).join(', ');
  const all = r.echo ? [...r.runs, r.echo] : r.runs;
  const agent =
    r.mode === 'conversation' && first?.profile === 'cloud'
      ? `conversation agent, provider profile \`cloud\` (see "Provider profiles"): Deepgram, OpenAI and ElevenLabs fakes with cloud latencies in their own child process, every other reply talked over 500 ms in${first.turn ? `, turnDetection ${first.turn}` : ''}`
      : r.mode === 'conversation'
        ? `conversation agent: Deepgram and OpenAI fakes (zero delay) in their own child process, Piper on the test voice in the media workers, every other reply talked over 500 ms in${first?.turn ? `, turnDetection ${first.turn}` : ''}`
        : 'echo agent';
  const extras = extraLines(r);
  const warned = warnings(all);
  return [
    `<!-- bench:${key} -->`,
    `## ${title(r)}, ${levels} concurrent: ${backendsLabel(r.backends)}`,
    '',
    `- Date: ${r.date}`,
    `- Command: \`${r.command}\``,
    `- Machine: ${machineLine(r.machine)}`,
    `- Backends: ${r.backends.databaseDetail}; queue ${r.backends.queue}; rate limiter ${r.backends.rateLimiter}` +
      `${r.backends.consumersInProcess ? '; job consumers in the same process (embedded serve)' : ''}`,
    first
      ? `- Media: ${first.workers} media worker thread${first.workers === 1 ? '' : 's'}${r.defaultWorkers ? ' (the default, cores - 1)' : ''}, Silero VAD; ` +
        `${agent}; a fresh server per level; callers in a child process, started over ${first.staggerMs} ms, then ${first.durationS.toFixed(0)} s measured`
      : '- Media: no runs',
    '',
    `| figure | ${r.runs.map(levelLabel).join(' | ')} | budget (ARCHITECTURE.md §9) |`,
    `|---|${r.runs.map(() => '---:').join('|')}|---|`,
    ...table.map((row) => `| ${row.label} | ${row.cells.join(' | ')} | ${row.budget || '-'} |`),
    '',
    ...extras.map((l) => `- ${l}`),
    ...(extras.length > 0 ? [''] : []),
    ...warned.map((w) => `- ${w}`),
    ...(warned.length > 0 ? [''] : []),
    ...budgetVerdicts(r).map((l) => `- ${l}`),
    `<!-- /bench:${key} -->`,
  ].join('\n');
}
