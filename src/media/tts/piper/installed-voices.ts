// The Piper voices installed in a directory, with what their configs say and what is wrong with them.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { InstalledVoice } from './voice-catalog.js';
import { readLicense } from './voice-install.js';

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
