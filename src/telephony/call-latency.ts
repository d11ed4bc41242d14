import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The last `capacity` samples of one latency, for benchmarks and diagnostics (bounded: it runs in production). */
export class LatencyReservoir {
  private readonly samples: number[] = [];
  private next = 0;

  constructor(private readonly capacity = 10_000) {}

  add(ms: number): void {
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
  }

  /** A copy of the kept samples, in no particular order. */
  values(): number[] {
    return [...this.samples];
  }

  reset(): void {
    this.samples.length = 0;
    this.next = 0;
  }
}

/** Our own latencies on the call path, measured from the instant the worker decided (cross-thread clock). */
export class CallLatencies {
  /** VAD end of speech -> first echoed frame sent (echo mode). */
  readonly echoOverheadMs = new LatencyReservoir();
  /** VAD speech onset -> `clear` sent, when the caller talks over the agent. */
  readonly bargeInMs = new LatencyReservoir();
  /** Caller's end of speech -> first agent frame sent, minus STT, LLM and TTS time: our own overhead. */
  readonly turnOverheadMs = new LatencyReservoir();
  /** Caller's end of speech -> first agent frame sent, providers included. */
  readonly turnResponseMs = new LatencyReservoir();
  /** Caller's last voiced frame received -> first agent frame sent: what the caller waited. */
  readonly callerWaitMs = new LatencyReservoir();
  private readonly echoHist: Histogram;
  private readonly bargeHist: Histogram;
  private readonly overheadHist: Histogram;
  private readonly responseHist: Histogram;
  private readonly callerWaitHist: Histogram;
  /** Live calls on this node. */
  readonly liveCalls: Gauge;
  /** LLM requests started on a caller's pause, by outcome: answered from (used) or thrown away (discarded). */
  readonly preemptions = { used: 0, discarded: 0 };
  private readonly preemptionCounter: Counter<'outcome'>;

  constructor(registry: Registry) {
    const buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25];
    this.echoHist = new Histogram({ name: 'vocelio_echo_response_seconds', help: 'VAD end of speech to first echoed frame sent', buckets, registers: [registry] });
    this.bargeHist = new Histogram({ name: 'vocelio_barge_in_seconds', help: 'VAD speech onset to clear sent', buckets, registers: [registry] });
    this.overheadHist = new Histogram({ name: 'vocelio_turn_overhead_seconds', help: 'end of caller speech to first agent frame, minus provider time', buckets, registers: [registry] });
    this.responseHist = new Histogram({
      name: 'vocelio_turn_response_seconds',
      help: 'end of caller speech to first agent frame, providers included',
      buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5],
      registers: [registry],
    });
    this.callerWaitHist = new Histogram({
      name: 'vocelio_caller_wait_seconds',
      help: "caller's last voiced frame received to first agent frame sent",
      buckets: [0.25, 0.4, 0.5, 0.65, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 5],
      registers: [registry],
    });
    this.liveCalls = new Gauge({ name: 'vocelio_live_calls', help: 'calls whose media socket this node holds', registers: [registry] });
    this.preemptionCounter = new Counter({ name: 'vocelio_llm_preemptions_total', help: 'LLM requests started before the caller\'s turn was confirmed, by outcome', labelNames: ['outcome'], registers: [registry] });
  }

  /** A preemptive LLM request was used for the answer, or thrown away (the caller went on, or their words changed). */
  preemption(outcome: 'used' | 'discarded'): void {
    this.preemptions[outcome]++;
    this.preemptionCounter.inc({ outcome });
  }

  echoOverhead(ms: number): void {
    this.echoOverheadMs.add(ms);
    this.echoHist.observe(ms / 1000);
  }

  /**
   * One answered caller turn: total response time, the part that was our own code, and what the caller waited
   * (null when the caller's last voiced frame is unknown).
   */
  turn(responseMs: number, overheadMs: number, callerWaitMs: number | null = null): void {
    if (callerWaitMs !== null) {
      this.callerWaitMs.add(callerWaitMs);
      this.callerWaitHist.observe(callerWaitMs / 1000);
    }
    this.turnResponseMs.add(responseMs);
    this.responseHist.observe(responseMs / 1000);
    this.turnOverheadMs.add(overheadMs);
    this.overheadHist.observe(overheadMs / 1000);
  }

  bargeIn(ms: number): void {
    this.bargeInMs.add(ms);
    this.bargeHist.observe(ms / 1000);
  }
}
