// Installing a Piper voice from the catalog: each file downloaded beside its place, checked against the
// catalog's size and md5, then renamed into place.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { describeFetchError, fileUrl, voiceFiles, VoiceCatalogError, type CatalogVoice, type DownloadProgress, type InstallResult, type VoiceFile, type VoiceFileRole } from './voice-catalog.js';

const TEMP_SUFFIX = '.part';

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

/** The license a model card names, or null when it names none or cannot be read. */
export async function readLicense(path: string): Promise<string | null> {
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
