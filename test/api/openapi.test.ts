import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import SwaggerParser from '@apidevtools/swagger-parser';
import { testApp, type TestApp } from '../helpers/app.js';

describe('OpenAPI', () => {
  let t: TestApp;
  let doc: { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown; parameters?: unknown[] }>> };
  beforeAll(async () => {
    t = await testApp();
    doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json();
  });
  afterAll(() => t.close());

  it('serves a document that validates as OpenAPI 3', async () => {
    expect(doc.openapi).toMatch(/^3\./);
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('lists every /v1 route the app serves', () => {
    const served = t.app.routeTable
      .filter((r) => r.url.startsWith('/v1'))
      .map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(served.length).toBeGreaterThan(10);
    expect(new Set(served).size).toBe(served.length);
    for (const route of served) expect(documented).toContain(route);
  });

  it('gives every operation a response schema', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses), `${method} ${path}`).not.toHaveLength(0);
      }
    }
  });

  it('documents the request body of agent creation', () => {
    expect(doc.paths['/v1/agents']?.post?.requestBody).toBeDefined();
  });

  it('marks the body of a test call as optional, since a bare POST starts one', () => {
    const op = doc.paths['/v1/agents/{id}/test-calls']?.post as { requestBody?: { required?: boolean } } & Record<string, unknown>;
    expect(op.requestBody?.required).toBe(false);
    expect(Object.keys(op).filter((k) => k.startsWith('x-'))).toEqual([]);
  });

  it('documents the guard\'s 401, 403 and 429 and our 500 on every /v1 operation', () => {
    for (const [path, ops] of Object.entries(doc.paths).filter(([p]) => p.startsWith('/v1'))) {
      for (const [method, op] of Object.entries(ops)) {
        for (const status of ['401', '403', '429', '500']) expect(Object.keys(op.responses), `${method} ${path}`).toContain(status);
      }
    }
  });

  it('documents 400 and 404 on every operation with an id in its path, 413 and 415 on every one with a body', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const statuses = Object.keys(op.responses);
        if (path.includes('{id}')) expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['400', '404']));
        if (op.requestBody) expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['400', '413', '415']));
      }
    }
  });

  it('describes the error body with details and requestId always present', () => {
    const error = (doc as unknown as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: { error: { required: string[] } } } }> }> }>> })
      .paths['/v1/agents']!.get!.responses['401']!.content['application/json']!.schema.properties.error;
    expect(error.required).toEqual(expect.arrayContaining(['code', 'message', 'details', 'requestId']));
  });

  it('serves the interactive docs at /docs', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
  });
});
