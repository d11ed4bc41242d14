import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request a loopback listener received. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The local address the connection arrived on (which of several listeners on one port got it). */
  localAddress: string;
}

/** An HTTP listener on a loopback address that records everything it receives. */
export interface LoopbackListener {
  host: string;
  port: number;
  requests: ReceivedRequest[];
  /** TCP connections accepted, requests or not. */
  connections: number;
  close(): Promise<void>;
}

type Handler = (req: ReceivedRequest, res: ServerResponse) => void;

const ok: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"ok":true}');
};

/**
 * Listens on `host` (127.0.0.0/8 or ::1 only: tests never send a packet anywhere else), on `port` or a free
 * one. `handle` answers; by default a small JSON body.
 */
export async function startLoopbackListener(host = '127.0.0.1', port = 0, handle: Handler = ok): Promise<LoopbackListener> {
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== '::1') throw new Error(`test listeners stay on loopback, not ${host}`);
  const listener: LoopbackListener = { host, port: 0, requests: [], connections: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, localAddress: req.socket.localAddress ?? '' };
      listener.requests.push(received);
      handle(received, res);
    });
  });
  server.on('connection', () => listener.connections++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  listener.port = (server.address() as AddressInfo).port;
  listener.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return listener;
}
