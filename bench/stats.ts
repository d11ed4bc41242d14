import { REQUEST_KINDS, type LoadResult, type RequestKind } from './load-protocol.js';

/** Latency percentiles, ms. */
export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Latency and error figures for one slice of the requests. */
export interface LatencySummary {
  requests: number;
  errors: number;
  latencyMs: Percentiles;
}

/** Rounds to 0.01, the finest figure worth printing for a latency in ms. */
export const round2 = (n: number): number => Math.round(n * 100) / 100;

/** Nearest-rank percentiles of the finite values (NaN, a failed connection, is left out). */
export function percentiles(values: Iterable<number>): Percentiles {
  const sorted = Float64Array.from([...values].filter(Number.isFinite)).sort();
  if (sorted.length === 0) return { p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { p50: round2(at(50)), p95: round2(at(95)), p99: round2(at(99)), max: round2(sorted[sorted.length - 1]!) };
}

/** The whole run plus one summary per request kind. */
export function summarize(result: LoadResult): { all: LatencySummary; byKind: Record<RequestKind, LatencySummary> } {
  const byKind = {} as Record<RequestKind, LatencySummary>;
  REQUEST_KINDS.forEach((kind, k) => {
    const values: number[] = [];
    let errors = 0;
    for (let i = 0; i < result.kinds.length; i++) {
      if (result.kinds[i] !== k) continue;
      values.push(result.latenciesMs[i]!);
      errors += result.failed[i]!;
    }
    byKind[kind] = { requests: values.length, errors, latencyMs: percentiles(values) };
  });
  return { all: { requests: result.requests, errors: result.errors, latencyMs: percentiles(result.latenciesMs) }, byKind };
}
