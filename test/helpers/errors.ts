import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';

/** The `error` object of an error response. */
export interface ApiError {
  code: string;
  message: string;
  details: unknown;
  requestId: string;
}

/**
 * Asserts that a response carries the one error shape, `{"error":{"code","message","details","requestId"}}`
 * (`details` always present, null when there is nothing to add)
 * with nothing else in it, and that the request id is the one in the `x-request-id` header. Returns the error.
 */
export function expectErrorShape(res: LightMyRequestResponse): ApiError {
  const context = `${res.statusCode} ${res.body.slice(0, 500)}`;
  expect(res.headers['content-type'], context).toMatch(/^application\/json/);
  const body = res.json<{ error: ApiError }>();
  expect(Object.keys(body), context).toEqual(['error']);
  expect(body.error, context).toEqual({
    code: expect.stringMatching(/^[a-z_]+$/),
    message: expect.any(String),
    details: 'details' in body.error ? body.error.details : expect.fail(`no details in ${context}`),
    requestId: res.headers['x-request-id'],
  });
  return body.error;
}

/** Asserts status, error code and the error shape in one go; returns the error for further checks. */
export function expectError(res: LightMyRequestResponse, status: number, code: string): ApiError {
  expect(res.statusCode, res.body.slice(0, 500)).toBe(status);
  const error = expectErrorShape(res);
  expect(error.code, error.message).toBe(code);
  return error;
}
