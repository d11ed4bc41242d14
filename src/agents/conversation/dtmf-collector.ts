// Digits typed within this interval form one input; '#' ends it at once.
const DTMF_GAP_MS = 1500;

/** Gathers the keys a caller presses into one input: ended by '#', or by a pause. */
export class DtmfCollector {
  private digits = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly onInput: (digits: string) => void,
    private readonly gapMs = DTMF_GAP_MS,
  ) {}

  /** One key. */
  press(digit: string): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (digit !== '#') this.digits += digit;
    if (digit === '#') this.submit();
    else this.timer = setTimeout(() => this.submit(), this.gapMs);
  }

  /** Forgets pending keys (the call ended). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.digits = '';
  }

  private submit(): void {
    this.timer = null;
    const digits = this.digits;
    this.digits = '';
    if (digits) this.onInput(digits);
  }
}
