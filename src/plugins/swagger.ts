import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

/** OpenAPI 3 document at `/docs/json` and the interactive reference at `/docs`. Must be registered before any route. */
export const swaggerPlugin = fp(
  async (app, opts: { publicUrl: string; version: string }) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Vocelio API',
          version: opts.version,
          description:
            'Voice AI agents on the phone. Authenticate with `Authorization: Bearer <api key>`. Errors are `{"error":{"code","message","details"}}`. Lists paginate with `limit` and `cursor` (pass the previous `nextCursor`).',
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
    });
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  },
  { name: 'swagger' },
);
