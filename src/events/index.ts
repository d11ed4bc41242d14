import fp from 'fastify-plugin';
import { EventsService } from './events.service.js';
import { EventFeed } from './event-feed.js';
import { EventStreamHub } from './stream-hub.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Durable events: `record(tx, event)` inside a producer's transaction, and reads in commit order. */
    events: EventsService;
    /** This node's view of new durable events, in commit order (shared with the dispatcher in one process). */
    eventFeed: EventFeed;
    /** The open `GET /v1/events/stream` connections of this node. */
    eventStreams: EventStreamHub;
  }
}

/**
 * Durable events and the live event stream. Needs the call-event bus (live events) and the metrics
 * registry; `feed` is the process's feed when the runtime made one, else the app makes and closes its own.
 */
export const eventsPlugin = fp(
  async (app, opts: { feed?: EventFeed }) => {
    const events = new EventsService(app.db);
    app.decorate('events', events);
    const feed = opts.feed ?? new EventFeed(app.database, events, { pollMs: app.config.events.pollMs, onError: (err) => app.log.warn({ err: err.message }, 'event feed') });
    app.decorate('eventFeed', feed);
    const { streamHeartbeatMs, streamMaxBufferedBytes, streamMaxPerOrganization } = app.config.events;
    const hub = new EventStreamHub(app.callEvents, feed, events, {
      limits: { heartbeatMs: streamHeartbeatMs, maxBufferedBytes: streamMaxBufferedBytes },
      maxPerOrganization: streamMaxPerOrganization,
      metrics: app.metrics,
    });
    app.decorate('eventStreams', hub);
    // Open streams would keep the server from closing; clients reconnect (to another node) with Last-Event-ID.
    app.addHook('preClose', async () => hub.closeAll());
    app.addHook('onClose', async () => {
      hub.detach();
      if (!opts.feed) await feed.close();
    });
  },
  { name: 'events', dependencies: ['db', 'metrics', 'calls'] },
);

export { eventRoutes } from './routes.js';
export { EventsService } from './events.service.js';
export { EventFeed } from './event-feed.js';
export { EventConsumerRegistry, type EventConsumer } from './consumers.js';
export { EventDispatcher } from './dispatcher.js';
export { DeliveriesService } from './deliveries.service.js';
export type { EventPayloads, EventType, NewEvent, StoredEvent } from './event-types.js';
