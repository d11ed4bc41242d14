import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../shared/errors.js';

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown; requestId?: string };
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
  if (err instanceof AppError) {
    return { status: err.status, body: { error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}), requestId } } };
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const details = validationDetails(fe);
    const first = details[0];
    const message = first ? `${first.location} ${first.field === '(root)' ? '' : `${first.field} `}${first.message}`.replace(/\s+/g, ' ') : 'request is invalid';
    return { status: 400, body: { error: { code: 'validation_failed', message, details, requestId } } };
  }
  // SyntaxError from JSON.parse carries statusCode 400 in fastify 5.
  const status = fe.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code = (fe.code && FASTIFY_CODES[fe.code]) ?? (err instanceof SyntaxError ? 'invalid_json' : 'bad_request');
    return { status, body: { error: { code, message: fe.message, requestId } } };
  }
  return { status: 500, body: { error: { code: 'internal_error', message: `internal error; quote request id ${requestId} when reporting it`, requestId } } };
}

/**
 * Answers with the error shape. It is the error handler, and also fastify's `frameworkErrors`: failures the
 * router meets before any route or hook runs (a malformed URL escape), which would otherwise get fastify's own body.
 */
export function sendError(err: FastifyError | AppError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = toBody(err, req);
  if (status >= 500) req.log.error({ err }, 'request failed');
  else req.log.info({ code: body.error.code, status }, body.error.message);
  if (status === 429 && err instanceof AppError) {
    const retry = (err.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
    if (retry !== undefined) void reply.header('retry-after', String(retry));
  }
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/** One error shape for everything: AppError, schema failures, fastify's client errors; a 5xx never leaks internals. */
export const errorsPlugin = fp(
  async (app) => {
    app.setErrorHandler(sendError);
    app.setNotFoundHandler((req, reply) => {
      const body: ErrorBody = { error: { code: 'route_not_found', message: `no route ${req.method} ${req.url.split('?')[0]}`, requestId: req.id } };
      return reply.code(404).send(body);
    });
  },
  { name: 'errors' },
);
