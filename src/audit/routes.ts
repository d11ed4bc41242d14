import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { IdString, NullableTimestamp, Page, errorResponses } from '../shared/schemas.js';
import { decodeCursor, toPage } from '../shared/pagination.js';

const AUDIT_ID = /^aud_[0-9a-z]{26}$/;

const AuditEntry = Type.Object({
  id: IdString('aud'),
  object: Type.Literal('audit_entry'),
  action: Type.String(),
  actorType: Type.String(),
  actorId: Type.Union([Type.String(), Type.Null()]),
  targetType: Type.Union([Type.String(), Type.Null()]),
  targetId: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()]),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  createdAt: NullableTimestamp,
});

const AuditQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    action: Type.Optional(Type.String({ pattern: '^[a-z_]+\\.[a-z_]+$', maxLength: 64 })),
  },
  { additionalProperties: false },
);

/** `/v1/audit-log`: admins read who did what in their organization. */
export const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('', {
    schema: { summary: 'Read the audit log', tags: ['audit-log'], querystring: AuditQuery, response: { 200: Page(AuditEntry), ...errorResponses(400, 401, 403, 429) } },
    config: { access: { resource: 'audit_log', role: 'admin' } },
  }, async (req) => {
    const { limit, cursor, action } = req.query;
    const rows = await app.audit.list(req.auth!.organizationId, { limit: limit + 1, beforeId: decodeCursor(cursor, AUDIT_ID), action });
    return toPage(rows, limit, (r) => ({ ...r, object: 'audit_entry' as const, createdAt: r.createdAt.toISOString() }));
  });
};
