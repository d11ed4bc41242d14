// LLM text arrives a few characters at a time; TTS wants whole sentences (prosody needs them) but speech
// must start as early as possible. The first chunk of a reply may therefore end at a clause boundary, or
// after its first few words when no boundary has come; later chunks end at sentence boundaries, because
// TTS is faster than playback and can run ahead.

/** Options of the chunker. */
export interface ChunkerOptions {
  /** The first chunk may end at a comma/semicolon/colon/dash once it has at least this many characters. */
  firstClauseMinChars?: number;
  /** With no boundary yet, the first chunk ends after this many complete words. Default 8. */
  firstWords?: number;
  /** Any chunk is cut at the last space before this length, so one run-on sentence cannot stall speech. */
  maxChars?: number;
}

// Words whose trailing period does not end a sentence.
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'a.m', 'p.m', 'approx', 'no', 'inc', 'ltd', 'co', 'mt']);

/** Cuts streamed text into speakable sentences and clauses. */
export class SentenceChunker {
  private buffer = '';
  private emitted = 0;
  private readonly firstClauseMinChars: number;
  private readonly firstWords: number;
  private readonly maxChars: number;

  constructor(options: ChunkerOptions = {}) {
    this.firstClauseMinChars = options.firstClauseMinChars ?? 16;
    this.firstWords = options.firstWords ?? 8;
    this.maxChars = options.maxChars ?? 220;
  }

  /** Adds streamed text; returns the chunks it completed, in order. */
  push(text: string): string[] {
    this.buffer += text;
    const out: string[] = [];
    for (let chunk = this.next(); chunk !== null; chunk = this.next()) out.push(chunk);
    return out;
  }

  /** The rest of the text, once the stream has ended (empty array if only whitespace is left). */
  flush(): string[] {
    const rest = this.buffer.trim();
    this.buffer = '';
    if (!rest) return [];
    this.emitted++;
    return [rest];
  }

  private next(): string | null {
    const end = this.boundary();
    if (end === -1) return null;
    const chunk = this.buffer.slice(0, end).trim();
    this.buffer = this.buffer.slice(end).replace(/^\s+/, '');
    if (!chunk) return this.next();
    this.emitted++;
    return chunk;
  }

  // The index just past the end of the next chunk, or -1 when more text is needed to decide.
  private boundary(): number {
    const b = this.buffer;
    // A terminator only counts once the following character is known (whitespace), so "3.5" and "e.g."
    // mid-stream are not cut.
    const sentence = /[.!?…]+["')\]]*(?=\s)|\n+/g;
    for (let m = sentence.exec(b); m; m = sentence.exec(b)) {
      const end = m.index + m[0].length;
      if (m[0].startsWith('.') && this.isAbbreviation(b.slice(0, m.index))) continue;
      if (b.slice(0, end).trim().length === 0) continue;
      return end;
    }
    if (this.emitted === 0) {
      const clause = /[,;:—–]+(?=\s)/g;
      for (let m = clause.exec(b); m; m = clause.exec(b)) {
        const end = m.index + m[0].length;
        if (b.slice(0, end).trim().length >= this.firstClauseMinChars) return end;
      }
      // A word is complete once the space after it has come.
      const words = /\S+(?=\s)/g;
      for (let m = words.exec(b), n = 1; m; m = words.exec(b), n++) {
        if (n === this.firstWords) return m.index + m[0].length;
      }
    }
    if (b.length > this.maxChars) {
      const space = b.lastIndexOf(' ', this.maxChars);
      return space > 0 ? space : this.maxChars;
    }
    return -1;
  }

  private isAbbreviation(before: string): boolean {
    const word = /([A-Za-z.]+)$/.exec(before)?.[1];
    if (!word) return false;
    if (/^[A-Z]$/.test(word)) return true; // an initial: "J. Smith"
    return ABBREVIATIONS.has(word.toLowerCase());
  }
}
