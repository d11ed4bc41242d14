import Fastify, { LogController, type FastifyInstance } from 'fastify';
import helmet from '@fastify/helmet';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { Database } from './db/client.js';
import type { JobQueue } from './queue/queue.js';
import type { Access } from './auth/access.js';
import { randomToken } from './shared/ids.js';
import { clientErrorHandler, errorsPlugin, sendError } from './plugins/errors.js';
import { dbPlugin } from './plugins/db.js';
import { redisPlugin } from './plugins/redis.js';
import { metricsPlugin } from './plugins/metrics.js';
import { swaggerPlugin } from './plugins/swagger.js';
import { healthRoutes } from './plugins/health.js';
import { rejectUnstorableInput, validatorCompiler } from './plugins/validation.js';
import { authPlugin, v1GuardPlugin } from './plugins/auth.js';
import { auditPlugin, auditRoutes } from './audit/index.js';
import { organizationsPlugin, memberRoutes, meRoutes, invitationRoutes, invitationAcceptRoutes } from './organizations/index.js';
import { authServicesPlugin, apiKeyRoutes, sessionRoutes } from './auth/index.js';
import { agentsPlugin, agentRoutes } from './agents/index.js';
import { carrierPlugin, telephonyPlugin } from './telephony/index.js';
import { numbersPlugin, numberRoutes } from './numbers/index.js';
import { billingPlugin } from './billing/index.js';
import { twilioWebhookRoutes } from './telephony/webhooks/routes.js';
import type { TelephonyProvider } from './telephony/provider/telephony-provider.js';
import { callsPlugin, callRoutes, testCallRoutes } from './calls/index.js';
import { recordingsPlugin, recordingRoutes } from './calls/recordings/index.js';
import type { MediaEngine } from './media/media-engine.js';
import { eventsPlugin, eventRoutes, type EventFeed } from './events/index.js';

/** The product version, shown in OpenAPI and logs. */
export const VERSION = '0.1.0';

declare module 'fastify' {
  interface FastifyInstance {
    /** The validated configuration this app was built with. */
    config: Config;
    /** The job queue (BullMQ or in-process); producers add jobs, `vocelio worker` consumes them. */
    queue: JobQueue | null;
    /** Every route with its access rule, recorded as routes are added (for introspection and tests). */
    routeTable: ReadonlyArray<{ method: string; url: string; access?: Access }>;
    /** Epoch milliseconds now; injected by tests so time-dependent rules run without sleeping. */
    clock: () => number;
  }
}

/** What buildApp can be handed instead of opening it itself (tests share one database and Redis). */
export interface AppDeps {
  database: Database;
  /** Whether closing the app closes the database too. Default false. */
  ownsDatabase?: boolean;
  redis?: Redis;
  queue?: JobQueue;
  /** Worker-thread media processing; without it calls run with no VAD (and no echo). */
  mediaEngine?: MediaEngine;
  /** The carrier; default: Twilio when TWILIO_ACCOUNT_SID is set, else none. */
  telephony?: TelephonyProvider | null;
  /** The clock time-dependent rules read (login throttling); default `Date.now`. */
  now?: () => number;
  /** The process's durable-event feed (shared with the dispatcher); default: the app opens its own. */
  eventFeed?: EventFeed;
  /** No other node can use this database (`serve` on the locked embedded one): earlier nodes' calls are orphans at once. */
  exclusiveNode?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Builds the HTTP app with every plugin and route; does not listen. */
export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]'] },
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    // Timeouts bound how long a client may hold a connection without finishing a request (slow bodies,
    // slowloris, idle sockets). Upgraded WebSockets leave the HTTP server's bookkeeping, so these never cut
    // a live call; the media route has its own start timeout.
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    http: { headersTimeout: config.http.headersTimeoutMs, connectionsCheckingInterval: config.http.connectionsCheckingIntervalMs },
    requestIdHeader: false,
    // Probes poll these every few seconds; logging each would drown the real traffic.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: (req) => req.url === '/health' || req.url === '/ready' || req.url === '/metrics' }),
    // Accept a caller's request id when it is sane, so one id follows a request across systems.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : `req_${randomToken(12)}`;
    },
    ajv: { customOptions: { removeAdditional: false } },
    // Router-level failures (a malformed %-escape in the path) get our error shape, not fastify's.
    frameworkErrors: (err, req, reply) => {
      // No route, so no onSend hook: set the request id header here.
      void sendError(err, req, reply.header('x-request-id', req.id));
    },
    // maxParamLength: a long id is just a wrong id; let it reach schema validation (400 like any malformed id)
    // instead of the router's 414. No route has a regex parameter that the default limit of 100 would protect.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 16_384 },
    // Failures of the HTTP parser itself (431 headers too large, 408) get our error shape too.
    clientErrorHandler,
    forceCloseConnections: 'idle',
    // Requests that arrive while the server drains get a 503 in our error shape from a hook (errors plugin)
    // rather than fastify's own body.
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler());
  // Every body is JSON. Fastify's built-in text/plain parser would hand a string to the schema (a confusing
  // "body must be object") where the answer is 415.
  app.removeContentTypeParser('text/plain');
  app.addHook('preValidation', rejectUnstorableInput);
  app.decorate('config', config);
  app.decorate('queue', deps.queue ?? null);
  app.decorate('clock', deps.now ?? Date.now);
  const routeTable: Array<{ method: string; url: string; access?: Access }> = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routeTable.push({ method, url: route.url, access: route.config?.access });
    }
  });
  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });

  await app.register(errorsPlugin);
  const https = config.publicUrl.startsWith('https:');
  // Over plain http (a LAN install, a local try-out) HSTS and upgrade-insecure-requests would break the
  // dashboard and docs, so they are sent only when the public URL is https.
  await app.register(helmet, {
    global: true,
    hsts: https,
    contentSecurityPolicy: { useDefaults: true, directives: { upgradeInsecureRequests: https ? [] : null } },
  });
  await app.register(swaggerPlugin, { publicUrl: config.publicUrl, version: VERSION });
  await app.register(metricsPlugin, { token: config.metricsToken });
  await app.register(dbPlugin, { database: deps.database, owned: deps.ownsDatabase ?? false });
  await app.register(redisPlugin, { redisUrl: config.redisUrl, redis: deps.redis });
  await app.register(auditPlugin);
  await app.register(authServicesPlugin);
  await app.register(organizationsPlugin);
  await app.register(agentsPlugin);
  await app.register(authPlugin);
  await app.register(callsPlugin, { lifecycle: config.lifecycle, exclusiveNode: deps.exclusiveNode });
  await app.register(billingPlugin);
  await app.register(recordingsPlugin, {});
  await app.register(carrierPlugin, { telephony: deps.telephony });
  await app.register(numbersPlugin);
  await app.register(telephonyPlugin, { mediaEngine: deps.mediaEngine ?? null });
  await app.register(eventsPlugin, { feed: deps.eventFeed });

  await app.register(healthRoutes);
  await app.register(twilioWebhookRoutes);
  await app.register(sessionRoutes, { prefix: '/auth' });
  await app.register(invitationAcceptRoutes, { prefix: '/auth/invitations' });
  await app.register(
    async (v1) => {
      await v1.register(v1GuardPlugin, { rateLimitPerMinute: config.rateLimitPerMinute });
      await v1.register(meRoutes, { prefix: '/me' });
      await v1.register(agentRoutes, { prefix: '/agents' });
      await v1.register(testCallRoutes, { prefix: '/agents' });
      await v1.register(apiKeyRoutes, { prefix: '/api-keys' });
      await v1.register(numberRoutes, { prefix: '/phone-numbers' });
      await v1.register(callRoutes, { prefix: '/calls' });
      await v1.register(recordingRoutes, { prefix: '/calls' });
      await v1.register(memberRoutes, { prefix: '/members' });
      await v1.register(invitationRoutes, { prefix: '/invitations' });
      await v1.register(auditRoutes, { prefix: '/audit-log' });
      await v1.register(eventRoutes, { prefix: '/events' });
    },
    { prefix: '/v1' },
  );
  return app;
}
