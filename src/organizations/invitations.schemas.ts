import { Type } from 'typebox';
import { IdString, NullableTimestamp, StringEnum, Timestamp } from '../shared/schemas.js';
import { Role } from '../auth/auth.schemas.js';

// 32 random bytes in base64url are 43 characters; anything far from that is not a token of ours.
const Token = Type.String({ minLength: 20, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'the token from the accept link' });

export const Invitation = Type.Object({
  id: IdString('inv'),
  object: Type.Literal('invitation'),
  email: Type.String(),
  role: Role,
  status: StringEnum(['pending', 'accepted', 'revoked', 'void', 'expired'] as const, { description: 'void: too many wrong passwords were tried with it' }),
  invitedBy: Type.Union([Type.Object({ type: StringEnum(['user', 'api_key'] as const), id: Type.String() }), Type.Null()]),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  acceptedAt: NullableTimestamp,
  revokedAt: NullableTimestamp,
});

export const InvitationCreate = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    role: Role,
  },
  { additionalProperties: false },
);

export const InvitationCreated = Type.Object({
  ...Invitation.properties,
  token: Type.String({ description: 'the one-time token; shown once, pass it (or acceptUrl) to the invitee' }),
  acceptUrl: Type.String({ description: 'PUBLIC_URL/invitations/accept#token=...; the token sits in the fragment, which browsers never send to servers' }),
});

export const InvitationToken = Type.Object({ token: Token }, { additionalProperties: false });

export const InvitationAccept = Type.Object(
  {
    token: Token,
    password: Type.String({ minLength: 1, maxLength: 1024, description: "a new account's password (at least 12 characters), or the existing account's own" }),
    name: Type.Optional(Type.String({ maxLength: 200, description: 'for a new account' })),
  },
  { additionalProperties: false },
);

export const InvitationPreview = Type.Object({
  organization: Type.Object({ name: Type.String() }),
  email: Type.String(),
  role: Role,
  expiresAt: Timestamp,
});
