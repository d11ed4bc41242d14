import type { Role } from '../organizations/organizations.table.js';
import { ROLES } from '../organizations/organizations.table.js';

/** The resources routes are grouped into; API key scopes name them. */
export const RESOURCES = ['agents', 'api_keys', 'members', 'audit_log', 'calls', 'phone_numbers', 'campaigns', 'billing', 'webhooks'] as const;
export type Resource = (typeof RESOURCES)[number];

/** A scope grants a resource (`agents`), read-only access to it (`agents:read`), or everything (`*`). */
export const SCOPE_PATTERN = `^(\\*|(${RESOURCES.join('|')})(:read)?)$`;

/** Who is calling, established by the auth plugin from an API key or a session cookie. */
export interface Principal {
  organizationId: string;
  role: Role;
  scopes: readonly string[];
  actor: { type: 'api_key'; id: string } | { type: 'user'; id: string; sessionId: string };
  /** Present for cookie sessions: mutations must echo it in `X-CSRF-Token`. */
  csrfToken?: string;
}

/** What a route needs: a minimum role, on a resource unless the route only describes the caller. */
export interface Access {
  resource?: Resource;
  role: Role;
}

/** True when `held` is at least `needed` in the viewer < member < admin < owner order. */
export function roleAtLeast(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** Why a principal may not do something, or null when it may. */
export function denyReason(principal: Principal, access: Access): string | null {
  if (!roleAtLeast(principal.role, access.role)) {
    return `this needs the ${access.role} role${access.resource ? ` on ${access.resource}` : ''}; you have ${principal.role}`;
  }
  if (!access.resource) return null;
  const s = principal.scopes;
  const scoped = s.includes('*') || s.includes(access.resource) || (access.role === 'viewer' && s.includes(`${access.resource}:read`));
  if (!scoped) {
    const need = access.role === 'viewer' ? `${access.resource} or ${access.resource}:read` : access.resource;
    return `this API key lacks the ${need} scope`;
  }
  return null;
}

/**
 * Why a principal may not make someone a member with `role` (invite, or change a role to it), or null when
 * it may. A member's session holds every scope, so only credentials holding every scope, and at least that
 * role, cover all the member will be able to do; anything less would let a narrow key mint a wider login.
 */
export function grantDenyReason(principal: Principal, role: Role): string | null {
  if (role === 'owner' && principal.role !== 'owner') return 'only an owner can grant the owner role';
  if (!roleAtLeast(principal.role, role)) return `granting the ${role} role needs the ${role} role or higher; you have ${principal.role}`;
  if (!principal.scopes.includes('*')) {
    return `granting a role needs credentials with the * scope, since a member can use every resource their role allows; this API key has ${principal.scopes.join(', ')}`;
  }
  return null;
}
