import { Type } from 'typebox';
import { IdString, StringEnum, Timestamp } from '../shared/schemas.js';
import { Role } from '../auth/auth.schemas.js';

export const Organization = Type.Object({
  id: IdString('org'),
  object: Type.Literal('organization'),
  name: Type.String(),
  status: StringEnum(['active', 'suspended'] as const),
  createdAt: Timestamp,
});

/** `GET /v1/me`: who the credentials belong to. */
export const Me = Type.Object({
  organization: Organization,
  role: Role,
  scopes: Type.Array(Type.String()),
  actor: Type.Object({ type: StringEnum(['api_key', 'user'] as const), id: Type.String() }),
});

export const Member = Type.Object({
  id: IdString('mem'),
  object: Type.Literal('member'),
  userId: IdString('usr'),
  email: Type.String(),
  name: Type.String(),
  role: Role,
  createdAt: Timestamp,
});

export const MemberCreate = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    role: Role,
    name: Type.Optional(Type.String({ maxLength: 200 })),
    password: Type.Optional(Type.String({ minLength: 12, maxLength: 1024, description: 'for a new account; omitted, one is generated and returned once' })),
  },
  { additionalProperties: false },
);

export const MemberCreated = Type.Object({
  ...Member.properties,
  initialPassword: Type.Union([Type.String(), Type.Null()], { description: 'set only when a new account was created with a generated password' }),
});

export const MemberUpdate = Type.Object({ role: Role }, { additionalProperties: false });
