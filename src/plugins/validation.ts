import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { AppError } from '../shared/errors.js';

const common: Options = {
  // Unknown fields are errors, not silently dropped: a typo in a field name must not pass unnoticed.
  removeAdditional: false,
  useDefaults: true,
  allErrors: false,
  strict: false,
  discriminator: true,
};

function makeAjv(coerceTypes: boolean | 'array'): Ajv {
  const ajv = new Ajv({ ...common, coerceTypes });
  addFormats.default(ajv);
  return ajv;
}

/**
 * JSON bodies are validated strictly (a string "5" is not a number); params and query strings are text
 * by nature, so they are coerced.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = makeAjv(false);
  const coercing = makeAjv('array');
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? strict : coercing;
    return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
  };
}

// Postgres text and jsonb cannot hold U+0000 and jsonb refuses unpaired UTF-16 surrogates; JSON.stringify (used
// to write jsonb) overflows the stack on deep nesting. Each would pass the schema and then fail as a 500.
const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorableText = (text: string): boolean => text.includes('\u0000') || UNPAIRED_SURROGATE.test(text);
const MAX_BODY_DEPTH = 64;

/** The first place in a parsed JSON body that could not be stored, or null. Iterative: the body may nest deeply. */
export function unstorableInBody(body: unknown): { field: string; message: string } | null {
  const field = (path: string[]) => path.join('.') || '(root)';
  const stack: { value: unknown; path: string[] }[] = [{ value: body, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (unstorableText(value)) return { field: field(path), message: 'must not contain NUL characters or unpaired surrogates' };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_BODY_DEPTH) return { field: field(path), message: `must not nest deeper than ${MAX_BODY_DEPTH} levels` };
    for (const [key, child] of Object.entries(value)) {
      if (unstorableText(key)) return { field: field([...path, key]), message: 'must not contain NUL characters or unpaired surrogates in its name' };
      stack.push({ value: child, path: [...path, key] });
    }
  }
  return null;
}

/**
 * preValidation hook: answers 400 validation_failed, like a schema failure, to a body, query string or path
 * parameter the database could not store (a `%00` in a query string would otherwise reach a query as a 500).
 */
export async function rejectUnstorableInput(req: FastifyRequest): Promise<void> {
  // Query strings and path parameters only where the route reads them (declares a schema): a route that
  // ignores its query string has nothing to store. Bodies always: webhooks parse forms without a schema.
  const schema = (req.routeOptions.schema ?? {}) as { params?: unknown; querystring?: unknown };
  const parts = [['params', schema.params && req.params], ['querystring', schema.querystring && req.query], ['body', req.body]] as const;
  for (const [location, value] of parts) {
    const problem = unstorableInBody(value);
    if (!problem) continue;
    const where = location === 'body' ? 'body' : location === 'params' ? 'path parameter' : 'query parameter';
    throw new AppError('validation_failed', `${where} ${problem.field} ${problem.message}`, 400, [{ location, ...problem }]);
  }
}
