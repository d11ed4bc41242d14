import { and, desc, eq, isNull, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { newId } from '../shared/ids.js';
import { AppError, conflict, notFound } from '../shared/errors.js';
import type { AgentsService } from '../agents/agents.service.js';
import type { AvailableNumber, OwnedNumber, TelephonyProvider } from '../telephony/provider/telephony-provider.js';
import { TelephonyError } from '../telephony/provider/telephony-provider.js';
import { phoneNumbers, type PhoneNumberRow } from './numbers.table.js';

// Postgres unique_violation, as thrown by pg or PGlite; drizzle wraps it in `cause`.
const isUniqueViolation = (err: unknown): boolean => {
  for (let e = err; e instanceof Error; e = e.cause) if ((e as { code?: unknown }).code === '23505') return true;
  return false;
};

/** The URLs a number's calls report to; built from PUBLIC_URL. */
export interface WebhookUrls {
  voiceUrl: string;
  statusCallbackUrl: string;
}

/** Phone numbers: search at the carrier, buy, import, assign to agents, release. */
export class NumbersService {
  constructor(
    private readonly db: Db,
    private readonly agents: AgentsService,
    private readonly provider: TelephonyProvider | null,
    private readonly urls: WebhookUrls,
  ) {}

  /** Numbers the carrier offers. */
  async search(q: { country: string; areaCode?: string; contains?: string; limit: number }): Promise<AvailableNumber[]> {
    return this.call((p) => p.searchNumbers(q));
  }

  /** The organization's live numbers, newest first. */
  async list(organizationId: string, page: { limit: number; beforeId?: string; agentId?: string }): Promise<PhoneNumberRow[]> {
    return this.db
      .select()
      .from(phoneNumbers)
      .where(
        and(
          eq(phoneNumbers.organizationId, organizationId),
          isNull(phoneNumbers.releasedAt),
          page.beforeId ? lt(phoneNumbers.id, page.beforeId) : undefined,
          page.agentId ? eq(phoneNumbers.agentId, page.agentId) : undefined,
        ),
      )
      .orderBy(desc(phoneNumbers.id))
      .limit(page.limit);
  }

  /** One live number of the organization, or 404. */
  async get(organizationId: string, id: string): Promise<PhoneNumberRow> {
    const [row] = await this.db.select().from(phoneNumbers).where(and(eq(phoneNumbers.id, id), eq(phoneNumbers.organizationId, organizationId), isNull(phoneNumbers.releasedAt)));
    if (!row) throw notFound('phone number', id);
    return row;
  }

  /** The live number `e164` with its organization (inbound calls), or null. */
  async findLive(e164: string): Promise<PhoneNumberRow | null> {
    const [row] = await this.db.select().from(phoneNumbers).where(and(eq(phoneNumbers.phoneNumber, e164), isNull(phoneNumbers.releasedAt)));
    return row ?? null;
  }

  /** Buys `phoneNumber` with our webhooks configured on it. */
  async buy(organizationId: string, input: { phoneNumber: string; agentId?: string | null; friendlyName?: string }): Promise<PhoneNumberRow> {
    if (input.agentId) await this.agents.get(organizationId, input.agentId);
    const owned = await this.call((p) => p.buyNumber({ phoneNumber: input.phoneNumber, ...this.urls }));
    return this.insert(organizationId, owned, input);
  }

  /** Takes over a number the account already owns (by its provider SID), pointing its webhooks at us. */
  async import(organizationId: string, input: { providerSid: string; agentId?: string | null; friendlyName?: string }): Promise<PhoneNumberRow> {
    if (input.agentId) await this.agents.get(organizationId, input.agentId);
    const [taken] = await this.db.select({ id: phoneNumbers.id }).from(phoneNumbers).where(and(eq(phoneNumbers.providerSid, input.providerSid), isNull(phoneNumbers.releasedAt)));
    if (taken) throw conflict(`number ${input.providerSid} is already in use`);
    await this.call((p) => p.getNumber(input.providerSid));
    const owned = await this.call((p) => p.configureNumber(input.providerSid, this.urls));
    return this.insert(organizationId, owned, input);
  }

  /** Assigns the number to an agent (or to none: calls then hear that the number is not in service). */
  async update(organizationId: string, id: string, patch: { agentId?: string | null; friendlyName?: string }): Promise<PhoneNumberRow> {
    await this.get(organizationId, id);
    if (patch.agentId) await this.agents.get(organizationId, patch.agentId);
    const [row] = await this.db
      .update(phoneNumbers)
      .set({ ...(patch.agentId !== undefined ? { agentId: patch.agentId } : {}), ...(patch.friendlyName !== undefined ? { friendlyName: patch.friendlyName } : {}), updatedAt: sql`now()` })
      .where(and(eq(phoneNumbers.id, id), eq(phoneNumbers.organizationId, organizationId)))
      .returning();
    return row!;
  }

  /** Releases the number at the carrier, then marks it released (its calls keep pointing at it). */
  async release(organizationId: string, id: string): Promise<void> {
    const row = await this.get(organizationId, id);
    try {
      await this.call((p) => p.releaseNumber(row.providerSid));
    } catch (err) {
      // Already gone at the carrier (released in its console): ours to mark released all the same.
      if (!(err instanceof AppError && err.status === 404)) throw err;
    }
    await this.db.update(phoneNumbers).set({ releasedAt: sql`now()`, agentId: null, updatedAt: sql`now()` }).where(eq(phoneNumbers.id, row.id));
  }

  private async insert(organizationId: string, owned: OwnedNumber, input: { agentId?: string | null; friendlyName?: string }): Promise<PhoneNumberRow> {
    try {
      return await this.insertRow(organizationId, owned, input);
    } catch (err) {
      // Two simultaneous imports of one SID both pass the check in `import`; the live-number indexes let one win.
      if (isUniqueViolation(err)) throw conflict(`number ${owned.phoneNumber} is already in use`);
      throw err;
    }
  }

  private async insertRow(organizationId: string, owned: OwnedNumber, input: { agentId?: string | null; friendlyName?: string }): Promise<PhoneNumberRow> {
    const [row] = await this.db
      .insert(phoneNumbers)
      .values({
        id: newId('pn'),
        organizationId,
        provider: this.provider!.name,
        providerSid: owned.providerSid,
        phoneNumber: owned.phoneNumber,
        friendlyName: input.friendlyName ?? owned.friendlyName ?? '',
        agentId: input.agentId ?? null,
        capabilities: owned.capabilities,
      })
      .returning();
    return row!;
  }

  // Carrier errors become API errors: the caller's mistakes 4xx, the carrier's failures 502.
  private async call<T>(fn: (p: TelephonyProvider) => Promise<T>): Promise<T> {
    if (!this.provider) throw new AppError('telephony_not_configured', 'no telephony provider is configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN', 503);
    try {
      return await fn(this.provider);
    } catch (err) {
      if (err instanceof TelephonyError) throw err.toAppError();
      throw err;
    }
  }
}
