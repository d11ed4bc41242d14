// The load generator, run in a worker thread so that its own work never shows up as the server's
// event-loop delay. Open loop: request i is due at start + i/rate whatever the server does, and its
// latency is counted from that due time, so a stalled server cannot hide its stall by slowing the
// generator down (no coordinated omission).
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { REQUEST_KINDS, type ControlMessage, type LoadPlan, type LoadResult, type RequestKind, type WorkerMessage } from './load-protocol.js';

const PROGRESS_EVERY_MS = 500;

// 80 % list, 10 % get, 10 % create, interleaved so every second of the run sees the same mix.
const MIX: RequestKind[] = ['list', 'list', 'list', 'list', 'get', 'list', 'list', 'list', 'create', 'list'];

const CREATE_BODY = (n: number): string =>
  JSON.stringify({
    name: `Bench agent ${n}`,
    systemPrompt: 'You are the receptionist of {{company}}. Answer briefly and politely.',
    firstMessage: 'Hello, thanks for calling {{company}}. How can I help?',
    variables: { company: 'Acme' },
  });

function send(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(message, transfer);
}

async function run(plan: LoadPlan): Promise<LoadResult> {
  const target = new URL(plan.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: plan.maxSockets });
  const intervalMs = 1000 / plan.rate;
  const warmupCount = Math.round(plan.warmupS * plan.rate);
  const measuredCount = Math.round(plan.durationS * plan.rate);
  const total = warmupCount + measuredCount;
  const totalS = plan.warmupS + plan.durationS;

  const latenciesMs = new Float64Array(measuredCount).fill(Number.NaN);
  const kinds = new Uint8Array(measuredCount);
  const failed = new Uint8Array(measuredCount);
  const errorsBy: Record<string, number> = {};
  let errors = 0;
  let measuredErrors = 0;
  let inFlight = 0;
  let next = 0;
  let stopped = false;
  let maxSendLagMs = 0;
  let sendLagSumMs = 0;
  let lastMeasuredDoneAt = 0;
  const authorization = `Bearer ${plan.apiKey}`;

  parentPort?.on('message', (m: ControlMessage) => {
    if (m.kind === 'stop') stopped = true;
  });

  const start = performance.now() + 5;
  const measureStart = start + warmupCount * intervalMs;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((resolve) => (allDone = resolve));

  const fire = (i: number, dueAt: number): void => {
    const kind = MIX[i % MIX.length]!;
    const measured = i >= warmupCount;
    const slot = i - warmupCount;
    if (measured) kinds[slot] = REQUEST_KINDS.indexOf(kind);
    const path = kind === 'list' ? '/v1/agents?limit=20' : kind === 'get' ? `/v1/agents/${plan.agentIds[Math.floor(i / MIX.length) % plan.agentIds.length]}` : '/v1/agents';
    const body = kind === 'create' ? CREATE_BODY(i) : undefined;
    const headers: http.OutgoingHttpHeaders = { authorization };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }

    let settled = false;
    const settle = (failure: string | null): void => {
      if (settled) return;
      settled = true;
      inFlight -= 1;
      const doneAt = performance.now();
      if (failure !== null) {
        errors += 1;
        if (measured) {
          measuredErrors += 1;
          failed[slot] = 1;
          errorsBy[failure] = (errorsBy[failure] ?? 0) + 1;
        }
      }
      if (measured) {
        // A timed-out request is one of the slowest, not a missing sample: keep it (>= timeoutMs).
        if (failure !== 'network') latenciesMs[slot] = doneAt - dueAt;
        lastMeasuredDoneAt = Math.max(lastMeasuredDoneAt, doneAt);
      }
      if (inFlight === 0 && (next >= total || stopped)) allDone();
    };

    inFlight += 1;
    if (measured) {
      const lag = performance.now() - dueAt;
      sendLagSumMs += lag;
      maxSendLagMs = Math.max(maxSendLagMs, lag);
    }
    const req = http.request(
      { agent, hostname: target.hostname, port: target.port, method: kind === 'create' ? 'POST' : 'GET', path, headers },
      (res) => {
        const status = res.statusCode ?? 0;
        res.on('data', () => {});
        res.on('end', () => settle(status >= 200 && status < 300 ? null : String(status)));
        res.on('error', () => settle('network'));
      },
    );
    req.setTimeout(plan.timeoutMs, () => {
      settle('timeout');
      req.destroy();
    });
    req.on('error', () => settle('network'));
    req.end(body);
  };

  const pump = (): void => {
    const now = performance.now();
    while (!stopped && next < total && start + next * intervalMs <= now) {
      fire(next, start + next * intervalMs);
      next += 1;
      if (next === warmupCount) send({ kind: 'measure-start' });
    }
    if (stopped || next >= total) {
      if (inFlight === 0) allDone();
      return;
    }
    const wait = start + next * intervalMs - performance.now();
    // Timers round up to whole milliseconds; below that, spin through the event loop instead of sleeping late.
    // Timers have millisecond granularity, so a request may leave up to ~1 ms late. That lateness is counted
    // in its latency (and reported as send lag) rather than hidden; spinning with setImmediate instead would
    // burn a core the server needs.
    setTimeout(pump, Math.max(0, Math.floor(wait)));
  };

  const progress = setInterval(() => {
    const elapsedS = Math.min(totalS, (performance.now() - start) / 1000);
    const phase = next >= total || stopped ? 'drain' : next < warmupCount ? 'warm-up' : 'measure';
    send({ kind: 'progress', phase, elapsedS, totalS, sent: next, inFlight, errors });
  }, PROGRESS_EVERY_MS);

  if (warmupCount === 0) send({ kind: 'measure-start' });
  setTimeout(pump, Math.max(0, start - performance.now()));
  await finished;
  clearInterval(progress);
  agent.destroy();

  const sentMeasured = Math.max(0, next - warmupCount);
  return {
    latenciesMs: latenciesMs.subarray(0, sentMeasured).slice(),
    kinds: kinds.subarray(0, sentMeasured).slice(),
    failed: failed.subarray(0, sentMeasured).slice(),
    requests: sentMeasured,
    errors: measuredErrors,
    errorsBy,
    windowMs: sentMeasured > 0 ? lastMeasuredDoneAt - measureStart : 0,
    meanSendLagMs: sentMeasured > 0 ? sendLagSumMs / sentMeasured : 0,
    maxSendLagMs,
    interrupted: stopped,
  };
}

run(workerData as LoadPlan).then(
  (result) => send({ kind: 'done', result }, [result.latenciesMs.buffer as ArrayBuffer, result.kinds.buffer as ArrayBuffer, result.failed.buffer as ArrayBuffer]),
  (err: unknown) => send({ kind: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
);
