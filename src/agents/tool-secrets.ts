import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { invalid } from '../shared/errors.js';
import { SecretBox, SecretKeyError } from '../shared/secret-box.js';
import { agents } from './agents.table.js';
import type { AgentTool } from './agents.schemas.js';

/** What the API shows instead of a tool header's value; sent back on PATCH, it keeps the stored value. */
export const REDACTED = '[redacted]';

/** What a sweep of stored tool secrets did. */
export interface SealSweep {
  /** Plain-text header values now encrypted. */
  sealed: number;
  /** Values encrypted with a key other than this server's: calls using them fail until the key is set. */
  unreadable: number;
  /** The ids of those other keys. */
  foreignKeyIds: string[];
}

const mapHeaders = (tools: readonly AgentTool[], f: (value: string, name: string, tool: AgentTool & { type: 'http' }, index: number) => string): AgentTool[] =>
  tools.map((tool, index) =>
    tool.type === 'http' && tool.headers ? { ...tool, headers: Object.fromEntries(Object.entries(tool.headers).map(([name, value]) => [name, f(value, name, tool, index)])) } : tool,
  );

/** Tools as the API shows them: header names kept, every value replaced by {@link REDACTED}. */
export function redactToolSecrets(tools: readonly AgentTool[]): AgentTool[] {
  return mapHeaders(tools, () => REDACTED);
}

/**
 * Encrypts the header values of tools as written. {@link REDACTED} keeps the value `stored` has for the same
 * header (names compared case-insensitively, as HTTP does) of the tool with the same name.
 */
export function sealToolSecrets(tools: readonly AgentTool[], stored: readonly AgentTool[], box: SecretBox): AgentTool[] {
  return mapHeaders(tools, (value, name, tool, index) => {
    if (value !== REDACTED) return box.seal(value);
    const before = stored.find((s) => s.type === 'http' && s.name === tool.name);
    const kept = before?.type === 'http' ? Object.entries(before.headers ?? {}).find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1] : undefined;
    if (kept === undefined) {
      const field = `tools.${index}.headers.${name}`;
      throw invalid(`${field}: "${REDACTED}" keeps a stored value, but tool ${tool.name} has no stored ${name} header; send the value itself`, { field });
    }
    return SecretBox.isSealed(kept) ? kept : box.seal(kept);
  });
}

/** Decrypts header values for the call path; plain text from before encryption passes through. */
export function openToolSecrets(tools: readonly AgentTool[], box: SecretBox, context: string): AgentTool[] {
  return mapHeaders(tools, (value, name, tool) => {
    try {
      return box.open(value);
    } catch (err) {
      if (!(err instanceof SecretKeyError)) throw err;
      throw new SecretKeyError(`${context}, tool ${tool.name}, header ${name}: ${err.message}`, err.keyId);
    }
  });
}

/**
 * Encrypts every plain-text tool header value in the database (rows written before encryption existed),
 * deleted agents included. Each row is rewritten only if it is unchanged since it was read, so a PATCH racing
 * the sweep wins (it stores sealed values itself); running it again finds nothing to do.
 */
export async function sealStoredToolSecrets(db: Db, box: SecretBox): Promise<SealSweep> {
  const rows = await db.select({ id: agents.id, tools: agents.tools }).from(agents).where(sql`${agents.tools}::text like '%"headers"%'`);
  const sweep: SealSweep = { sealed: 0, unreadable: 0, foreignKeyIds: [] };
  for (const row of rows) {
    let plain = 0;
    const tools = mapHeaders(row.tools, (value) => {
      const keyId = SecretBox.keyIdOf(value);
      if (!SecretBox.isSealed(value)) {
        plain++;
        return box.seal(value);
      }
      if (keyId !== box.keyId) {
        sweep.unreadable++;
        if (keyId && !sweep.foreignKeyIds.includes(keyId)) sweep.foreignKeyIds.push(keyId);
      }
      return value;
    });
    if (plain === 0) continue;
    const updated = await db
      .update(agents)
      .set({ tools })
      .where(and(eq(agents.id, row.id), sql`${agents.tools} = ${JSON.stringify(row.tools)}::jsonb`))
      .returning({ id: agents.id });
    if (updated.length > 0) sweep.sealed += plain;
  }
  return sweep;
}
