import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchVoiceCatalog } from '../../src/media/tts/piper/voice-catalog.js';
import { installVoice } from '../../src/media/tts/piper/voice-install.js';
import { BIN } from '../helpers/cli.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A local rhasspy/piper-voices look-alike with two voices; `requests` records every path asked for. */
async function startRepo() {
  const files = new Map<string, Buffer>();
  const catalog: Record<string, unknown> = {};
  for (const [key, aliases] of [['en_US-lessac-medium', ['en-us-lessac-medium']], ['en_US-amy-low', []]] as const) {
    const [code, speaker, quality] = key.split('-') as [string, string, string];
    const dir = `en/${code}/${speaker}/${quality}`;
    files.set(`${dir}/${key}.onnx`, randomBytes(200 * 1024));
    files.set(`${dir}/${key}.onnx.json`, Buffer.from(JSON.stringify({ audio: { sample_rate: 22050, quality }, language: { code }, num_speakers: 1 })));
    files.set(`${dir}/MODEL_CARD`, Buffer.from(`# Model card for ${speaker} (${quality})\n\n## Dataset\n\n* URL: https://example.org/\n* License: CC BY 4.0\n`));
    catalog[key] = {
      key,
      name: speaker,
      language: { code, family: 'en', region: 'US', name_native: 'English', name_english: 'English', country_english: 'United States' },
      quality,
      num_speakers: 1,
      speaker_id_map: {},
      files: Object.fromEntries([...files].filter(([p]) => p.startsWith(dir)).map(([p, b]) => [p, { size_bytes: b.length, md5_digest: md5(b) }])),
      aliases,
    };
  }
  files.set('voices.json', Buffer.from(JSON.stringify(catalog)));
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname.slice(1));
    requests.push(path);
    const body = files.get(path);
    if (!body) return res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, requests, close: () => new Promise((r) => server.close(r)) };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `vocelio voices ...` to completion. */
function voices(args: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'voices', ...args], { env: { ...process.env, VOCELIO_FROM_SOURCE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('vocelio voices', () => {
  let repo: Awaited<ReturnType<typeof startRepo>>;
  const root = mkdtempSync(join(tmpdir(), 'vocelio-voices-cli-'));
  let n = 0;
  /** A fresh voices directory and the environment pointing the CLI at it and at the fake repository. */
  const setup = () => {
    const dir = join(root, String(n++));
    return { dir, env: { PIPER_VOICES_URL: repo.url, VOICES_DIR: dir } };
  };

  beforeAll(async () => {
    repo = await startRepo();
  });
  afterAll(async () => {
    await repo.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('pulls a voice into VOICES_DIR and prints its license', async () => {
    const { dir, env } = setup();
    const run = await voices(['pull', 'en_US-lessac-medium'], env);
    expect(run.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['en_US-lessac-medium.MODEL_CARD', 'en_US-lessac-medium.onnx', 'en_US-lessac-medium.onnx.json']);
    expect(run.stdout).toContain('License: CC BY 4.0');
    expect(run.stderr).toContain('en_US-lessac-medium.onnx: 100%');
  });

  /** Installs a voice the way `voices pull` does, without paying for another CLI start. */
  const preinstall = async (voicesDir: string, key: string) => {
    const catalog = await fetchVoiceCatalog(repo.url);
    await installVoice({ baseUrl: repo.url, voicesDir, voice: catalog[key]! });
  };

  it('installs voice files readable by their owner only, in an owner-only directory', async () => {
    const { dir } = setup();
    await preinstall(join(dir, 'nested'), 'en_US-amy-low');
    for (const d of [dir, join(dir, 'nested')]) expect(statSync(d).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(join(dir, 'nested'))) expect(statSync(join(dir, 'nested', f)).mode & 0o777, f).toBe(0o600);
  });

  it('does not download an installed voice again', async () => {
    const { dir, env } = setup();
    await preinstall(dir, 'en_US-amy-low');
    const before = repo.requests.length;
    const again = await voices(['pull', 'en_US-amy-low'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already installed');
    // Only this test touches amy, so its files are the ones that must not be fetched again.
    expect(repo.requests.slice(before).filter((p) => p.includes('amy'))).toEqual([]);
  });

  it('lists installed voices as JSON', async () => {
    const { dir, env } = setup();
    await preinstall(dir, 'en_US-lessac-medium');
    const run = await voices(['list', '--json'], env);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([
      expect.objectContaining({ name: 'en_US-lessac-medium', language: 'en_US', sampleRate: 22050, speakers: 1, quality: 'medium', broken: false }),
    ]);
  });

  it('exits 1 for an unknown voice, naming close matches and how to see all', async () => {
    const { dir, env } = setup();
    const run = await voices(['pull', 'en_US-lesac-medium'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no Piper voice "en_US-lesac-medium"');
    expect(run.stderr).toContain('Close matches: en_US-lessac-medium, en_US-amy-low');
    expect(run.stderr).toContain('vocelio voices list --available');
    expect(existsSync(dir)).toBe(false);
  });

  it('exits 1 naming PIPER_VOICES_URL when the catalog is unreachable', async () => {
    const { env } = setup();
    const run = await voices(['pull', 'en_US-lessac-medium'], { ...env, PIPER_VOICES_URL: `${repo.url}/nowhere` });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${repo.url}/nowhere/voices.json answered HTTP 404`);
    expect(run.stderr).toContain('PIPER_VOICES_URL');
  });
});
