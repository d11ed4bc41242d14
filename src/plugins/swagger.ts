import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { RouteOptions } from 'fastify';
import { ErrorResponse } from '../shared/schemas.js';

/** Put `[OPTIONAL_BODY]: true` in a route's schema when a bare request without a body is valid too. */
export const OPTIONAL_BODY = 'x-vocelio-optional-body';

type RouteSchema = { hide?: boolean; params?: unknown; querystring?: unknown; headers?: unknown; body?: unknown; response?: Record<string | number, unknown> };

/**
 * The error statuses a route can answer whatever its handler does, from what it has: the /v1 guard (401, 403,
 * 429), validated input (400), path ids (404), a body (413, 415), and our own failure or a draining server
 * (500, 503). Derived here so that no route can leave one out of the document.
 */
export function statusesEveryRouteCanAnswer(url: string, schema: RouteSchema): number[] {
  const statuses = [500, 503];
  if (url.startsWith('/v1')) statuses.push(401, 403, 429);
  if (schema.params || schema.querystring || schema.headers || schema.body) statuses.push(400);
  if (schema.params) statuses.push(404);
  if (schema.body) statuses.push(413, 415);
  return statuses;
}

/** Adds the error statuses of {@link statusesEveryRouteCanAnswer} to a route's response schemas. */
function documentErrors(route: RouteOptions): void {
  const schema = (route.schema ?? {}) as RouteSchema;
  if (schema.hide || !schema.response) return;
  for (const status of statusesEveryRouteCanAnswer(route.url, schema)) schema.response[status] ??= ErrorResponse;
}

interface OpenApiOperation {
  requestBody?: { required?: boolean };
  [OPTIONAL_BODY]?: boolean;
}

// @fastify/swagger marks every body as required; a few routes accept a bare POST.
function markOptionalBodies(doc: { paths?: Record<string, Record<string, OpenApiOperation>> }): void {
  for (const ops of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(ops)) {
      if (!op[OPTIONAL_BODY]) continue;
      delete op[OPTIONAL_BODY];
      if (op.requestBody) op.requestBody.required = false;
    }
  }
}

/** OpenAPI 3 document at `/docs/json` and the interactive reference at `/docs`. Must be registered before any route. */
export const swaggerPlugin = fp(
  async (app, opts: { publicUrl: string; version: string }) => {
    app.addHook('onRoute', documentErrors);
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Vocelio API',
          version: opts.version,
          description:
            'Voice AI agents on the phone. Authenticate with `Authorization: Bearer <api key>`. Errors are `{"error":{"code","message","details","requestId"}}` (`details` is null when there is nothing to add). Lists paginate with `limit` and `cursor` (pass the previous `nextCursor`).',
        },
        servers: [{ url: opts.publicUrl }],
        components: {
          securitySchemes: {
            apiKey: { type: 'http', scheme: 'bearer', description: 'an API key, vk_...' },
            session: { type: 'apiKey', in: 'cookie', name: 'vocelio_session', description: 'dashboard session; changes also need X-CSRF-Token' },
          },
        },
        security: [{ apiKey: [] }, { session: [] }],
      },
      transformObject: (documents) => {
        if (!('openapiObject' in documents)) return documents.swaggerObject;
        markOptionalBodies(documents.openapiObject as Parameters<typeof markOptionalBodies>[0]);
        return documents.openapiObject;
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  },
  { name: 'swagger' },
);
