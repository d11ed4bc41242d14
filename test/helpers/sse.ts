import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';

/** One Server-Sent Events message as a client parses it (per the WHATWG event-stream rules we use). */
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
  /** `data` parsed as JSON. */
  json: { id: string | null; type: string; subject: string; at: string; data: Record<string, unknown> };
}

/** A streaming client on a real socket: records messages and comment lines as they arrive. */
export class SseClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  /** Resolves when the server ends or drops the stream. */
  readonly ended: Promise<void>;
  private buffer = '';
  private onEnd!: () => void;

  private constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    private readonly res: IncomingMessage,
  ) {
    this.ended = new Promise((resolve) => (this.onEnd = resolve));
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.feed(chunk));
    res.on('end', () => this.onEnd());
    res.on('close', () => this.onEnd());
    res.on('error', () => this.onEnd());
  }

  /** Opens `url` (http://127.0.0.1:...); resolves with the response head, the body keeps streaming. */
  static open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => resolve(new SseClient(res.statusCode ?? 0, res.headers, res)));
      req.on('error', reject);
      req.end();
    });
  }

  /** The body of a refused (non-200) stream. */
  async body(): Promise<string> {
    await this.ended;
    return this.buffer;
  }

  /** Resolves with the first message (already received or to come) that passes `test`. */
  async waitFor(test: (m: SseMessage) => boolean, ms = 5000, what = 'a message'): Promise<SseMessage> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.messages.find(test);
      if (found) return found;
      if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms; got ${this.messages.map((m) => m.event).join(', ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Messages of one call, by type. */
  types(subject?: string): string[] {
    return this.messages.filter((m) => subject === undefined || m.json.subject === subject).map((m) => m.event);
  }

  close(): void {
    this.res.destroy();
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    if (this.status !== 200) return;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) !== -1) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else {
          const colon = line.indexOf(':');
          const name = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          fields[name] = fields[name] !== undefined && name === 'data' ? `${fields[name]}\n${value}` : value;
        }
      }
      if (fields.data === undefined) continue;
      this.messages.push({ id: fields.id, event: fields.event ?? 'message', data: fields.data, json: JSON.parse(fields.data) as SseMessage['json'] });
    }
  }
}
