import type { FastifyBaseLogger } from 'fastify';
import type { UsageMeterBuffer } from '../../billing/usage.service.js';
import type { CallTurnsService, NewTurn, TurnUpdate } from '../../calls/call-turns.service.js';

/**
 * The call's record as it happens: turn rows and usage, written in order and off the hot path. One failing
 * write is logged and does not stop the next.
 */
export class TurnLog {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: { callId: string; turns: CallTurnsService; usage: UsageMeterBuffer; log: FastifyBaseLogger },
  ) {}

  /** Records a turn; resolves with its id (null when the write failed). */
  add(turn: NewTurn): Promise<string | null> {
    const write = this.chain.then(() => this.deps.turns.add(turn));
    this.chain = write.catch((err: unknown) => this.deps.log.error({ err, callId: this.deps.callId }, 'could not record turn'));
    return write.catch(() => null);
  }

  /** Updates the turn `id` will name, once it exists. */
  update(id: Promise<string | null> | null, patch: TurnUpdate): void {
    if (!id) return;
    this.chain = this.chain
      .then(async () => {
        const turnId = await id;
        if (turnId) await this.deps.turns.update(turnId, patch);
      })
      .catch((err: unknown) => this.deps.log.error({ err, callId: this.deps.callId }, 'could not update turn'));
  }

  /** Writes the usage gathered so far, after the records before it. */
  flushUsage(): void {
    this.chain = this.chain.then(() => this.deps.usage.flush()).catch((err: unknown) => this.deps.log.error({ err }, 'could not record usage'));
  }

  /** Resolves when every write so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      const pending = this.chain;
      await pending;
      if (pending === this.chain) return;
    }
  }
}
