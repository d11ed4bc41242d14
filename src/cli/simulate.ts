import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { idPattern } from '../shared/ids.js';
import { loadScript, parseDuration, readScriptFile, scriptFromFlags, ScriptError, SCRIPT_FLAGS, type Script } from '../simulator/script.js';
import { runSimulation, SimulationError, type SimulationProgress, type SimulationReport, type TurnReport } from '../simulator/simulate.js';
import { fetchServerAnswers, formatServerAnswers } from '../simulator/server-latency.js';
import { reachableStreamUrl, startTestCall, TestCallError } from '../simulator/test-call.js';
import { mulawToWav } from '../simulator/wav.js';
import { CommandError, UsageError } from './args.js';

const DEFAULT_URL = 'http://localhost:3000';

const OPTIONS = {
  agent: { type: 'string' },
  url: { type: 'string' },
  key: { type: 'string' },
  script: { type: 'string' },
  record: { type: 'string' },
  json: { type: 'boolean' },
  'reply-timeout': { type: 'string' },
  say: { type: 'string', multiple: true },
  pause: { type: 'string', multiple: true },
  dtmf: { type: 'string', multiple: true },
  'barge-in': { type: 'string', multiple: true },
  wait: { type: 'boolean', multiple: true },
  'no-wait': { type: 'boolean', multiple: true },
} as const;

/** What `vocelio simulate` was asked to do, validated. */
interface SimulateArgs {
  agentId: string;
  url: string;
  apiKey: string;
  script: Script;
  /** The WAV to write, as given (for messages) and as an absolute path. */
  record: { given: string; resolved: string } | null;
  json: boolean;
  replyTimeoutMs: number;
}

/** Parses and checks the command line; every mistake is a UsageError naming the flag. */
export async function parseSimulateArgs(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<SimulateArgs> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals, tokens } = parsed;
  if (positionals.length) throw new UsageError(`simulate takes no positional arguments (got "${positionals[0]}"); say files with --say <file>`);

  const agentId = values.agent;
  if (!agentId) throw new UsageError('simulate needs --agent <agt_...>: the agent to call (create one with POST /v1/agents)');
  if (!new RegExp(idPattern('agt')).test(agentId)) throw new UsageError(`--agent: "${agentId}" is not an agent id (agt_ followed by 26 characters)`);

  const url = (values.url ?? env.VOCELIO_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  let parsedUrl: URL | null = null;
  try {
    parsedUrl = new URL(url);
  } catch {
    // reported below
  }
  if (!parsedUrl || !['http:', 'https:'].includes(parsedUrl.protocol)) throw new UsageError(`--url: "${url}" is not an http(s) URL such as ${DEFAULT_URL}`);

  const apiKey = values.key ?? env.VOCELIO_API_KEY;
  if (!apiKey) throw new UsageError('simulate needs an API key: --key vk_... or VOCELIO_API_KEY (serve prints the owner key on its first start)');

  let replyTimeoutMs = 10_000;
  let record: SimulateArgs['record'] = null;
  let script: Script;
  try {
    if (values['reply-timeout'] !== undefined) replyTimeoutMs = Math.max(1, parseDuration(values['reply-timeout'], '--reply-timeout'));
    const flags = tokens.flatMap((t) => (t.kind === 'option' && (SCRIPT_FLAGS as readonly string[]).includes(t.name) ? [{ name: t.name, value: t.value }] : []));
    if (values.script && flags.length) throw new ScriptError('give either --script <file.json> or steps as flags (--say, --pause, --dtmf, ...), not both');
    script = values.script ? await readScriptFile(values.script) : await loadScript(scriptFromFlags(flags));
  } catch (err) {
    if (err instanceof ScriptError) throw new UsageError(err.message);
    throw err;
  }
  if (values.record !== undefined) {
    record = { given: values.record, resolved: resolve(values.record) };
    const dir = dirname(record.resolved);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--record: the directory ${dir} does not exist`);
  }
  return { agentId, url, apiKey, script, record, json: values.json ?? false, replyTimeoutMs };
}

/**
 * `vocelio simulate`: starts a test call to an agent through the API and plays Twilio's side of it from a
 * script; progress on stderr, the per-turn report on stdout. Exits 1 when the call ended abnormally.
 */
export async function runSimulate(args: string[]): Promise<void> {
  const opts = await parseSimulateArgs(args);
  const err = (line: string) => process.stderr.write(line);

  let call;
  try {
    call = await startTestCall({ url: opts.url, apiKey: opts.apiKey, agentId: opts.agentId });
  } catch (e) {
    if (e instanceof TestCallError) throw new CommandError(e.message);
    throw e;
  }
  const stream = reachableStreamUrl(opts.url, call.streamUrl);
  if (stream.rewritten) err(`The server's stream URL ${call.streamUrl} (its PUBLIC_URL) is not at ${opts.url}; dialling ${stream.url} instead.\n`);
  err(`Test call ${call.callId} to ${opts.agentId}: connecting to ${stream.url}\n`);

  // Ctrl-C hangs up like a caller would, and the report still covers what happened.
  const hangUp = new AbortController();
  const onSigint = () => hangUp.abort();
  process.once('SIGINT', onSigint);
  let report: SimulationReport;
  try {
    report = await runSimulation({ streamUrl: stream.url, token: call.token, script: opts.script, replyTimeoutMs: opts.replyTimeoutMs, onProgress: progressPrinter(err), signal: hangUp.signal });
  } catch (e) {
    if (e instanceof SimulationError) throw new CommandError(`${e.message}${stream.rewritten ? ` (the stream URL was rewritten from ${call.streamUrl})` : ''}`);
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }

  let recording: { path: string; durationMs: number } | null = null;
  if (opts.record) {
    await writeFile(opts.record.resolved, mulawToWav(report.agentAudio));
    recording = { path: opts.record.given, durationMs: (report.agentAudio.length / 8000) * 1000 };
  }
  // Where the caller's wait went, as the server recorded it (answers of a conversation agent; none for echo).
  const serverAnswers = await fetchServerAnswers(opts.url, opts.apiKey, call.callId);
  const { agentAudio: _audio, ...rest } = report;
  if (opts.json) process.stdout.write(`${JSON.stringify({ callId: call.callId, agentId: opts.agentId, streamUrl: stream.url, ...rest, recording, serverAnswers }, null, 2)}\n`);
  else {
    process.stdout.write(formatReport(call.callId, report, recording));
    if (serverAnswers?.length) process.stdout.write(`the server's view of each answer (ms):\n${formatServerAnswers(serverAnswers).join('\n')}\n`);
  }
  if (report.ended.abnormal) process.exitCode = 1;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Progress lines on stderr: a say opens a line, its reply closes it. */
function progressPrinter(write: (s: string) => void): (e: SimulationProgress) => void {
  let open: number | null = null; // the turn whose line is waiting for its ending
  const waiting = new Set<number>();
  const said = new Set<number>();
  const line = (text: string) => {
    if (open !== null) write('\n');
    open = null;
    write(`${text}\n`);
  };
  const finish = (turn: number, text: string) => {
    if (open === turn) write(` ${text}\n`);
    else line(`  turn ${turn}: ${text}`);
    open = null;
  };
  return (e) => {
    switch (e.type) {
      case 'connected':
        return;
      case 'say': {
        said.add(e.turn);
        if (e.waitForReply) waiting.add(e.turn);
        const what = `saying ${e.label} (${seconds(e.durationMs)})...`;
        // Left open: the reply's outcome completes the line.
        if (open !== null) write('\n');
        write(`turn ${e.turn}: ${e.bargeIn ? `talking over turn ${e.bargeIn.intoTurn}'s reply ${e.bargeIn.afterMs} ms in, ${what}` : what}`);
        open = e.turn;
        return;
      }
      case 'reply_started': {
        if (waiting.has(e.turn)) return;
        const after = e.latencyMs === null ? '' : ` after ${e.latencyMs} ms`;
        if (said.has(e.turn)) finish(e.turn, `agent started replying${after}`);
        else line(`turn ${e.turn}: the agent started speaking${after}`);
        return;
      }
      case 'cleared':
        line(`  agent cleared its reply to turn ${e.turn}${e.afterCallerSpeechMs === null ? '' : ` ${e.afterCallerSpeechMs} ms after you started talking over it`} (${seconds(e.playedMs)} of it had played)`);
        return;
      case 'turn_done':
        waiting.delete(e.report.turn);
        finish(e.report.turn, describeOutcome(e.report));
        return;
      case 'wait':
        if (open !== null) write('\n');
        write(`turn ${e.turn}: waiting for the agent...`);
        open = e.turn;
        waiting.add(e.turn);
        return;
      case 'pause':
        line(`pausing ${e.ms} ms`);
        return;
      case 'dtmf':
        line(`pressing ${e.digits.split('').join(' ')}`);
        return;
      case 'no_barge_in_target':
        line(`  no reply to talk over within the reply timeout; speaking anyway`);
        return;
      case 'ended':
        line(
          e.ended.by === 'caller'
            ? `hung up${!e.ended.abnormal ? '' : e.ended.code === 0 ? `; ${e.ended.reason}` : `; the server closed the stream with ${e.ended.code} ${e.ended.reason}`}`
            : e.ended.by === 'server'
              ? `the server ended the call (${e.ended.code}${e.ended.reason ? ` ${e.ended.reason}` : ''}) before the script finished`
              : 'interrupted: hung up',
        );
        return;
      default: {
        const never: never = e;
        throw new Error(`unknown progress ${JSON.stringify(never)}`);
      }
    }
  };
}

function describeOutcome(t: TurnReport): string {
  const r = t.reply;
  switch (t.outcome) {
    case 'replied':
      return `agent ${t.said === null ? 'spoke' : 'replied'}${r!.latencyMs === null ? '' : ` after ${r!.latencyMs} ms`} (${seconds(r!.playedMs)} of audio${r!.cleared ? ', some of it cleared' : ''})`;
    case 'cleared':
      return `agent's reply was cut off after ${seconds(r!.playedMs)}`;
    case 'no_reply':
      return 'no reply (timed out)';
    case 'timed_out':
      return `agent still talking after ${seconds(r!.receivedMs)}; moving on`;
    case 'not_waited':
      return r ? `agent replied${r.latencyMs === null ? '' : ` after ${r.latencyMs} ms`}` : 'not waited for';
    case 'call_ended':
      return 'the call ended before the reply finished';
  }
}

/** The per-turn table and totals for stdout. */
export function formatReport(callId: string, report: SimulationReport, recording: { path: string; durationMs: number } | null): string {
  // `caller wait`: the caller's last voiced frame sent -> the reply's first frame; `reply after` also times greetings and keys.
  const rows: string[][] = [['turn', 'caller said', 'speech ended', 'caller wait', 'reply after', 'reply', 'played', 'marks', 'outcome']];
  for (const t of report.turns) {
    const r = t.reply;
    const c = t.caller;
    const length = !c ? '' : c.audioMs < c.fileMs - 20 ? ` (${(c.audioMs / 1000).toFixed(1)} of ${seconds(c.fileMs)})` : ` (${seconds(c.fileMs)})`;
    const said = t.said === null ? (t.keys ? `(after keys ${t.keys})` : t.turn === 1 ? '(agent first)' : '(agent)') : `${t.said}${length}${t.bargeIn ? `, barge-in +${t.bargeIn.startedAfterMs ?? t.bargeIn.requestedAfterMs} ms` : ''}`;
    const outcome =
      t.outcome === 'cleared' && r?.cleared ? `cleared${r.cleared.afterCallerSpeechMs === null ? '' : ` ${r.cleared.afterCallerSpeechMs} ms after barge-in`}`
      : `${t.outcome.replace('_', ' ')}${r?.cleared ? ' (after a clear)' : ''}`;
    rows.push([
      String(t.turn),
      said,
      t.caller?.speechEndedAtMs != null ? seconds(t.caller.speechEndedAtMs) : '-',
      r?.callerWaitMs != null ? `${r.callerWaitMs} ms` : '-',
      r?.latencyMs != null ? `${r.latencyMs} ms` : '-',
      r ? seconds(r.receivedMs) : '-',
      r ? seconds(r.playedMs) : '-',
      r ? `${r.marksEchoed}/${r.marksSent}` : '-',
      outcome,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  // Text columns left-aligned, numbers right-aligned.
  const table = rows.map((row) => row.map((cell, c) => (c === 1 || c === 8 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()).join('\n');
  const e = report.ended;
  const close = `${e.code}${e.reason ? ` ${e.reason}` : ''}`;
  const ended = e.by === 'caller' ? `hung up by the simulator (${e.code === 0 ? e.reason : `server closed ${close}`})` : e.by === 'server' ? `ended by the server (${close}) before the script finished` : 'interrupted';
  const tot = report.totals;
  return [
    table,
    '',
    `call ${callId}: ${seconds(report.durationMs)}, ${ended}`,
    `frames sent ${tot.framesSent}, received ${tot.framesReceived} (played ${tot.framesPlayed}, dropped by clear ${tot.framesDropped}); clears ${tot.clears}; marks ${tot.marksEchoed}/${tot.marksReceived} echoed; DTMF keys ${tot.dtmfSent}`,
    recording ? `agent audio: ${recording.path} (${seconds(recording.durationMs)}, 8 kHz 16-bit PCM WAV)` : null,
    '',
  ]
    .filter((l) => l !== null)
    .join('\n');
}
