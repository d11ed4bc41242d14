// Text -> phonemes for Piper voices, grouped by sentence (Piper synthesizes one sentence per model run).
//
// Licensing: espeak-ng is GPL-3.0, so it never links into this process. EspeakPhonemizer runs Debian's
// `espeak-ng` binary as a separate program and reads its IPA output; TextPhonemizer (voices trained on
// characters, `phoneme_type: "text"`) needs nothing outside this file.
import { spawn } from 'node:child_process';

/** Turns text into phonemes, one array per sentence; each phoneme is one entry of the voice's id map. */
export interface Phonemizer {
  /** `voice` is the phonemizer's voice or language (espeak-ng voice, e.g. `en-us`); not a path. */
  phonemize(text: string, voice: string): Promise<string[][]>;
}

// A sentence ends at a run of . ! ? (and closing quotes or brackets) followed by whitespace or the end.
const SENTENCE_BREAK = /(?<=[.!?…]+["'”’)\]]*)\s+/u;

/** Splits text into trimmed, non-empty sentences at sentence punctuation followed by whitespace. */
export function splitSentences(text: string): string[] {
  return text
    .replace(/\s+/gu, ' ')
    .split(SENTENCE_BREAK)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Phonemes of `phoneme_type: "text"` voices: the text's Unicode codepoints, lowercased and NFD-decomposed
 * (accents become their own combining codepoints), as piper-phonemize's `phonemize_codepoints` does.
 * Unlike Piper, which treats the whole text as one sentence, this splits at sentence punctuation so long
 * text is synthesized (and streamed) sentence by sentence; whitespace runs become one space.
 */
export class TextPhonemizer implements Phonemizer {
  async phonemize(text: string, _voice?: string): Promise<string[][]> {
    return splitSentences(text).map((sentence) => [...sentence.toLowerCase().normalize('NFD')]);
  }
}

/** Options of {@link EspeakPhonemizer}. */
export interface EspeakPhonemizerOptions {
  /** The espeak-ng executable. Default `espeak-ng` (on PATH). */
  binary?: string;
  /** A run taking longer is killed and fails. Default 10 s. */
  timeoutMs?: number;
}

/** A clause of the input and the punctuation that ended it ('' at the end of text). */
interface Clause {
  text: string;
  terminator: string;
}

const CLAUSE_PUNCTUATION = '.!?,;:';
const SENTENCE_TERMINATORS = '.!?';
// espeak-ng marks words it reads with another language's rules as "(en)word(fr)"; Piper drops the flags.
const LANGUAGE_FLAGS = /\([^)]*\)/gu;
const ESPEAK_VOICE = /^[A-Za-z0-9][A-Za-z0-9_+-]*$/;

/**
 * IPA phonemes from espeak-ng, matching what Piper's voices were trained on: `--ipa` without tie
 * characters, language-switch flags removed, each clause's punctuation kept as a phoneme (plus a space after
 * , ; :), codepoints NFD-decomposed, sentences ending at . ! ?. The text is cut into clauses here and fed to
 * one espeak-ng process a clause per line, so its output lines map back to clauses; when espeak-ng breaks
 * a clause further (a dash, say), each clause gets its own process so the mapping stays exact.
 */
export class EspeakPhonemizer implements Phonemizer {
  private readonly binary: string;
  private readonly timeoutMs: number;

  constructor(options: EspeakPhonemizerOptions = {}) {
    this.binary = options.binary ?? 'espeak-ng';
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async phonemize(text: string, voice: string): Promise<string[][]> {
    if (!ESPEAK_VOICE.test(voice)) throw new Error(`invalid espeak-ng voice ${JSON.stringify(voice)}`);
    const clauses = splitClauses(text);
    if (clauses.length === 0) return [];
    let lines = await this.run(voice, clauses.map((c) => c.text).join('\n'));
    if (lines.length !== clauses.length) {
      lines = await Promise.all(clauses.map(async (c) => (await this.run(voice, c.text)).join(' ')));
    }
    const sentences: string[][] = [];
    let current: string[] = [];
    clauses.forEach((clause, i) => {
      let phonemes = lines[i]!.replace(LANGUAGE_FLAGS, '').replace(/\s+/gu, ' ').trim() + clause.terminator;
      if (clause.terminator !== '' && ',;:'.includes(clause.terminator)) phonemes += ' ';
      current.push(...phonemes.normalize('NFD'));
      if (clause.terminator !== '' && SENTENCE_TERMINATORS.includes(clause.terminator)) {
        sentences.push(current);
        current = [];
      }
    });
    if (current.length > 0) sentences.push(current);
    return sentences.map(trimTrailingSpace).filter((s) => s.length > 0);
  }

  /** Runs espeak-ng on `input` and returns its output lines (one per clause it saw). */
  private run(voice: string, input: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      // Arguments, never a shell: the text goes through stdin, so it cannot become an option.
      const child = spawn(this.binary, ['-q', '--ipa', '-v', voice], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`espeak-ng took longer than ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => {
        // EPIPE when espeak-ng exits early (bad voice); the exit handler reports why.
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          e.code === 'ENOENT'
            ? new Error(
                `espeak-ng is not installed (could not run "${this.binary}"): install the espeak-ng package ` +
                  '(e.g. apt-get install espeak-ng) to use Piper voices with phoneme_type "espeak"',
              )
            : new Error(`could not run ${this.binary}: ${e.message}`),
        );
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const stderr = Buffer.concat(err).toString('utf8').trim();
        if (code !== 0) {
          reject(new Error(`espeak-ng failed for voice ${JSON.stringify(voice)} (exit ${code})${stderr ? `: ${stderr}` : ''}`));
          return;
        }
        const lines = Buffer.concat(out).toString('utf8').split('\n');
        if (lines.at(-1) === '') lines.pop();
        resolve(lines);
      });
      child.stdin.end(`${input}\n`);
    });
  }
}

/** Cuts text at clause punctuation followed by whitespace or the end; the punctuation run's last mark ends it. */
function splitClauses(text: string): Clause[] {
  const normalized = text.replace(/\s+/gu, ' ').trim();
  const clauses: Clause[] = [];
  let start = 0;
  for (let i = 0; i < normalized.length; i++) {
    if (!CLAUSE_PUNCTUATION.includes(normalized[i]!)) continue;
    let end = i;
    while (end + 1 < normalized.length && CLAUSE_PUNCTUATION.includes(normalized[end + 1]!)) end++;
    if (end + 1 < normalized.length && normalized[end + 1] !== ' ') {
      i = end;
      continue; // "3.50", "a,b": not a clause boundary
    }
    pushClause(clauses, normalized.slice(start, i), normalized[end]!);
    start = end + 1;
    i = end;
  }
  pushClause(clauses, normalized.slice(start), '');
  return clauses;
}

function pushClause(clauses: Clause[], raw: string, terminator: string): void {
  const text = raw.trim();
  // Punctuation with no words before it ("Hi! ... okay") adds nothing espeak-ng would speak.
  if (text.length > 0) clauses.push({ text, terminator });
}

function trimTrailingSpace(phonemes: string[]): string[] {
  let end = phonemes.length;
  while (end > 0 && phonemes[end - 1] === ' ') end--;
  return phonemes.slice(0, end);
}
