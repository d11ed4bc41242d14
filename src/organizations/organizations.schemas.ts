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

export const MemberUpdate = Type.Object({ role: Role }, { additionalProperties: false });
