import { pgTable, text, timestamp, jsonb, integer, index } from 'drizzle-orm/pg-core';
import { organizations } from '../organizations/organizations.table.js';
import type {
  VoiceSettings,
  SttSettings,
  TurnDetectionSettings,
  LlmSettings,
  InterruptionSettings,
  VoicemailSettings,
  RecordingSettings,
  AgentTool,
} from './agents.schemas.js';

/**
 * Agent definitions. Nested settings are jsonb: they are read whole by the call path and validated by the
 * API schema on the way in. Deleting an agent only sets `deleted_at`, so call records keep their agent.
 */
export const agents = pgTable(
  'agents',
  {
    id: text('id').primaryKey(),
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    systemPrompt: text('system_prompt').notNull().default(''),
    firstMessage: text('first_message').notNull().default(''),
    language: text('language').notNull().default('en-US'),
    variables: jsonb('variables').$type<Record<string, string>>().notNull().default({}),
    voice: jsonb('voice').$type<VoiceSettings>().notNull(),
    stt: jsonb('stt').$type<SttSettings>().notNull(),
    turnDetection: jsonb('turn_detection').$type<TurnDetectionSettings>().notNull().default({ mode: 'adaptive', minSilenceMs: 250, maxSilenceMs: 900 }),
    llm: jsonb('llm').$type<LlmSettings>().notNull(),
    interruption: jsonb('interruption').$type<InterruptionSettings>().notNull(),
    maxDurationSeconds: integer('max_duration_seconds').notNull(),
    silenceTimeoutSeconds: integer('silence_timeout_seconds').notNull(),
    voicemail: jsonb('voicemail').$type<VoicemailSettings>().notNull(),
    recording: jsonb('recording').$type<RecordingSettings>().notNull().default({ enabled: false, disclosure: 'This call is recorded.' }),
    tools: jsonb('tools').$type<AgentTool[]>().notNull().default([]),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [index('agents_org_idx').on(t.organizationId, t.id)],
);

export type AgentRow = typeof agents.$inferSelect;
