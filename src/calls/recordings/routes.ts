import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { IdParams, errorResponses } from '../../shared/schemas.js';
import { AppError, notFound } from '../../shared/errors.js';
import { recordingNotFound } from './recording-store.js';

/** What a `Range` header asks of a file of a known size. */
export type RangeRequest = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const SINGLE_RANGE = /^bytes=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

/**
 * Reads `Range` per RFC 9110 for one byte range: `a-b`, `a-` and the suffix `-n`. A header that is
 * absent, malformed, of another unit or asking for several ranges is ignored (the whole file, as the RFC
 * allows); a range that starts past the end, or an empty suffix, is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'full' };
  const m = SINGLE_RANGE.exec(header.trim());
  if (!m) return { kind: 'full' };
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return { kind: 'full' };
  // Digits beyond 2^53 are not a real request for a recording; treat them like malformed input.
  if (first.length > 15 || last.length > 15) return { kind: 'full' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

const WavFile = (description: string) => ({
  description,
  content: { 'audio/wav': { schema: { type: 'string', format: 'binary' } } },
});

/** `GET /v1/calls/:id/recording`: the call's two-channel recording, with byte ranges for seeking players. */
export const recordingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const schema = {
    summary: "Download a call's recording",
    description:
      'A stereo 8 kHz 16-bit PCM WAV: the caller on the left channel, the agent on the right, as the caller heard it. ' +
      'Send `Range: bytes=start-end` (or `start-` or `-suffix`) for part of it; one range per request.',
    tags: ['calls'],
    params: IdParams('call'),
    headers: Type.Object({ range: Type.Optional(Type.String({ description: 'one byte range, e.g. `bytes=0-1023`' })) }),
    response: {
      200: WavFile('the whole recording'),
      206: WavFile('the requested byte range (see Content-Range)'),
      ...errorResponses(400, 401, 403, 404, 416, 429),
    },
  };
  const config = { access: { resource: 'calls', role: 'viewer' } } as const;

  const handler = async (req: FastifyRequest<{ Params: { id: string }; Headers: { range?: string } }>, reply: FastifyReply) => {
    const call = await app.calls.get(req.auth!.organizationId, req.params.id);
    if (call.deletedAt) throw notFound('call', call.id);
    if (!call.recordingKey) throw recordingNotFound();
    const stored = await app.recordings.stat(call.recordingKey);
    if (!stored) {
      req.log.warn({ callId: call.id, key: call.recordingKey }, 'call names a recording the store does not have');
      throw recordingNotFound('the recording file is missing');
    }
    const size = stored.bytes;
    void reply.header('accept-ranges', 'bytes');
    const range = parseRange(req.headers.range, size);
    if (range.kind === 'unsatisfiable') {
      void reply.header('content-range', `bytes */${size}`);
      throw new AppError('range_not_satisfiable', `the range ${req.headers.range} is outside the recording's ${size} bytes`, 416);
    }
    const partial = range.kind === 'partial';
    // Opened before any success header is set, so a file lost since stat() is a clean 404.
    const stream = req.method === 'HEAD' ? null : await app.recordings.read(call.recordingKey, partial ? { start: range.start, end: range.end } : undefined);
    // A recording is personal data: no shared cache may keep it.
    void reply.type('audio/wav').header('cache-control', 'private, no-store').header('content-disposition', `inline; filename="${call.id}.wav"`);
    if (partial) {
      void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', String(range.end - range.start + 1));
    } else {
      void reply.code(200).header('content-length', String(size));
    }
    return stream ? reply.send(stream) : reply.send();
  };

  // fastify's automatic HEAD would read (or, from a bucket, download) the whole file only to drop it.
  app.get('/:id/recording', { schema, config, exposeHeadRoute: false }, handler);
  app.head('/:id/recording', { schema: { ...schema, hide: true }, config }, handler);
};
