import pg from 'pg';
import type { Database } from '../db/client.js';

/** A running LISTEN; `close` stops it and releases its connection. */
export interface Listening {
  close(): Promise<void>;
}

const RECONNECT_MS = [100, 500, 1000, 2000, 5000];

/**
 * Calls `onNotify` for every NOTIFY on `channel`. PostgreSQL needs a connection of its own (a pooled one
 * would be handed to queries); it is reopened after a drop, with a growing delay. PGlite is one session in
 * this process, so it listens on that. Notifications can be lost while reconnecting (or behind a
 * transaction-mode pooler, which cannot LISTEN at all): callers poll too.
 */
export async function listen(database: Database, channel: string, onNotify: () => void, onError: (err: Error) => void): Promise<Listening> {
  const engine = database.engine;
  if (engine.kind === 'pglite') {
    const unlisten = await engine.client.listen(channel, onNotify);
    return { close: () => (engine.client.closed ? Promise.resolve() : unlisten()) };
  }
  let closed = false;
  let client: pg.Client | null = null;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    const next = new pg.Client(engine.pool.options);
    next.on('notification', (msg) => {
      if (msg.channel === channel) onNotify();
    });
    next.on('error', (err) => {
      onError(err);
      void next.end().catch(() => {});
      if (client === next) client = null;
      reconnect();
    });
    try {
      await next.connect();
      await next.query(`listen ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      await next.end().catch(() => {});
      throw err;
    }
    if (closed) {
      await next.end();
      return;
    }
    client = next;
    failures = 0;
    // Whatever was notified while we were away is found by the caller's next read.
    onNotify();
  };
  const reconnect = (): void => {
    if (closed || timer) return;
    const delay = RECONNECT_MS[Math.min(failures++, RECONNECT_MS.length - 1)]!;
    timer = setTimeout(() => {
      timer = undefined;
      connect().catch((err: unknown) => {
        onError(err instanceof Error ? err : new Error(String(err)));
        reconnect();
      });
    }, delay);
    timer.unref();
  };
  await connect();
  return {
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await client?.end().catch(() => {});
      client = null;
    },
  };
}
