// The schema barrel: every table, for drizzle's relational queries and for drizzle-kit.
export * from '../organizations/organizations.table.js';
export * from '../auth/auth.table.js';
export * from '../audit/audit.table.js';
export * from '../agents/agents.table.js';
export * from '../calls/calls.table.js';
export * from '../billing/usage.table.js';
export * from '../numbers/numbers.table.js';
export * from '../organizations/invitations.table.js';
export * from '../events/events.table.js';
export * from '../calls/lifecycle/serve-nodes.table.js';
