import fp from 'fastify-plugin';
import { SecretBox } from '../shared/secret-box.js';
import { loadSecretsKey } from '../shared/secrets-key.js';
import { AgentsService } from './agents.service.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Agent definitions. */
    agents: AgentsService;
  }
}

/** Registers the agents service on the app; it needs the tools' network setting and the secrets key. */
export const agentsPlugin = fp(
  async (app) => {
    const secrets = loadSecretsKey(app.config);
    for (const warning of secrets.warnings) app.log.warn(warning);
    if (secrets.created) app.log.info(`generated the tool secrets key ${secrets.keyId} in ${secrets.source}`);
    app.decorate('agents', new AgentsService(app.db, { allowPrivateNetwork: app.config.toolsAllowPrivateNetwork, secrets: new SecretBox(secrets.key) }));
  },
  { name: 'agents', dependencies: ['db'] },
);

export { agentRoutes } from './routes.js';
