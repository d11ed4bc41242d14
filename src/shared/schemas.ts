import { Type, type TSchema, type Static } from 'typebox';
import { idPattern, type IdPrefix } from './ids.js';

/** A string enum rendered as JSON-schema `enum` (clearer errors and OpenAPI than a union of literals). */
export const StringEnum = <const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

/** An entity id of one prefix, e.g. `agt_...`. */
export const IdString = (prefix: IdPrefix, description?: string) =>
  Type.String({ pattern: idPattern(prefix), description: description ?? `${prefix}_ id`, examples: [`${prefix}_01jd5z3k8m0000000000000000`] });

/**
 * An id of one prefix, or null. No `examples` here: fastify-swagger moves them to OpenAPI's `example` only
 * at the top of a schema, and inside `anyOf` they make the document invalid.
 */
export const NullableIdString = (prefix: IdPrefix, description?: string) =>
  Type.Union([Type.String({ pattern: idPattern(prefix) }), Type.Null()], { description: description ?? `${prefix}_ id or null` });

/** A phone number in E.164 form (the full check, country by country, is `e164Problem` in the telephony provider). */
export const E164String = (description = 'E.164, e.g. +14155550123') => Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description });

/** Path parameters `{ id }` for one entity type. */
export const IdParams = (prefix: IdPrefix) => Type.Object({ id: IdString(prefix) }, { additionalProperties: false });

/** The one error shape every 4xx and 5xx answers with. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable machine-readable code, e.g. not_found, validation_failed' }),
      message: Type.String(),
      details: Type.Unknown({ description: 'what exactly is wrong (fields, limits), or null' }),
      requestId: Type.String({ description: 'quote it when reporting a problem; also in the X-Request-Id header' }),
    }),
  },
  { description: 'Error' },
);

/** Query string of every list endpoint. */
export const PageQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'page size' }),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'the nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);
export type PageQuery = Static<typeof PageQuery>;

/** A page of items plus the cursor of the next page (null on the last page). */
export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });

/** Timestamps travel as ISO-8601 strings. */
export const Timestamp = Type.String({ format: 'date-time' });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

/** Standard error responses a route may return, for OpenAPI. */
export const errorResponses = (...statuses: number[]): Record<number, typeof ErrorResponse> =>
  Object.fromEntries(statuses.map((s) => [s, ErrorResponse]));
