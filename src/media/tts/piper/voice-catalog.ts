// The Piper voice catalog (rhasspy/piper-voices' voices.json): its types, fetching it, finding a voice.
// Installing a voice is in voice-install.ts, listing the installed ones in installed-voices.ts.

/** One file of a voice in the catalog, as rhasspy/piper-voices' voices.json describes it. */
export interface CatalogFile {
  size_bytes: number;
  md5_digest: string;
}

/** One voice in voices.json (only the fields we use are guaranteed; the rest are passed through). */
export interface CatalogVoice {
  key: string;
  name: string;
  language: {
    code: string;
    family?: string;
    region?: string;
    name_native?: string;
    name_english?: string;
    country_english?: string;
  };
  quality: string;
  num_speakers: number;
  speaker_id_map?: Record<string, number>;
  /** Repository-relative path (e.g. `en/en_US/lessac/medium/en_US-lessac-medium.onnx`) to size and md5. */
  files: Record<string, CatalogFile>;
  aliases: string[];
}

/** voices.json: voice key to voice. */
export type VoiceCatalog = Record<string, CatalogVoice>;

/** Why a catalog or download operation failed; `code` lets the CLI pick wording, the message already reads well. */
export type VoiceCatalogErrorCode = 'unreachable' | 'bad_catalog' | 'unknown_voice' | 'download_failed' | 'checksum_mismatch' | 'aborted';

/** A failure of the voice catalog or a voice download, with a message a user can act on. */
export class VoiceCatalogError extends Error {
  constructor(
    readonly code: VoiceCatalogErrorCode,
    message: string,
    /** For `unknown_voice`: close matches, best first. */
    readonly suggestions: string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'VoiceCatalogError';
  }
}

/** The three files of an installed voice, by role. */
export type VoiceFileRole = 'model' | 'config' | 'modelCard';

/** A file of one catalog voice: where it is in the repository, where it goes locally, and what it must be. */
export interface VoiceFile {
  role: VoiceFileRole;
  /** Path in the repository, relative to the base URL. */
  remotePath: string;
  /** File name in the voices directory. */
  localName: string;
  sizeBytes: number;
  md5: string;
}

/** Download progress of one file. */
export interface DownloadProgress {
  voice: string;
  file: VoiceFile;
  receivedBytes: number;
  totalBytes: number;
  /** Set once, when the file is complete and verified. */
  done: boolean;
}

/** What `installVoice` did. */
export interface InstallResult {
  voice: CatalogVoice;
  /** Files fetched this time (empty when everything was already installed and intact). */
  downloaded: VoiceFile[];
  /** Files already present with the right size and md5. */
  kept: VoiceFile[];
  modelPath: string;
  configPath: string;
  modelCardPath: string | null;
  /** The license line of the MODEL_CARD, when it has one. */
  license: string | null;
}

/** A voice found in the voices directory. */
export interface InstalledVoice {
  /** File name without `.onnx`, e.g. `en_US-lessac-medium`. */
  name: string;
  modelPath: string;
  configPath: string;
  language: string | null;
  sampleRate: number | null;
  speakers: number | null;
  quality: string | null;
  license: string | null;
  /** Bytes on disk of the model, its config and its model card. */
  sizeBytes: number;
  /** Why the voice cannot be loaded (missing or unparsable config, missing model), or null when it looks fine. */
  problem: string | null;
}

const CATALOG_TIMEOUT_MS = 30_000;

/** The catalog's URL under a piper-voices base URL. */
export function catalogUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/voices.json`;
}

/** The download URL of one repository path. */
export function fileUrl(baseUrl: string, remotePath: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${remotePath.split('/').map(encodeURIComponent).join('/')}`;
}

/** A fetch failure in words (its cause's code or message). */
export function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}

function isVoiceEntry(value: unknown): value is CatalogVoice {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<CatalogVoice>;
  return typeof v.key === 'string' && typeof v.files === 'object' && v.files !== null && typeof v.language?.code === 'string';
}

/**
 * Fetches and validates voices.json from a piper-voices base URL. Entries that do not look like voices are
 * skipped rather than fatal, so one odd entry upstream does not break every pull.
 */
export async function fetchVoiceCatalog(baseUrl: string, options: { signal?: AbortSignal } = {}): Promise<VoiceCatalog> {
  const url = catalogUrl(baseUrl);
  const signals = [AbortSignal.timeout(CATALOG_TIMEOUT_MS)];
  if (options.signal) signals.push(options.signal);
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { signal: AbortSignal.any(signals) });
    text = await res.text();
  } catch (err) {
    if (options.signal?.aborted) throw new VoiceCatalogError('aborted', 'interrupted', [], { cause: err });
    throw new VoiceCatalogError(
      'unreachable',
      `cannot reach the Piper voice catalog at ${url} (${describeFetchError(err)}); check the network, or set PIPER_VOICES_URL to a mirror of rhasspy/piper-voices`,
      [],
      { cause: err },
    );
  }
  if (!res.ok) {
    throw new VoiceCatalogError(
      'unreachable',
      `the Piper voice catalog at ${url} answered HTTP ${res.status}; PIPER_VOICES_URL must point at a copy of rhasspy/piper-voices (a directory holding voices.json)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new VoiceCatalogError('bad_catalog', `${url} is not JSON; PIPER_VOICES_URL must point at a copy of rhasspy/piper-voices`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new VoiceCatalogError('bad_catalog', `${url} is not a Piper voice catalog (expected an object of voices)`);
  }
  const catalog: VoiceCatalog = {};
  for (const [key, entry] of Object.entries(parsed)) {
    if (isVoiceEntry(entry)) catalog[key] = { ...entry, aliases: Array.isArray(entry.aliases) ? entry.aliases : [] };
  }
  if (Object.keys(catalog).length === 0) throw new VoiceCatalogError('bad_catalog', `${url} lists no Piper voices`);
  return catalog;
}

/** A voice by key or alias; exact first, then ignoring case and a trailing `.onnx`. */
export function findVoice(catalog: VoiceCatalog, name: string): CatalogVoice | undefined {
  const exact = catalog[name] ?? Object.values(catalog).find((v) => v.aliases.includes(name));
  if (exact) return exact;
  const wanted = name.replace(/\.onnx$/i, '').toLowerCase();
  return Object.values(catalog).find((v) => v.key.toLowerCase() === wanted || v.aliases.some((a) => a.toLowerCase() === wanted));
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Voices a mistyped name probably meant: same locale first (`en_US-...`), then the same speaker in another
 * locale or quality, then the same language family, then anything spelled nearly alike.
 */
export function suggestVoices(catalog: VoiceCatalog, name: string, max = 10): string[] {
  const wanted = name.replace(/\.onnx$/i, '').toLowerCase().replace(/^([a-z]{2,3})-([a-z]{2})(?=-|$)/, '$1_$2');
  const tokens = wanted.split('-');
  const locale = tokens[0] ?? '';
  const family = locale.split('_')[0] ?? '';
  const scored = Object.values(catalog).map((v) => {
    const key = v.key.toLowerCase();
    const [vLocale = '', vSpeaker = ''] = key.split('-');
    const distance = levenshtein(wanted, key);
    let rank = 4;
    if (vLocale === locale) rank = 0;
    else if (vSpeaker && tokens.includes(vSpeaker)) rank = 1;
    else if (family && vLocale.split('_')[0] === family) rank = 2;
    else if (distance <= Math.max(2, Math.floor(wanted.length / 3))) rank = 3;
    return { key: v.key, rank, distance };
  });
  return scored
    .filter((s) => s.rank < 4)
    .sort((a, b) => a.rank - b.rank || a.distance - b.distance || a.key.localeCompare(b.key))
    .slice(0, max)
    .map((s) => s.key);
}

/** `findVoice`, or a VoiceCatalogError('unknown_voice') carrying close matches. */
export function resolveVoice(catalog: VoiceCatalog, name: string): CatalogVoice {
  const voice = findVoice(catalog, name);
  if (voice) return voice;
  const suggestions = suggestVoices(catalog, name);
  const hint = suggestions.length ? ` Close matches: ${suggestions.join(', ')}.` : '';
  throw new VoiceCatalogError('unknown_voice', `no Piper voice "${name}" in the catalog.${hint}`, suggestions);
}

/** The model, config and (when the catalog has one) model card of a voice, with their local names. */
export function voiceFiles(voice: CatalogVoice): VoiceFile[] {
  const files: VoiceFile[] = [];
  const pick = (role: VoiceFileRole, test: (path: string) => boolean, localName: string, required: boolean) => {
    const entry = Object.entries(voice.files).find(([path]) => test(path));
    if (!entry) {
      if (required) throw new VoiceCatalogError('bad_catalog', `the catalog lists no ${localName.slice(voice.key.length)} file for ${voice.key}`);
      return;
    }
    const [remotePath, meta] = entry;
    files.push({ role, remotePath, localName, sizeBytes: meta.size_bytes, md5: meta.md5_digest.toLowerCase() });
  };
  pick('model', (p) => p.endsWith('.onnx'), `${voice.key}.onnx`, true);
  pick('config', (p) => p.endsWith('.onnx.json'), `${voice.key}.onnx.json`, true);
  pick('modelCard', (p) => p === 'MODEL_CARD' || p.endsWith('/MODEL_CARD'), `${voice.key}.MODEL_CARD`, false);
  return files;
}

/** Voices whose language code starts with `language` (`en` matches en_US and en_GB; `en-US` means en_US). */
export function filterByLanguage(catalog: VoiceCatalog, language?: string): CatalogVoice[] {
  const prefix = language?.replace('-', '_').toLowerCase();
  return Object.values(catalog)
    .filter((v) => !prefix || v.language.code.toLowerCase().startsWith(prefix))
    .sort((a, b) => a.key.localeCompare(b.key));
}
