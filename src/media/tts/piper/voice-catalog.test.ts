import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fetchVoiceCatalog,
  findVoice,
  resolveVoice,
  VoiceCatalogError,
  type VoiceCatalog,
} from './voice-catalog.js';
import { installVoice, licenseFromModelCard } from './voice-install.js';
import { listInstalledVoices } from './installed-voices.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** The files of one fake voice, laid out like rhasspy/piper-voices. */
function fakeVoice(key: string, aliases: string[] = []) {
  const [code = '', speaker = '', quality = ''] = key.split('-');
  const dir = `${code.split('_')[0]}/${code}/${speaker}/${quality}`;
  const files = new Map<string, Buffer>([
    [`${dir}/${key}.onnx`, randomBytes(64 * 1024)],
    [`${dir}/${key}.onnx.json`, Buffer.from(JSON.stringify({ audio: { sample_rate: 22050, quality }, language: { code }, num_speakers: 1 }))],
    [`${dir}/MODEL_CARD`, Buffer.from(`# Model card for ${speaker} (${quality})\n\n* Language: ${code}\n\n## Dataset\n\n* URL: https://example.org/${speaker}\n* License: CC BY 4.0\n`)],
  ]);
  const entry = {
    key,
    name: speaker,
    language: { code, family: code.split('_')[0], region: code.split('_')[1], name_native: 'English', name_english: 'English', country_english: 'United States' },
    quality,
    num_speakers: 1,
    speaker_id_map: {},
    files: Object.fromEntries([...files].map(([p, b]) => [p, { size_bytes: b.length, md5_digest: md5(b) }])),
    aliases,
  };
  return { key, entry, files };
}

const VOICES = [
  fakeVoice('en_US-lessac-medium', ['en-us-lessac-medium']),
  fakeVoice('en_US-amy-low'),
  fakeVoice('en_GB-alan-low'),
  fakeVoice('de_DE-thorsten-medium'),
];

/** A local piper-voices repository; `override` serves other bytes for a path than the catalog describes. */
class FakeRepo {
  readonly requests: string[] = [];
  readonly override = new Map<string, Buffer>();
  /** Paths whose response sends half the body and then stalls. */
  readonly stall = new Set<string>();
  private server!: Server;
  baseUrl = '';

  async start(): Promise<void> {
    const files = new Map(VOICES.flatMap((v) => [...v.files]));
    const catalog = Buffer.from(JSON.stringify(Object.fromEntries(VOICES.map((v) => [v.key, v.entry]))));
    this.server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname.replace(/^\/repo\//, ''));
      this.requests.push(path);
      const body = path === 'voices.json' ? catalog : (this.override.get(path) ?? files.get(path));
      if (!body) return res.writeHead(404).end('not found');
      res.writeHead(200, { 'content-length': body.length });
      if (this.stall.has(path)) res.write(body.subarray(0, body.length / 2));
      else res.end(body);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/repo`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const lessac = VOICES[0]!;
const lessacModelPath = [...lessac.files.keys()][0]!;

describe('Piper voice catalog', () => {
  const repo = new FakeRepo();
  let catalog: VoiceCatalog;
  let dir: string;

  beforeAll(async () => {
    await repo.start();
    catalog = await fetchVoiceCatalog(repo.baseUrl);
  });
  afterAll(() => repo.close());
  afterEach(() => {
    repo.override.clear();
    repo.stall.clear();
    repo.requests.length = 0;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const freshDir = () => (dir = mkdtempSync(join(tmpdir(), 'vocelio-voices-')));

  it('downloads the model, config and model card under the voice key, byte for byte', async () => {
    const voicesDir = freshDir();
    const result = await installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry });
    expect(readdirSync(voicesDir).sort()).toEqual(['en_US-lessac-medium.MODEL_CARD', 'en_US-lessac-medium.onnx', 'en_US-lessac-medium.onnx.json']);
    const served = [...lessac.files.values()];
    expect(readFileSync(join(voicesDir, 'en_US-lessac-medium.onnx')).equals(served[0]!)).toBe(true);
    expect(result.downloaded).toHaveLength(3);
    expect(result.license).toBe('CC BY 4.0');
  });

  it('reports progress up to the catalog size of each file', async () => {
    const seen: Array<{ name: string; received: number; done: boolean }> = [];
    await installVoice({ baseUrl: repo.baseUrl, voicesDir: freshDir(), voice: lessac.entry, onProgress: (p) => seen.push({ name: p.file.localName, received: p.receivedBytes, done: p.done }) });
    const model = seen.filter((p) => p.name === 'en_US-lessac-medium.onnx');
    expect(model[0]).toEqual({ name: 'en_US-lessac-medium.onnx', received: 0, done: false });
    expect(model.at(-1)).toEqual({ name: 'en_US-lessac-medium.onnx', received: 64 * 1024, done: true });
  });

  it('rejects a model whose md5 differs from the catalog and leaves no file behind', async () => {
    const voicesDir = freshDir();
    repo.override.set(lessacModelPath, randomBytes(64 * 1024));
    const failure = installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry });
    await expect(failure).rejects.toMatchObject({ code: 'checksum_mismatch', message: expect.stringContaining('md5') });
    expect(readdirSync(voicesDir)).toEqual([]);
  });

  it('rejects a model larger than the catalog says and leaves no file behind', async () => {
    const voicesDir = freshDir();
    repo.override.set(lessacModelPath, Buffer.concat([lessac.files.get(lessacModelPath)!, Buffer.from('extra')]));
    await expect(installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry })).rejects.toMatchObject({ code: 'checksum_mismatch' });
    expect(readdirSync(voicesDir)).toEqual([]);
  });

  it('removes the partial download when aborted mid-file', async () => {
    const voicesDir = freshDir();
    repo.stall.add(lessacModelPath);
    const abort = new AbortController();
    const failure = installVoice({
      baseUrl: repo.baseUrl,
      voicesDir,
      voice: lessac.entry,
      signal: abort.signal,
      onProgress: (p) => p.file.role === 'model' && p.receivedBytes > 0 && abort.abort(),
    });
    await expect(failure).rejects.toMatchObject({ code: 'aborted' });
    expect(readdirSync(voicesDir)).toEqual([]);
  });

  it('does not download files that are already installed and intact', async () => {
    const voicesDir = freshDir();
    await installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry });
    repo.requests.length = 0;
    const again = await installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry });
    expect(again.downloaded).toEqual([]);
    expect(repo.requests).toEqual([]);
  });

  it('downloads an installed model again when its bytes were damaged', async () => {
    const voicesDir = freshDir();
    await installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry });
    writeFileSync(join(voicesDir, 'en_US-lessac-medium.onnx'), randomBytes(64 * 1024));
    const again = await installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry });
    expect(again.downloaded.map((f) => f.role)).toEqual(['model']);
    expect(readFileSync(join(voicesDir, 'en_US-lessac-medium.onnx')).equals(lessac.files.get(lessacModelPath)!)).toBe(true);
  });

  it('finds a voice by one of its aliases', () => {
    expect(findVoice(catalog, 'en-us-lessac-medium')?.key).toBe('en_US-lessac-medium');
  });

  it('suggests voices of the same locale first for an unknown name', () => {
    let error: unknown;
    try {
      resolveVoice(catalog, 'en_US-lesac-medium');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(VoiceCatalogError);
    const { code, suggestions, message } = error as VoiceCatalogError;
    expect(code).toBe('unknown_voice');
    expect(suggestions.slice(0, 2)).toEqual(['en_US-lessac-medium', 'en_US-amy-low']);
    expect(suggestions).not.toContain('de_DE-thorsten-medium');
    expect(message).toContain('en_US-lessac-medium');
  });

  it('names the URL and PIPER_VOICES_URL when the catalog cannot be reached', async () => {
    const closed = new FakeRepo();
    await closed.start();
    const url = closed.baseUrl;
    await closed.close();
    await expect(fetchVoiceCatalog(url)).rejects.toThrow(new RegExp(`${url}/voices.json.*PIPER_VOICES_URL`));
  });

  it('lists installed voices with language, sample rate and speakers from their config', async () => {
    const voicesDir = freshDir();
    await installVoice({ baseUrl: repo.baseUrl, voicesDir, voice: lessac.entry });
    const [voice] = await listInstalledVoices(voicesDir);
    expect(voice).toMatchObject({ name: 'en_US-lessac-medium', language: 'en_US', sampleRate: 22050, speakers: 1, quality: 'medium', license: 'CC BY 4.0', problem: null });
    expect(voice!.sizeBytes).toBeGreaterThan(64 * 1024);
  });

  it('marks voices whose config is missing or unparsable as broken', async () => {
    const voicesDir = freshDir();
    writeFileSync(join(voicesDir, 'xx_XX-nocfg-low.onnx'), 'model');
    writeFileSync(join(voicesDir, 'xx_XX-badcfg-low.onnx'), 'model');
    writeFileSync(join(voicesDir, 'xx_XX-badcfg-low.onnx.json'), '{ not json');
    const voices = await listInstalledVoices(voicesDir);
    expect(voices.map((v) => [v.name, v.problem])).toEqual([
      ['xx_XX-badcfg-low', expect.stringContaining('unreadable')],
      ['xx_XX-nocfg-low', expect.stringContaining('missing')],
    ]);
  });

  it('reads the license line of a model card, following "See URL" to the dataset', () => {
    expect(licenseFromModelCard('## Dataset\n\n* URL: https://example.org/data\n* License:  See URL\n')).toBe('see https://example.org/data');
  });
});
