import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../shared/errors.js';
import { randomToken } from '../shared/ids.js';

/** The body of every error response; `details` is always present (null when there are none). */
export interface ErrorBody {
  error: { code: string; message: string; details: unknown; requestId: string };
}

/** A fresh request id, for responses that have no request object (the connection failed before one existed). */
export const newRequestId = (): string => `req_${randomToken(12)}`;

/** The one error body: every error response of the API is built here. */
export function errorBody(code: string, message: string, requestId: string, details: unknown = null): ErrorBody {
  return { error: { code, message, details: details ?? null, requestId } };
}

// Fastify's own client errors, given stable codes of ours so clients need not know fastify.
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_content_length',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_BAD_URL: 'bad_url',
  FST_ERR_MAX_PARAM_LENGTH: 'bad_url',
  FST_ERR_ASYNC_CONSTRAINT: 'bad_request',
};

function validationDetails(err: FastifyError) {
  return (err.validation ?? []).map((v) => {
    const path = v.instancePath || '';
    const params = v.params as Record<string, unknown>;
    const field = params.additionalProperty
      ? `${path}/${String(params.additionalProperty)}`
      : params.missingProperty
        ? `${path}/${String(params.missingProperty)}`
        : path;
    return { location: err.validationContext ?? 'body', field: field.replace(/^\//, '').replace(/\//g, '.') || '(root)', message: v.message ?? 'is invalid' };
  });
}

function toBody(err: FastifyError | AppError | Error, req: FastifyRequest): { status: number; body: ErrorBody } {
  const requestId = req.id;
  if (err instanceof AppError) return { status: err.status, body: errorBody(err.code, err.message, requestId, err.details) };
  const fe = err as FastifyError;
  if (fe.validation) {
    const details = validationDetails(fe);
    const first = details[0];
    const message = first ? `${first.location} ${first.field === '(root)' ? '' : `${first.field} `}${first.message}`.replace(/\s+/g, ' ') : 'request is invalid';
    return { status: 400, body: errorBody('validation_failed', message, requestId, details) };
  }
  // SyntaxError from JSON.parse carries statusCode 400 in fastify 5.
  const status = fe.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code = (fe.code && FASTIFY_CODES[fe.code]) ?? (err instanceof SyntaxError ? 'invalid_json' : 'bad_request');
    return { status, body: errorBody(code, fe.message, requestId) };
  }
  return { status: 500, body: errorBody('internal_error', `internal error; quote request id ${requestId} when reporting it`, requestId) };
}

/**
 * Answers with the error shape. It is the error handler, and also fastify's `frameworkErrors`: failures the
 * router meets before any route or hook runs (a malformed URL escape), which would otherwise get fastify's own body.
 */
export function sendError(err: FastifyError | AppError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = toBody(err, req);
  if (status >= 500) req.log.error({ err }, 'request failed');
  else req.log.info({ code: body.error.code, status }, body.error.message);
  if ((status === 429 || status === 503) && err instanceof AppError) {
    const retry = (err.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
    if (retry !== undefined) void reply.header('retry-after', String(retry));
  }
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/** One error shape for everything: AppError, schema failures, fastify's client errors; a 5xx never leaks internals. */
export const errorsPlugin = fp(
  async (app) => {
    app.setErrorHandler(sendError);
    // A node that is shutting down still finishes what it started, but new requests should go elsewhere.
    let closing = false;
    app.addHook('preClose', async () => {
      closing = true;
    });
    app.addHook('onRequest', async (_req, reply) => {
      if (!closing) return;
      void reply.header('connection', 'close');
      throw new AppError('shutting_down', 'this server is shutting down; retry the request', 503, { retryAfterSeconds: 1 });
    });
    app.setNotFoundHandler((req, reply) => {
      return reply.code(404).send(errorBody('route_not_found', `no route ${req.method} ${req.url.split('?')[0]}`, req.id));
    });
  },
  { name: 'errors' },
);

// Errors Node's HTTP parser meets before a request exists (headers too large, a malformed request line, a
// request that took too long to arrive): no fastify hook runs, so the raw response is written here.
const CLIENT_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large', message: 'request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request took too long to arrive' },
  ERR_HTTP_HEADERS_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request headers took too long to arrive' },
};

/** fastify's `clientErrorHandler`: the same error shape for failures at the HTTP parser level, then close. */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const known = CLIENT_ERRORS[err.code ?? ''] ?? { status: 400, code: 'bad_request', message: 'the request is not valid HTTP' };
  const requestId = newRequestId();
  const body = JSON.stringify(errorBody(known.code, known.message, requestId));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${known.status} ${STATUS_CODES[known.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
