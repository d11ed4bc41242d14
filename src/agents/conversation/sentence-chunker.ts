// LLM text arrives a few characters at a time; TTS wants whole sentences (prosody needs them) but speech
// must start as early as possible. The first chunk of a reply may therefore end at a clause boundary, or
// after its first few words when no boundary has come, and it ends as soon as its punctuation arrives
// (after a letter, "course," and "us." cannot go on as "3,5" or "3.5" do); later chunks end at sentence
// boundaries once the next character is known, because TTS is faster than playback and can run ahead.

/** Options of the chunker. */
export interface ChunkerOptions {
  /**
   * The first chunk may end at a comma/semicolon/colon/dash once it has at least this many words. Default 2:
   * "Of course," goes ahead; "Sure," alone would be over before the next sentence's audio is ready.
   */
  firstClauseMinWords?: number;
  /**
   * With no boundary yet, the first chunk ends after this many complete words (or the first word after
   * them that does not lead on, as "the", "for" or a number before its unit do). Default 4: the caller-wait
   * budget (ARCHITECTURE.md §9) leaves about 100 ms of tokens for the first chunk; with `previous_text`
   * (ElevenLabs) the rest of the sentence carries on from it.
   */
  firstWords?: number;
  /** Any chunk is cut at the last space before this length, so one run-on sentence cannot stall speech. */
  maxChars?: number;
}

// Words a phrase does not end on: articles, prepositions, conjunctions, possessives, "to".
const LEADS_ON = new Set([
  'a', 'an', 'the', 'to', 'of', 'for', 'in', 'on', 'at', 'by', 'with', 'from', 'into', 'about', 'and', 'or', 'but', 'so',
  'my', 'your', 'our', 'their', 'his', 'her', 'its', 'this', 'that', 'these', 'those', 'is', 'are', 'was', 'be', 'will', 'can', 'i', 'we', 'you',
]);

// Words whose trailing period does not end a sentence.
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'a.m', 'p.m', 'approx', 'no', 'inc', 'ltd', 'co', 'mt']);

/** Cuts streamed text into speakable sentences and clauses. */
export class SentenceChunker {
  private buffer = '';
  private emitted = 0;
  private readonly firstClauseMinWords: number;
  private readonly firstWords: number;
  private readonly maxChars: number;

  constructor(options: ChunkerOptions = {}) {
    this.firstClauseMinWords = options.firstClauseMinWords ?? 2;
    this.firstWords = options.firstWords ?? 4;
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
    // The first chunk takes the earliest of its own ends, so text pushed at once cuts where a stream would.
    const end = this.emitted === 0 ? Math.min(this.sentenceEnd(b), this.firstClauseEnd(b), this.firstWordsEnd(b), this.punctuationAtEnd(b)) : this.sentenceEnd(b);
    if (end !== Infinity) return end;
    if (b.length > this.maxChars) {
      const space = b.lastIndexOf(' ', this.maxChars);
      return space > 0 ? space : this.maxChars;
    }
    return -1;
  }

  // A terminator only counts once the following character is known (whitespace), so "3.5" and "e.g."
  // mid-stream are not cut.
  private sentenceEnd(b: string): number {
    const sentence = /[.!?…]+["')\]]*(?=\s)|\n+/g;
    for (let m = sentence.exec(b); m; m = sentence.exec(b)) {
      const end = m.index + m[0].length;
      if (m[0].startsWith('.') && this.isAbbreviation(b.slice(0, m.index))) continue;
      if (b.slice(0, end).trim().length === 0) continue;
      return end;
    }
    return Infinity;
  }

  // A clause boundary (`,;:` and dashes) after enough words; at the buffer's end only right after a letter.
  private firstClauseEnd(b: string): number {
    const clause = /[,;:—–]+(?=\s)|(?<=[A-Za-z])[,;:—–]+$/g;
    for (let m = clause.exec(b); m; m = clause.exec(b)) {
      const end = m.index + m[0].length;
      if (wordCount(b.slice(0, end)) >= this.firstClauseMinWords) return end;
    }
    return Infinity;
  }

  // A word is complete once the space after it has come; a phrase does not end on "the", "for", "and".
  private firstWordsEnd(b: string): number {
    const words = /\S+(?=\s)/g;
    for (let m = words.exec(b), n = 1; m; m = words.exec(b), n++) {
      if (n >= this.firstWords && !leadsOn(m[0])) return m.index + m[0].length;
    }
    return Infinity;
  }

  // A sentence end that is the last thing in the buffer, right after a letter (not "3." or "Dr.").
  private punctuationAtEnd(b: string): number {
    const last = /[A-Za-z][.!?…]+["')\]]*$/.exec(b);
    if (!last) return Infinity;
    if (last[0][1] === '.' && this.isAbbreviation(b.slice(0, last.index + 1))) return Infinity;
    return b.length;
  }

  private isAbbreviation(before: string): boolean {
    const word = /([A-Za-z.]+)$/.exec(before)?.[1];
    if (!word) return false;
    if (/^[A-Z]$/.test(word)) return true; // an initial: "J. Smith"
    return ABBREVIATIONS.has(word.toLowerCase());
  }
}

// "the", "for", "and" ... or a number ("3,500" before "dollars"): a phrase goes on after it.
function leadsOn(word: string): boolean {
  return LEADS_ON.has(word.toLowerCase()) || /^[$€£]?[\d.,:]+%?$/.test(word);
}

function wordCount(text: string): number {
  const t = text.trim();
  return t ? t.split(/\s+/).length : 0;
}
