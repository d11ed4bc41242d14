import { and, desc, eq, isNull, lt, sql } from 'drizzle-orm';
import { Ajv } from 'ajv';
import type { Db } from '../db/client.js';
import { newId } from '../shared/ids.js';
import { invalid, notFound } from '../shared/errors.js';
import { checkOutboundUrl, isOutboundUrlProblem } from '../shared/outbound-url.js';
import type { SecretBox } from '../shared/secret-box.js';
import { agents, type AgentRow } from './agents.table.js';
import type { Agent, AgentCreate, AgentTool, AgentToolInput, AgentUpdate, LlmSettings, SttSettings, VoiceSettings, VoicemailSettings, InterruptionSettings, RecordingSettings, TurnDetectionSettings } from './agents.schemas.js';
import { promptVariables, templateProblem } from './prompt.js';
import { openToolSecrets, redactToolSecrets, sealStoredToolSecrets, sealToolSecrets, type SealSweep } from './tool-secrets.js';

/** Settings a new agent gets for whatever its creator leaves out. */
export const AGENT_DEFAULTS = {
  systemPrompt: '',
  firstMessage: '',
  language: 'en-US',
  variables: {} as Record<string, string>,
  voice: { provider: 'piper', voiceId: 'en_US-lessac-medium', speed: 1 } satisfies VoiceSettings,
  stt: { provider: 'deepgram', model: 'nova-3', endpointingMs: 400 } satisfies SttSettings,
  turnDetection: { mode: 'adaptive', minSilenceMs: 250, maxSilenceMs: 900 } satisfies TurnDetectionSettings,
  llm: { provider: 'openai', model: 'gpt-4o-mini', temperature: 0.7, fallbacks: [] } satisfies LlmSettings,
  interruption: { enabled: true, minSpeechMs: 200 } satisfies InterruptionSettings,
  maxDurationSeconds: 1800,
  silenceTimeoutSeconds: 15,
  voicemail: { action: 'hangup' } satisfies VoicemailSettings,
  recording: { enabled: false, disclosure: 'This call is recorded.' } satisfies RecordingSettings,
  tools: [] as AgentTool[],
};

// Checks tool argument schemas against the JSON Schema meta-schema; validateSchema keeps nothing per call.
const metaSchemaChecker = new Ajv({ strict: false });

/**
 * Why a tool's argument schema is not valid JSON Schema, or null. The compile (which also proves $refs resolve
 * and patterns are regexes) uses a throwaway instance: a shared one caches every schema it compiles, forever,
 * and refuses a second schema with the same $id, so the same tool could not be saved twice.
 */
function jsonSchemaProblem(schema: object): string | null {
  try {
    if (!metaSchemaChecker.validateSchema(schema)) return metaSchemaChecker.errorsText(metaSchemaChecker.errors);
    new Ajv({ strict: false, meta: false, validateSchema: false, addUsedSchema: false }).compile(schema);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

type AgentFields = Omit<typeof agents.$inferInsert, 'id' | 'organizationId' | 'createdAt' | 'updatedAt' | 'deletedAt'>;

/** What the service needs besides the database. */
export interface AgentsServiceOptions {
  /** `TOOLS_ALLOW_PRIVATE_NETWORK`: tool URLs may name loopback, private and other special addresses. */
  allowPrivateNetwork: boolean;
  /** Encrypts tool header values at rest. */
  secrets: SecretBox;
}

/** Checks what the JSON schema cannot: cross-field rules and things that would only fail mid-call. */
function assertWorkable(a: Required<AgentFields>, opts: { allowPrivateNetwork: boolean }): void {
  for (const [field, text] of [['systemPrompt', a.systemPrompt], ['firstMessage', a.firstMessage]] as const) {
    const problem = templateProblem(text);
    if (problem) throw invalid(`${field}: ${problem}`, { field });
  }
  if (a.turnDetection.minSilenceMs > a.turnDetection.maxSilenceMs) {
    throw invalid('turnDetection.minSilenceMs must not exceed turnDetection.maxSilenceMs', { field: 'turnDetection.minSilenceMs' });
  }
  if (a.voicemail.action === 'leave_message' && !a.voicemail.message) {
    throw invalid('voicemail.message is required when voicemail.action is leave_message', { field: 'voicemail.message' });
  }
  const seen = new Set<string>();
  a.llm.fallbacks.forEach((f, i) => {
    const key = `${f.provider}/${f.model}`;
    if (key === `${a.llm.provider}/${a.llm.model}` || seen.has(key)) {
      throw invalid(`llm.fallbacks.${i} repeats ${key}`, { field: `llm.fallbacks.${i}` });
    }
    seen.add(key);
  });
  const names = new Set<string>();
  a.tools.forEach((tool, i) => {
    const field = `tools.${i}`;
    if (names.has(tool.name)) throw invalid(`${field}: tool name ${tool.name} is used twice`, { field });
    names.add(tool.name);
    if (tool.type === 'builtin') {
      if (tool.name === 'transfer_call' && !tool.destinations?.length) throw invalid(`${field}: transfer_call needs destinations (name and E.164 number each)`, { field: `${field}.destinations` });
      if (tool.name !== 'transfer_call' && tool.destinations) throw invalid(`${field}.destinations is for transfer_call only`, { field: `${field}.destinations` });
      return;
    }
    // Checked again at call time (safeFetch): a name can resolve anywhere later. Here: what is wrong already.
    const checked = checkOutboundUrl(tool.url, opts);
    if (isOutboundUrlProblem(checked)) {
      const privateNetwork = checked.reason === 'blocked_address' || checked.reason === 'localhost';
      const message = privateNetwork
        ? `${field}.url is refused: ${checked.message}; agents' tools may not reach loopback or private networks (an operator can allow it with TOOLS_ALLOW_PRIVATE_NETWORK=true)`
        : `${field}.url ${checked.message}`;
      throw invalid(message, { field: `${field}.url` });
    }
    if ((tool.parameters as { type?: unknown }).type !== 'object') {
      throw invalid(`${field}.parameters must be a JSON Schema with "type": "object"`, { field: `${field}.parameters` });
    }
    const problem = jsonSchemaProblem(tool.parameters);
    if (problem) throw invalid(`${field}.parameters is not a valid JSON Schema: ${problem}`, { field: `${field}.parameters` });
  });
}

/** Resolves the optional parts of tools as written into the stored form. */
function normalizeTools(tools: AgentToolInput[]): AgentTool[] {
  return tools.map((t) => (t.type === 'http' ? { ...t, method: t.method ?? 'POST', timeoutMs: t.timeoutMs ?? 5000 } : t));
}

/** The API view of a stored agent: tool header values redacted (they are write-only). */
export function toAgent(r: AgentRow): Agent {
  return agentView(r, redactToolSecrets(r.tools));
}

function agentView(r: AgentRow, tools: AgentTool[]): Agent {
  return {
    id: r.id,
    object: 'agent',
    name: r.name,
    systemPrompt: r.systemPrompt,
    firstMessage: r.firstMessage,
    language: r.language,
    variables: r.variables,
    voice: r.voice,
    stt: r.stt,
    turnDetection: r.turnDetection,
    llm: r.llm,
    interruption: r.interruption,
    maxDurationSeconds: r.maxDurationSeconds,
    silenceTimeoutSeconds: r.silenceTimeoutSeconds,
    voicemail: r.voicemail,
    recording: r.recording,
    tools,
    promptVariables: promptVariables(r.systemPrompt, r.firstMessage),
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/** Agent definitions of one organization. */
export class AgentsService {
  constructor(
    private readonly db: Db,
    private readonly options: AgentsServiceOptions,
  ) {}

  /** Creates an agent, filling defaults for what the input leaves out. */
  async create(organizationId: string, input: AgentCreate): Promise<Agent> {
    const fields: Required<AgentFields> = { ...AGENT_DEFAULTS, ...input, tools: normalizeTools(input.tools ?? []) };
    assertWorkable(fields, this.options);
    fields.tools = sealToolSecrets(fields.tools, [], this.options.secrets);
    const [row] = await this.db.insert(agents).values({ id: newId('agt'), organizationId, ...fields }).returning();
    return toAgent(row!);
  }

  /** Newest first; deleted agents are not listed. */
  async list(organizationId: string, opts: { limit: number; beforeId?: string }): Promise<Agent[]> {
    const rows = await this.db
      .select()
      .from(agents)
      .where(and(eq(agents.organizationId, organizationId), isNull(agents.deletedAt), opts.beforeId ? lt(agents.id, opts.beforeId) : undefined))
      .orderBy(desc(agents.id))
      .limit(opts.limit);
    return rows.map(toAgent);
  }

  /** One live agent of the organization, or 404 (also for another organization's agent). */
  async get(organizationId: string, id: string): Promise<Agent> {
    return toAgent(await this.row(this.db, organizationId, id));
  }

  /**
   * The agent as a call runs it: tool header values decrypted. Only the call path uses this; API routes get
   * {@link get}, which never holds a secret. Throws SecretKeyError when this server's key cannot open them.
   */
  async forCall(organizationId: string, id: string): Promise<Agent> {
    const row = await this.row(this.db, organizationId, id);
    return agentView(row, openToolSecrets(row.tools, this.options.secrets, `agent ${id}`));
  }

  /**
   * Encrypts tool header values stored in plain text (rows from before encryption) and counts values sealed
   * with a key other than this server's. Idempotent; `serve` runs it at start.
   */
  async sealStoredSecrets(): Promise<SealSweep> {
    return sealStoredToolSecrets(this.db, this.options.secrets);
  }

  /** Applies a partial update; the result must still be workable. */
  async update(organizationId: string, id: string, patch: AgentUpdate): Promise<Agent> {
    return this.db.transaction(async (tx) => {
      const current = await this.row(tx, organizationId, id, true);
      const changes = { ...patch, tools: patch.tools ? normalizeTools(patch.tools) : undefined };
      assertWorkable({ ...current, ...changes, tools: changes.tools ?? current.tools }, this.options);
      // "[redacted]" sent back (GET, edit, PATCH) keeps the stored value of that header of that tool.
      if (changes.tools) changes.tools = sealToolSecrets(changes.tools, current.tools, this.options.secrets);
      const [row] = await tx
        .update(agents)
        .set({ ...changes, updatedAt: sql`now()` })
        .where(and(eq(agents.id, id), eq(agents.organizationId, organizationId)))
        .returning();
      return toAgent(row!);
    });
  }

  /** Soft-deletes: the agent disappears from the API, while call records keep pointing at it. */
  async delete(organizationId: string, id: string): Promise<void> {
    const gone = await this.db
      .update(agents)
      .set({ deletedAt: sql`now()` })
      .where(and(eq(agents.id, id), eq(agents.organizationId, organizationId), isNull(agents.deletedAt)))
      .returning({ id: agents.id });
    if (gone.length === 0) throw notFound('agent', id);
  }

  private async row(db: Db, organizationId: string, id: string, lock = false): Promise<AgentRow> {
    const q = db
      .select()
      .from(agents)
      .where(and(eq(agents.id, id), eq(agents.organizationId, organizationId), isNull(agents.deletedAt)));
    const [row] = lock ? await q.for('update') : await q;
    if (!row) throw notFound('agent', id);
    return row;
  }
}
