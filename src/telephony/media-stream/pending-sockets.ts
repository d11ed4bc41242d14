/** Releases a reserved slot; calling it more than once is harmless. */
export type ReleaseSlot = () => void;

/**
 * Counts media sockets that have not yet presented an accepted `start`, in total and per client address.
 * Such a socket costs memory and a file descriptor while proving nothing, so their number is capped: a
 * per-address cap keeps one client from taking every slot, the global cap bounds the sum.
 */
export class PendingSockets {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Takes a slot for `address`, or returns null when either cap is reached. */
  reserve(address: string): ReleaseSlot | null {
    const mine = this.byAddress.get(address) ?? 0;
    if (this.total >= this.max || mine >= this.maxPerAddress) return null;
    this.total++;
    this.byAddress.set(address, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
    };
  }

  /** Sockets currently waiting for `start`. */
  get size(): number {
    return this.total;
  }
}
