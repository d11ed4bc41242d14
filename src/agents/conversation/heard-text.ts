// What the caller heard of a sentence the agent was saying when they cut in. Twilio plays what we send in
// real time, so the pacer's timeline says how many ms of a chunk's audio have played; the text is cut at the
// word that time reached, using the TTS's own character timings when it gave them and otherwise assuming
// the characters are spread evenly over the audio.

/** A chunk of speech: its text and where its audio sits on the caller's timeline. */
export interface SpokenChunk {
  text: string;
  /** Where its audio starts on the caller's timeline, ms. */
  startMs: number;
  /** Its audio queued so far, ms. */
  audioMs: number;
  /** All of its audio is queued (its mark follows). */
  complete: boolean;
  /** Per character of `text`, when its sound ends, ms from the start of the chunk's audio (TTS timings; empty: none). */
  charEndsMs?: number[];
}

// The pace assumed for a chunk whose audio is still arriving when nothing else in the utterance tells:
// about 15 characters a second, an ordinary speaking rate.
const DEFAULT_MS_PER_CHAR = 65;

/**
 * The part of `chunk` heard once `playedMs` of the timeline has played: the whole text once its audio has
 * played, nothing before it starts, else the words the played time reached.
 * `msPerChar` estimates the length of audio not yet received (the pace of the utterance's earlier chunks).
 */
export function heardPart(chunk: SpokenChunk, playedMs: number, msPerChar = DEFAULT_MS_PER_CHAR): string {
  const into = playedMs - chunk.startMs;
  if (into <= 0 || chunk.audioMs === 0) return '';
  // A chunk still being synthesized: its length is at least what arrived, and about its text at this pace.
  const duration = chunk.complete ? chunk.audioMs : Math.max(chunk.audioMs, chunk.text.length * msPerChar);
  const reached = Math.min(into, chunk.audioMs);
  if (chunk.complete && reached >= duration) return chunk.text;
  const chars = chunk.charEndsMs?.length ? chunk.charEndsMs.filter((end) => end <= reached).length : (chunk.text.length * reached) / duration;
  return cutAtWord(chunk.text, chars);
}

/**
 * The leading words of `text` that `chars` characters of speech reached. A word counts once speech has
 * passed its middle: a caller recognizes a word from most of it, and the error either way stays within
 * half a word.
 */
export function cutAtWord(text: string, chars: number): string {
  let end = 0;
  for (const m of text.matchAll(/\S+/g)) {
    if (m.index + m[0].length / 2 > chars) break;
    end = m.index + m[0].length;
  }
  return text.slice(0, end);
}
