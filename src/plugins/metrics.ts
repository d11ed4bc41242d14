import fp from 'fastify-plugin';
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { unauthorized } from '../shared/errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The Prometheus registry; domains add their own metrics to it. */
    metrics: Registry;
  }
}

/**
 * `/metrics` in Prometheus text format: HTTP latency by route and the process's default metrics
 * (event-loop delay percentiles, heap, GC, CPU). Protected by METRICS_TOKEN when one is set.
 */
export const metricsPlugin = fp(
  async (app, opts: { token?: string }) => {
    // One registry per app instance: tests build many apps in one process.
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
    const httpDuration = new Histogram({
      name: 'vocelio_http_request_duration_seconds',
      help: 'HTTP request latency by method, route and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    app.decorate('metrics', registry);

    app.addHook('onResponse', async (req, reply) => {
      // Unmatched URLs share one label so that scanners cannot explode the label set.
      const route = req.routeOptions.url ?? 'unmatched';
      httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });

    app.get('/metrics', { schema: { hide: true }, config: { skipRateLimit: true } }, async (req, reply) => {
      if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) throw unauthorized('metrics need the METRICS_TOKEN bearer token');
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  },
  { name: 'metrics' },
);
