import type { Config } from '../config.js';
import {
  catalogUrl,
  fetchVoiceCatalog,
  filterByLanguage,
  resolveVoice,
  voiceFiles,
  VoiceCatalogError,
  type CatalogVoice,
  type DownloadProgress,
  type InstalledVoice,
  type VoiceCatalog,
} from '../media/tts/piper/voice-catalog.js';
import { installVoice } from '../media/tts/piper/voice-install.js';
import { listInstalledVoices } from '../media/tts/piper/installed-voices.js';
import { CommandError, parseCommandArgs, UsageError } from './args.js';
import { createProgressBar, formatBytes, type ProgressBar } from './progress.js';

const OPTIONS = {
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  available: { type: 'boolean' },
  language: { type: 'string' },
} as const;

/** `vocelio voices pull <name> [--force]` and `vocelio voices list [--json] [--available [--language en]]`. */
export async function runVoices(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, OPTIONS);
  const [action, ...rest] = positionals;
  switch (action) {
    case 'pull': {
      if (rest.length !== 1) throw new UsageError('voices pull needs one voice name, e.g. vocelio voices pull en_US-lessac-medium');
      if (values.json || values.available || values.language) throw new UsageError('voices pull takes only --force');
      return pull(config, rest[0]!, values.force ?? false);
    }
    case 'list': {
      if (rest.length) throw new UsageError(`voices list takes no voice name (got "${rest[0]}")`);
      if (values.force) throw new UsageError('--force is for voices pull');
      if (values.available) return listAvailable(config, values.language, values.json ?? false);
      return listInstalled(config, values.language, values.json ?? false);
    }
    default:
      throw new UsageError(action ? `unknown voices action "${action}"; use pull or list` : 'voices needs pull or list');
  }
}

/** Turns library failures into CommandErrors whose one line tells the user what to do. */
function asCommandError(err: unknown, config: Config): never {
  if (!(err instanceof VoiceCatalogError)) throw err;
  if (err.code === 'unknown_voice') {
    throw new CommandError(`${err.message} Run "vocelio voices list --available" to see all voices (catalog: ${catalogUrl(config.piperVoicesUrl)}).`);
  }
  throw new CommandError(err.message);
}

async function loadCatalog(config: Config, signal?: AbortSignal): Promise<VoiceCatalog> {
  try {
    return await fetchVoiceCatalog(config.piperVoicesUrl, { signal });
  } catch (err) {
    return asCommandError(err, config);
  }
}

async function pull(config: Config, name: string, force: boolean): Promise<void> {
  const err = (line: string) => process.stderr.write(line);
  // Ctrl-C stops the download; installVoice removes its temp files before we exit.
  const interrupt = new AbortController();
  const onSignal = () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let bar: ProgressBar | null = null;
  const onProgress = (p: DownloadProgress) => {
    if (p.receivedBytes === 0 && !p.done) bar = createProgressBar({ label: p.file.localName, total: p.totalBytes });
    if (!bar) return;
    bar.update(p.receivedBytes);
    if (p.done) {
      bar.finish();
      bar = null;
    }
  };

  try {
    const catalog = await loadCatalog(config, interrupt.signal);
    let voice: CatalogVoice;
    try {
      voice = resolveVoice(catalog, name);
    } catch (e) {
      return asCommandError(e, config);
    }
    if (voice.key !== name) err(`${name} is ${voice.key}\n`);
    const total = voiceFiles(voice).reduce((sum, f) => sum + f.sizeBytes, 0);
    err(`Pulling ${voice.key} (${formatBytes(total)}) from ${config.piperVoicesUrl} into ${config.voicesDir}\n`);

    let result;
    try {
      result = await installVoice({ baseUrl: config.piperVoicesUrl, voicesDir: config.voicesDir, voice, force, signal: interrupt.signal, onProgress });
    } catch (e) {
      (bar as ProgressBar | null)?.abandon(e instanceof VoiceCatalogError && e.code === 'aborted' ? 'interrupted' : 'failed');
      if (e instanceof VoiceCatalogError && e.code === 'aborted') {
        err('Interrupted: partial downloads removed.\n');
        process.exitCode = 130;
        return;
      }
      return asCommandError(e, config);
    }

    const what = `${voice.key} (${voice.language.code}, ${voice.quality}, ${voice.num_speakers} speaker${voice.num_speakers === 1 ? '' : 's'})`;
    if (result.downloaded.length === 0) {
      console.log(`${what} is already installed in ${config.voicesDir} and matches the catalog's checksums; use --force to download it again.`);
    } else {
      console.log(`Installed ${what}: ${result.modelPath}`);
    }
    // Piper voices come from datasets with different terms; the user has to see them before deploying one.
    if (result.license) console.log(`License: ${result.license} (see ${result.modelCardPath}; voices have different licenses, check it fits your use)`);
    else if (result.modelCardPath) console.log(`License: read ${result.modelCardPath} before using this voice; voices have different licenses.`);
    else console.log('License: the catalog has no model card for this voice; check its license at the source before using it.');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function listInstalled(config: Config, language: string | undefined, json: boolean): Promise<void> {
  const prefix = language?.replace('-', '_').toLowerCase();
  const voices = (await listInstalledVoices(config.voicesDir)).filter(
    (v) => !prefix || (v.language ?? '').toLowerCase().startsWith(prefix),
  );
  if (json) {
    process.stdout.write(`${JSON.stringify(voices.map(installedJson), null, 2)}\n`);
    return;
  }
  if (voices.length === 0) {
    console.log(`No voices installed in ${config.voicesDir}. Get one with: vocelio voices pull en_US-lessac-medium`);
    return;
  }
  const rows = voices.map((v) => [
    v.name,
    v.language ?? '?',
    v.quality ?? '?',
    v.sampleRate ? `${v.sampleRate} Hz` : '?',
    v.speakers === null ? '?' : `${v.speakers} spk`,
    formatBytes(v.sizeBytes),
    v.problem ? `BROKEN: ${v.problem}` : 'ok',
  ]);
  printTable(['NAME', 'LANGUAGE', 'QUALITY', 'RATE', 'SPEAKERS', 'SIZE', 'STATUS'], rows);
  console.log(`\n${voices.length} voice${voices.length === 1 ? '' : 's'} in ${config.voicesDir}`);
}

function installedJson(v: InstalledVoice) {
  return {
    name: v.name,
    language: v.language,
    quality: v.quality,
    sampleRate: v.sampleRate,
    speakers: v.speakers,
    sizeBytes: v.sizeBytes,
    license: v.license,
    path: v.modelPath,
    broken: v.problem !== null,
    problem: v.problem,
  };
}

async function listAvailable(config: Config, language: string | undefined, json: boolean): Promise<void> {
  const catalog = await loadCatalog(config);
  const installed = new Set((await listInstalledVoices(config.voicesDir)).filter((v) => !v.problem).map((v) => v.name));
  const voices = filterByLanguage(catalog, language);
  const model = (v: CatalogVoice) => voiceFiles(v).find((f) => f.role === 'model')?.sizeBytes ?? 0;
  if (json) {
    const out = voices.map((v) => ({
      key: v.key,
      language: v.language.code,
      languageName: v.language.name_english ?? null,
      country: v.language.country_english ?? null,
      quality: v.quality,
      speakers: v.num_speakers,
      sizeBytes: model(v),
      aliases: v.aliases,
      installed: installed.has(v.key),
    }));
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  if (voices.length === 0) {
    console.log(`No voices for language "${language}" in the catalog at ${catalogUrl(config.piperVoicesUrl)}.`);
    return;
  }
  const rows = voices.map((v) => [
    v.key,
    [v.language.name_english, v.language.country_english].filter(Boolean).join(', ') || v.language.code,
    v.quality,
    String(v.num_speakers),
    formatBytes(model(v)),
    installed.has(v.key) ? 'installed' : '',
  ]);
  printTable(['NAME', 'LANGUAGE', 'QUALITY', 'SPEAKERS', 'SIZE', ''], rows);
  console.log(`\n${voices.length} voice${voices.length === 1 ? '' : 's'}; install one with: vocelio voices pull <name>`);
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}
