import { Type } from 'typebox';
import { ROLES } from '../organizations/organizations.table.js';
import { SCOPE_PATTERN } from './access.js';
import { IdString, NullableTimestamp, StringEnum, Timestamp } from '../shared/schemas.js';

export const Role = StringEnum(ROLES, { description: 'viewer reads, member writes, admin manages keys and members, owner manages billing' });

/** An API key; the secret appears only in the create response. */
export const ApiKey = Type.Object({
  id: IdString('key'),
  object: Type.Literal('api_key'),
  name: Type.String(),
  prefix: Type.String({ description: 'the first characters of the key, to tell keys apart' }),
  role: Role,
  scopes: Type.Array(Type.String()),
  createdAt: Timestamp,
  lastUsedAt: NullableTimestamp,
  expiresAt: NullableTimestamp,
  revokedAt: NullableTimestamp,
  createdBy: Type.Union(
    [
      Type.Object({ type: Type.Literal('user'), id: Type.String(), email: Type.String() }),
      Type.Object({ type: Type.Literal('api_key'), id: Type.String() }),
      Type.Null(),
    ],
    { description: 'who made the key: a person (in the dashboard), or another key (id "cli" for vocelio keys create); null if unknown' },
  ),
});

export const ApiKeyCreated = Type.Object({
  ...ApiKey.properties,
  secret: Type.String({ description: 'the key itself; shown once, store it now' }),
});

export const ApiKeyCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    role: Type.Optional(Role),
    scopes: Type.Optional(
      Type.Array(Type.String({ pattern: SCOPE_PATTERN }), {
        minItems: 1,
        maxItems: 20,
        description: '"*" (default), a resource such as "agents", or read-only "agents:read"',
      }),
    ),
    expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const ApiKeyListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    includeRevoked: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export const LoginBody = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    organizationId: Type.Optional(IdString('org')),
  },
  { additionalProperties: false },
);

export const SessionInfo = Type.Object({
  user: Type.Object({ id: Type.String(), email: Type.String(), name: Type.String() }),
  organization: Type.Object({ id: Type.String(), name: Type.String() }),
  role: Role,
  csrfToken: Type.String({ description: 'send it as X-CSRF-Token with every cookie-authenticated change' }),
  expiresAt: Timestamp,
});
