import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

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
const TEMP_SUFFIX = '.part';

/** The catalog's URL under a piper-voices base URL. */
export function catalogUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/voices.json`;
}

/** The download URL of one repository path. */
export function fileUrl(baseUrl: string, remotePath: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${remotePath.split('/').map(encodeURIComponent).join('/')}`;
}

function describeFetchError(err: unknown): string {
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

/** Size and md5 of a local file, or null when it does not exist. */
async function fileDigest(path: string): Promise<{ size: number; md5: string } | null> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return null;
  }
  const hash = createHash('md5');
  await pipeline(createReadStream(path), hash);
  return { size, md5: hash.digest('hex') };
}

/** Whether a local file matches the catalog's size and md5 (size first: it is free and catches most damage). */
async function isIntact(path: string, file: VoiceFile): Promise<boolean> {
  try {
    if ((await stat(path)).size !== file.sizeBytes) return false;
  } catch {
    return false;
  }
  return (await fileDigest(path))?.md5 === file.md5;
}

/**
 * Streams one file to `tempPath`, hashing as it goes; throws (leaving the temp file for the caller to
 * remove) when the server fails, sends more than the catalog says, or the size or md5 differ.
 */
async function downloadTo(
  url: string,
  tempPath: string,
  file: VoiceFile,
  signal: AbortSignal | undefined,
  onBytes: (received: number) => void,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    if (signal?.aborted) throw new VoiceCatalogError('aborted', 'interrupted', [], { cause: err });
    throw new VoiceCatalogError('download_failed', `cannot download ${url} (${describeFetchError(err)})`, [], { cause: err });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new VoiceCatalogError('download_failed', `downloading ${url} failed: HTTP ${res.status}`);
  }
  const hash = createHash('md5');
  let received = 0;
  try {
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          received += chunk.length;
          // A wrong or hostile server must not fill the disk: stop as soon as it overshoots.
          if (received > file.sizeBytes) {
            throw new VoiceCatalogError('checksum_mismatch', `${url} sent more than the ${file.sizeBytes} bytes the catalog lists; the download was discarded`);
          }
          hash.update(chunk);
          onBytes(received);
          yield chunk;
        }
      },
      createWriteStream(tempPath, { flags: 'wx', mode: 0o600 }),
      { signal },
    );
  } catch (err) {
    if (err instanceof VoiceCatalogError) throw err;
    if (signal?.aborted) throw new VoiceCatalogError('aborted', 'interrupted', [], { cause: err });
    throw new VoiceCatalogError('download_failed', `downloading ${url} failed after ${received} bytes (${describeFetchError(err)})`, [], { cause: err });
  }
  if (received !== file.sizeBytes) {
    throw new VoiceCatalogError('checksum_mismatch', `${url} ended after ${received} of ${file.sizeBytes} bytes; the download was discarded, try again`);
  }
  const md5 = hash.digest('hex');
  if (md5 !== file.md5) {
    throw new VoiceCatalogError('checksum_mismatch', `${url} has md5 ${md5} but the catalog lists ${file.md5}; the download was discarded`);
  }
}

/** The `* License: ...` line of a piper-voices MODEL_CARD (with the dataset URL when it says "See URL"). */
export function licenseFromModelCard(text: string): string | null {
  const license = /^\s*[*-]\s*License:\s*(.+?)\s*$/im.exec(text)?.[1];
  if (!license) return null;
  if (/^see url$/i.test(license)) {
    const url = /^\s*[*-]\s*URL:\s*(.+?)\s*$/im.exec(text)?.[1];
    return url ? `see ${url}` : license;
  }
  return license;
}

async function readLicense(path: string): Promise<string | null> {
  try {
    return licenseFromModelCard(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Downloads a catalog voice into `voicesDir` as `<key>.onnx`, `<key>.onnx.json` and `<key>.MODEL_CARD`.
 * Every file streams to a hidden temp file and is checked against the catalog's size and md5; only when all
 * are good are they renamed into place, the model last, so `<key>.onnx` never exists half-written or
 * without its config. Files already present and intact are kept unless `force`. On any failure or abort
 * the temp files are removed.
 */
export async function installVoice(options: {
  baseUrl: string;
  voicesDir: string;
  voice: CatalogVoice;
  force?: boolean;
  signal?: AbortSignal;
  /** Called when a file download starts, as bytes arrive, and once more with `done` when it is verified. */
  onProgress?: (progress: DownloadProgress) => void;
}): Promise<InstallResult> {
  const { baseUrl, voicesDir, voice, signal, onProgress } = options;
  const files = voiceFiles(voice);
  // Owner-only like everything under DATA_DIR, whatever the process umask.
  await mkdir(voicesDir, { recursive: true, mode: 0o700 });

  const kept: VoiceFile[] = [];
  const pending: VoiceFile[] = [];
  for (const file of files) {
    if (!options.force && (await isIntact(join(voicesDir, file.localName), file))) kept.push(file);
    else pending.push(file);
  }

  const temps = new Map<VoiceFile, string>();
  try {
    for (const file of pending) {
      if (signal?.aborted) throw new VoiceCatalogError('aborted', 'interrupted');
      const temp = join(voicesDir, `.${file.localName}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
      temps.set(file, temp);
      const report = (receivedBytes: number, done: boolean) =>
        onProgress?.({ voice: voice.key, file, receivedBytes, totalBytes: file.sizeBytes, done });
      report(0, false);
      await downloadTo(fileUrl(baseUrl, file.remotePath), temp, file, signal, (n) => report(n, false));
      report(file.sizeBytes, true);
    }
    // Config and card first: a model without its config would show up as a broken voice.
    const order: VoiceFileRole[] = ['config', 'modelCard', 'model'];
    for (const role of order) {
      const file = pending.find((f) => f.role === role);
      if (!file) continue;
      await rename(temps.get(file)!, join(voicesDir, file.localName));
      temps.delete(file);
    }
  } finally {
    await Promise.all([...temps.values()].map((t) => unlink(t).catch(() => {})));
  }

  const card = files.find((f) => f.role === 'modelCard');
  const modelCardPath = card ? join(voicesDir, card.localName) : null;
  return {
    voice,
    downloaded: pending,
    kept,
    modelPath: join(voicesDir, `${voice.key}.onnx`),
    configPath: join(voicesDir, `${voice.key}.onnx.json`),
    modelCardPath,
    license: modelCardPath ? await readLicense(modelCardPath) : null,
  };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

interface PiperConfigSummary {
  language: string | null;
  sampleRate: number | null;
  speakers: number | null;
  quality: string | null;
}

function summarizeConfig(raw: unknown): PiperConfigSummary {
  if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
  const c = raw as {
    audio?: { sample_rate?: unknown; quality?: unknown };
    language?: { code?: unknown };
    espeak?: { voice?: unknown };
    num_speakers?: unknown;
  };
  const sampleRate = c.audio?.sample_rate;
  if (typeof sampleRate !== 'number') throw new Error('no audio.sample_rate');
  const str = (v: unknown) => (typeof v === 'string' && v ? v : null);
  return {
    // Older voices predate `language` and only name their espeak voice.
    language: str(c.language?.code) ?? str(c.espeak?.voice),
    sampleRate,
    speakers: typeof c.num_speakers === 'number' ? c.num_speakers : null,
    quality: str(c.audio?.quality),
  };
}

/**
 * The voices in `voicesDir`: every `<name>.onnx` and every `<name>.onnx.json` without a model. A voice
 * whose config is missing or unparsable, or whose model is missing, is listed with a `problem`.
 */
export async function listInstalledVoices(voicesDir: string): Promise<InstalledVoice[]> {
  let entries: string[];
  try {
    entries = await readdir(voicesDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const names = new Set<string>();
  for (const entry of entries) {
    if (entry.startsWith('.')) continue; // temp files of downloads in progress
    if (entry.endsWith('.onnx')) names.add(entry.slice(0, -'.onnx'.length));
    else if (entry.endsWith('.onnx.json')) names.add(entry.slice(0, -'.onnx.json'.length));
  }
  const voices = await Promise.all(
    [...names].sort().map(async (name): Promise<InstalledVoice> => {
      const modelPath = join(voicesDir, `${name}.onnx`);
      const configPath = join(voicesDir, `${name}.onnx.json`);
      const cardPath = join(voicesDir, `${name}.MODEL_CARD`);
      const hasModel = entries.includes(`${name}.onnx`);
      let summary: PiperConfigSummary = { language: null, sampleRate: null, speakers: null, quality: null };
      let problem: string | null = null;
      if (!entries.includes(`${name}.onnx.json`)) {
        problem = `config ${name}.onnx.json is missing`;
      } else {
        try {
          summary = summarizeConfig(JSON.parse(await readFile(configPath, 'utf8')));
        } catch (err) {
          problem = `config ${name}.onnx.json is unreadable (${(err as Error).message})`;
        }
      }
      if (!hasModel) problem = `model ${name}.onnx is missing`;
      const quality = summary.quality ?? /-(x_low|low|medium|high)$/.exec(name)?.[1] ?? null;
      const sizes = await Promise.all([modelPath, configPath, cardPath].map(sizeOf));
      return {
        name,
        modelPath,
        configPath,
        ...summary,
        quality,
        license: await readLicense(cardPath),
        sizeBytes: sizes.reduce((a, b) => a + b, 0),
        problem,
      };
    }),
  );
  return voices;
}
