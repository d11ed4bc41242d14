import type { Backends } from './api-server.js';
import type { CallRun } from './call-bench.js';
import { machineLine, type Machine } from './machine.js';
import { backendsLabel } from './report.js';

/** ARCHITECTURE.md §9, the budgets the call benchmark checks. */
export const CALL_BUDGETS = {
  /** Our own overhead, end of speech -> first outbound frame, 50 concurrent calls, 2 cores: p95. */
  overheadP95Ms: 15,
  /** Main-thread event-loop delay under 50 calls: p99. */
  eventLoopP99Ms: 10,
  /** Silero VAD per 32 ms window, 1 thread: mean. */
  vadWindowMs: 0.2,
  /** Memory per active call. */
  memPerCallMb: 8,
  /** The load the overhead, event-loop and memory budgets are stated at. */
  calls: 50,
} as const;

/** A finished call benchmark: one run per level. */
export interface CallReport {
  date: string;
  command: string;
  runs: CallRun[];
  backends: Backends;
  machine: Machine;
  /** True when `--workers` was not given and the pool chose its size (cores - 1). */
  defaultWorkers: boolean;
}

/** Other processes' CPU (% of one core) above which a level's figures are flagged as possibly disturbed. */
const OTHER_WORK_WARN_PCT = 15;

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const pct = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(1)} %` : '-');

/** The `--json` object of one run: the figures the issue asks for at the top level, details below them. */
export function runJson(r: CallRun): object {
  const overhead = { p50: r.overheadMs.p50, p95: r.overheadMs.p95, p99: r.overheadMs.p99 };
  return {
    calls: r.calls,
    overheadMs: overhead,
    // The conversation issue renames the figure; both names carry it until then.
    echoOverheadMs: overhead,
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
    overheadDetailMs: r.overheadMs,
    eventLoopDelayDetailMs: r.eventLoopDelayMs,
    eventLoopUtilization: r.eventLoopUtilization,
    workerLagMs: r.workerLagMs,
    cpu: r.cpu,
    memory: r.memory,
    vad: r.vad,
    frames: r.frames,
    replies: r.replies,
    turnLatencyMs: r.turnLatencyMs,
    bargeIns: r.bargeIns,
    loadAverage: r.loadAverage,
    callers: r.callers,
    interrupted: r.interrupted,
  };
}

/** `--json`: the run itself for one level, `{ runs: [...] }` for the sweep; both with the context. */
export function callJson(r: CallReport, single: boolean): object {
  const context = { date: r.date, command: r.command, backends: r.backends, machine: r.machine };
  if (single && r.runs.length === 1) return { ...runJson(r.runs[0]!), ...context };
  return { runs: r.runs.map(runJson), ...context };
}

/** The rows both the terminal and BENCHMARKS.md show, one cell per level. */
function rows(runs: CallRun[]): Array<{ label: string; cells: string[]; budget: string }> {
  const row = (label: string, budget: string, cell: (r: CallRun) => string) => ({ label, budget, cells: runs.map(cell) });
  return [
    row('echo overhead p50 / p95 / p99 ms', `p95 <= ${CALL_BUDGETS.overheadP95Ms} ms at ${CALL_BUDGETS.calls} calls`, (r) => `${fmt(r.overheadMs.p50)} / ${fmt(r.overheadMs.p95)} / ${fmt(r.overheadMs.p99)}`),
    row('echo overhead max ms (samples)', '', (r) => `${fmt(r.overheadMs.max)} (${r.overheadMs.samples})`),
    row('server event-loop delay p99 (max) ms', `p99 <= ${CALL_BUDGETS.eventLoopP99Ms} ms under ${CALL_BUDGETS.calls} calls`, (r) => `${fmt(r.eventLoopDelayMs.p99)} (${fmt(r.eventLoopDelayMs.max)})`),
    row('server main thread busy (ELU)', '', (r) => pct(r.eventLoopUtilization * 100)),
    row('media worker lag p99 ms, worst second (mean)', '', (r) => `${fmt(r.workerLagMs.max)} (${fmt(r.workerLagMs.mean)})`),
    row('CPU per call, % of one core', '', (r) => pct(r.cpu.perCallPct)),
    row('server process CPU (idle before calls)', '', (r) => `${pct(r.cpu.serverPct)} (${pct(r.cpu.idlePct)})`),
    row('memory per call MB: RSS (main heap)', `<= ${CALL_BUDGETS.memPerCallMb} MB`, (r) => `${fmt(r.memory.rssPerCallMb)} (${fmt(r.memory.heapPerCallMb)})`),
    row('server RSS MB: idle -> mean, peak during', '', (r) => `${fmt(r.memory.rssIdleMb, 0)} -> ${fmt(r.memory.rssMb, 0)}, ${fmt(r.memory.rssPeakMb, 0)}`),
    row('VAD cost per 20 ms frame ms (per 32 ms window)', `<= ${CALL_BUDGETS.vadWindowMs} ms per window, 1 thread`, (r) => `${fmt(r.vad.frameMs, 3)} (${fmt(r.vad.windowMs, 3)})`),
    row('media workers busy; VAD push -> result ms (pool figure)', '', (r) => `${pct(r.vad.workerBusyPct)}; ${fmt(r.vad.pushLatencyMs, 3)}`),
    row('echoed frames: received / dropped / late', '', (r) => `${r.frames.echoed} / ${r.frames.dropped} / ${r.frames.late}`),
    row('echoed frames: gaps > 60 ms, max gap ms, corrupt', '', (r) => `${r.frames.gapsOver60Ms}, ${fmt(r.frames.maxGapMs, 1)}, ${r.frames.corrupt}`),
    row('inbound frames: sent / lost before the session', '', (r) => `${r.frames.sentByCallers} / ${r.frames.inboundLost}`),
    row('utterances / replies / missed / short / split / clears', '', (r) => `${r.replies.utterances} / ${r.replies.complete} / ${r.replies.missed} / ${r.replies.short} / ${r.replies.split} / ${r.replies.clears}`),
    row('caller-heard turn p50 / p95 ms (incl. 400 ms VAD silence)', '', (r) => `${fmt(r.turnLatencyMs.p50, 0)} / ${fmt(r.turnLatencyMs.p95, 0)}`),
    row('caller process: CPU, event-loop p99 ms, send lag max ms', '', (r) => `${pct(r.cpu.callersPct)}, ${fmt(r.callers.eventLoopDelayP99Ms)}, ${fmt(r.callers.sendLagMs.max)}`),
    row('other work on the machine: CPU; load average start -> end', '', (r) => `${pct(r.cpu.otherPct)}; ${fmt(r.loadAverage.before)} -> ${fmt(r.loadAverage.after)}`),
  ];
}

const levelLabel = (r: CallRun) => `${r.calls} call${r.calls === 1 ? '' : 's'}`;

/** One budget judged on the level it is stated at (or the nearest measured one), in a sentence. */
export function budgetVerdicts(runs: CallRun[]): string[] {
  const at = (calls: number) => runs.find((r) => r.calls === calls);
  const largest = runs.reduce<CallRun | undefined>((m, r) => (!m || r.calls > m.calls ? r : m), undefined);
  const verdict = (value: number, budget: number, unit: string): string => {
    if (!Number.isFinite(value)) return 'not measured';
    if (value <= budget) return `within budget (${fmt((value / budget) * 100, 0)} % of it)`;
    return `**OVER budget** by ${fmt(value - budget, unit === 'ms' && budget < 1 ? 3 : 2)} ${unit} (${fmt((value / budget) * 100, 0)} % of it)`;
  };
  const lines: string[] = [];
  const ref = at(CALL_BUDGETS.calls);
  const stated = ref ? `at ${CALL_BUDGETS.calls} calls` : largest ? `at ${largest.calls} calls (stated at ${CALL_BUDGETS.calls}: indicative only)` : '';
  const r50 = ref ?? largest;
  if (r50) {
    lines.push(`Echo overhead p95 ${stated}: ${fmt(r50.overheadMs.p95)} ms vs <= ${CALL_BUDGETS.overheadP95Ms} ms: ${verdict(r50.overheadMs.p95, CALL_BUDGETS.overheadP95Ms, 'ms')}.`);
    lines.push(`Server event-loop delay p99 ${stated}: ${fmt(r50.eventLoopDelayMs.p99)} ms vs <= ${CALL_BUDGETS.eventLoopP99Ms} ms: ${verdict(r50.eventLoopDelayMs.p99, CALL_BUDGETS.eventLoopP99Ms, 'ms')}.`);
    // RSS per call is noisy (the process's own drift, see BENCHMARKS.md); the main heap's growth is exact but
    // partial. The larger of the two is judged, so a negative RSS reading cannot pass on its own.
    const mem = r50.memory;
    const judged = Math.max(mem.rssPerCallMb, mem.heapPerCallMb);
    lines.push(`Memory per call ${stated}: ${fmt(mem.rssPerCallMb)} MB RSS, ${fmt(mem.heapPerCallMb)} MB main heap vs <= ${CALL_BUDGETS.memPerCallMb} MB: ${verdict(judged, CALL_BUDGETS.memPerCallMb, 'MB')}.`);
  }
  // Stated for one thread; every level here runs the pool's threads, so each level is a case of it. The cost
  // per window depends on how busy the worker is (see BENCHMARKS.md), so the stated load and 1 call are both judged.
  for (const r of new Set([ref ?? largest, at(1)])) {
    if (!r) continue;
    lines.push(`VAD cost per 32 ms window at ${levelLabel(r)}: ${fmt(r.vad.windowMs, 3)} ms vs <= ${CALL_BUDGETS.vadWindowMs} ms: ${verdict(r.vad.windowMs, CALL_BUDGETS.vadWindowMs, 'ms')}.`);
  }
  return lines;
}

/** Readable lines that explain anything that would make the figures suspect. */
function warnings(runs: CallRun[]): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const what = levelLabel(r);
    if (r.interrupted) out.push(`${what}: interrupted, partial figures.`);
    if (r.liveCalls !== r.calls) out.push(`${what}: only ${r.liveCalls} of ${r.calls} sessions were live when measuring started.`);
    if (r.cpu.otherPct > OTHER_WORK_WARN_PCT) out.push(`${what}: other work on the machine used ${pct(r.cpu.otherPct)} of a core during the window; the figures may be disturbed.`);
    if (r.callers.closedEarly > 0) out.push(`${what}: ${r.callers.closedEarly} calls were closed by the server before hang-up.`);
    if (r.replies.missed > 0 || r.replies.split > 0 || r.replies.clears > 0) {
      out.push(`${what}: ${r.replies.missed} utterances got no reply, ${r.replies.split} replies started mid-utterance, ${r.replies.clears} clears.`);
    }
  }
  return out;
}

/** The human-readable result, for stdout. */
export function humanCallReport(r: CallReport): string {
  const table = rows(r.runs);
  const head = ['', ...r.runs.map(levelLabel)];
  const body = table.map((row) => [row.label, ...row.cells]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const first = r.runs[0];
  return [
    `Vocelio call benchmark, echo mode${r.runs.some((x) => x.interrupted) ? ' (INTERRUPTED: partial figures)' : ''}`,
    `backends:  ${backendsLabel(r.backends)}`,
    `machine:   ${machineLine(r.machine)}`,
    first ? `media:     ${first.workers} media worker thread${first.workers === 1 ? '' : 's'}${r.defaultWorkers ? ' (default: cores - 1)' : ''}; ${first.durationS.toFixed(0)} s measured per level after a ${first.staggerMs} ms staggered start` : '',
    '',
    line(head),
    ...body.map(line),
    '',
    ...warnings(r.runs),
    ...budgetVerdicts(r.runs).map((l) => `budget: ${l.replaceAll('**', '')}`),
  ].join('\n');
}

/** Identifies a run's configuration; `--write` replaces the section with the same key. */
export function callSectionKey(r: CallReport): string {
  const workers = r.defaultWorkers ? 'default' : String(r.runs[0]?.workers ?? 'default');
  return `calls:${r.backends.database}:${r.backends.queue}:${r.runs.map((x) => x.calls).join('-')}:workers-${workers}`;
}

/** The BENCHMARKS.md section of one sweep (or one level). */
export function callMarkdownSection(r: CallReport): string {
  const key = callSectionKey(r);
  const table = rows(r.runs);
  const first = r.runs[0];
  const levels = r.runs.map((x) => x.calls).join(', ');
  return [
    `<!-- bench:${key} -->`,
    `## Calls in echo mode, ${levels} concurrent: ${backendsLabel(r.backends)}`,
    '',
    `- Date: ${r.date}`,
    `- Command: \`${r.command}\``,
    `- Machine: ${machineLine(r.machine)}`,
    `- Backends: ${r.backends.databaseDetail}; queue ${r.backends.queue}; rate limiter ${r.backends.rateLimiter}` +
      `${r.backends.consumersInProcess ? '; job consumers in the same process (embedded serve)' : ''}`,
    first
      ? `- Media: ${first.workers} media worker thread${first.workers === 1 ? '' : 's'}${r.defaultWorkers ? ' (the default, cores - 1)' : ''}, Silero VAD; ` +
        `echo agent; a fresh server per level; callers in a child process, started over ${first.staggerMs} ms, then ${first.durationS.toFixed(0)} s measured`
      : '- Media: no runs',
    '',
    `| figure | ${r.runs.map(levelLabel).join(' | ')} | budget (ARCHITECTURE.md §9) |`,
    `|---|${r.runs.map(() => '---:').join('|')}|---|`,
    ...table.map((row) => `| ${row.label} | ${row.cells.join(' | ')} | ${row.budget || '-'} |`),
    '',
    ...warnings(r.runs).map((w) => `- ${w}`),
    ...(warnings(r.runs).length > 0 ? [''] : []),
    ...budgetVerdicts(r.runs).map((l) => `- ${l}`),
    `<!-- /bench:${key} -->`,
  ].join('\n');
}
