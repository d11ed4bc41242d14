// `npm run bench -- --api`: the HTTP API under an open-loop load, on the real app and the configured backends.
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { startBenchServer, type BenchServer } from './api-server.js';
import { runLoad, type LoadProgress } from './load-generator.js';
import { describeMachine } from './machine.js';
import { backendsLabel, humanReport, toJson, writeBenchmarks, type BenchReport } from './report.js';
import { round2, summarize } from './stats.js';

const WARMUP_S = 2;
const AGENTS = 50;
const MAX_SOCKETS = 64;
const TIMEOUT_MS = 10_000;
/** Node's default; the histogram's samples include this interval, so it is subtracted from them. */
const ELD_RESOLUTION_MS = 10;
const BENCHMARKS_MD = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

/** What `bench/run.ts` parsed for the API benchmark. */
export interface ApiBenchOptions {
  rate: number;
  durationS: number;
  json: boolean;
  write: boolean;
  /** The command as recorded in BENCHMARKS.md. */
  command: string;
  databaseUrl?: string;
  redisUrl?: string;
  signal: AbortSignal;
  log(msg: string): void;
}

function progressPrinter(log: (msg: string) => void): { show(p: LoadProgress): void; end(): void } {
  const tty = process.stderr.isTTY;
  let lastSecond = -1;
  let shown = false;
  return {
    show(p) {
      const text = `${p.phase.padEnd(7)} ${p.elapsedS.toFixed(1).padStart(5)}/${p.totalS} s  sent ${p.sent}  in flight ${p.inFlight}  errors ${p.errors}`;
      if (tty) {
        process.stderr.write(`\r${text.padEnd(78)}`);
        shown = true;
      } else if (Math.floor(p.elapsedS) !== lastSecond || p.phase === 'drain') {
        lastSecond = Math.floor(p.elapsedS);
        log(text);
      }
    },
    end() {
      if (shown) process.stderr.write('\n');
    },
  };
}

/** Runs the API benchmark once, prints the result and, with `write`, records it in BENCHMARKS.md. */
export async function runApiBench(opts: ApiBenchOptions): Promise<void> {
  const { log } = opts;
  log(`starting the app (${opts.databaseUrl ? 'PostgreSQL' : 'PGlite'}, ${opts.redisUrl ? 'Redis' : 'no Redis'}) and seeding ${AGENTS} agents...`);
  const setupStarted = performance.now();
  let server: BenchServer | null = null;
  try {
    server = await startBenchServer({ databaseUrl: opts.databaseUrl, redisUrl: opts.redisUrl, agents: AGENTS, log });
    log(`backends: ${backendsLabel(server.backends)}; ${server.backends.databaseDetail}`);
    log(`ready in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s at ${server.baseUrl}; load: ${opts.rate} req/s, ${WARMUP_S} s warm-up + ${opts.durationS} s measured`);
    if (opts.signal.aborted) return;

    // Measured on this thread, which serves every request; the generator runs in a worker thread.
    const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    eld.enable();
    let eluStart = performance.eventLoopUtilization();
    const progress = progressPrinter(log);
    const result = await runLoad(
      { baseUrl: server.baseUrl, apiKey: server.ownerKey, agentIds: server.agentIds, rate: opts.rate, warmupS: WARMUP_S, durationS: opts.durationS, maxSockets: MAX_SOCKETS, timeoutMs: TIMEOUT_MS },
      {
        onMeasureStart: () => {
          eld.reset();
          eluStart = performance.eventLoopUtilization();
        },
        onProgress: (p) => progress.show(p),
        signal: opts.signal,
      },
    );
    eld.disable();
    const elu = performance.eventLoopUtilization(eluStart);
    progress.end();

    const eldMs = (ns: number): number => (eld.count > 0 ? round2(Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS)) : Number.NaN);
    const { all, byKind } = summarize(result);
    const responses = result.latenciesMs.filter(Number.isFinite).length;
    const report: BenchReport = {
      date: new Date().toISOString(),
      command: opts.command,
      api: {
        rate: opts.rate,
        achievedRate: result.windowMs > 0 ? Math.round((responses / (result.windowMs / 1000)) * 10) / 10 : 0,
        warmupS: WARMUP_S,
        durationS: opts.durationS,
        agentsSeeded: AGENTS,
        requests: result.requests,
        errors: result.errors,
        errorsBy: result.errorsBy,
        latencyMs: all.latencyMs,
        byRoute: byKind,
        eventLoopDelayMs: { p99: eldMs(eld.percentile(99)), max: eldMs(eld.max) },
        eventLoopUtilization: elu.utilization,
        sendLagMs: { mean: round2(result.meanSendLagMs), max: round2(result.maxSendLagMs) },
        interrupted: result.interrupted,
      },
      backends: server.backends,
      machine: describeMachine(),
    };

    if (opts.json) process.stdout.write(`${JSON.stringify(toJson(report))}\n`);
    else process.stdout.write(`\n${humanReport(report)}\n`);
    if (opts.write && !report.api.interrupted) {
      writeBenchmarks(BENCHMARKS_MD, report);
      log(`wrote ${BENCHMARKS_MD}`);
    } else if (opts.write) {
      log('interrupted run: BENCHMARKS.md left unchanged');
    }
  } finally {
    log('cleaning up...');
    await server?.close();
  }
}
