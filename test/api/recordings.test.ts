import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { testApp, type TestApp, type TestOrg } from '../helpers/app.js';
import { calls, type CallRow } from '../../src/calls/calls.table.js';
import { CallRecorder } from '../../src/calls/recordings/call-recorder.js';
import { recordingKey, recordingTempDir } from '../../src/calls/recordings/recording-store.js';

describe('GET /v1/calls/:id/recording', () => {
  let t: TestApp;
  let dataDir: string;
  let org: TestOrg;
  let other: TestOrg;
  let call: CallRow;
  let wav: Buffer;

  const get = (key: string, id: string, headers: Record<string, string> = {}) => t.as(key, { method: 'GET', url: `/v1/calls/${id}/recording`, headers });
  const newCall = (orgId: string) => t.app.calls.create(orgId, { agentId: null, direction: 'inbound', fromNumber: '+15550100', toNumber: '+15550199' });

  /** Records a real two-channel WAV (2 s) and stores it as the call's recording, as the call session would. */
  async function giveRecording(row: CallRow): Promise<Buffer> {
    const rec = await CallRecorder.start(recordingTempDir(dataDir), row.id);
    for (let i = 0; i < 100; i++) {
      rec.agent(Uint8Array.from({ length: 160 }, (_, j) => (i * 3 + j) % 256));
      rec.caller(Uint8Array.from({ length: 160 }, (_, j) => (i + j) % 256));
    }
    const done = (await rec.finish())!;
    const bytes = await readFile(done.path);
    const key = recordingKey(row.organizationId, row.id);
    const saved = await t.app.recordings.save(key, done.path);
    await t.app.db.update(calls).set({ recordingKey: key, recordingBytes: saved.bytes }).where(eq(calls.id, row.id));
    return bytes;
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'vocelio-api-rec-'));
    t = await testApp({ DATA_DIR: dataDir });
    org = await t.createOrg();
    other = await t.createOrg();
    call = await newCall(org.id);
    wav = await giveRecording(call);
  });
  afterAll(async () => {
    await t.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves the whole recording as audio/wav to a viewer', async () => {
    const res = await get(org.keys.viewer, call.id);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.headers['content-length']).toBe(String(wav.length));
    expect(res.headers['cache-control']).toBe('private, no-store');
    expect(res.rawPayload).toEqual(wav);
    expect(res.rawPayload.toString('ascii', 0, 4)).toBe('RIFF');
  });

  it('answers HEAD with the size and no body', async () => {
    const res = await t.as(org.keys.viewer, { method: 'HEAD', url: `/v1/calls/${call.id}/recording` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(wav.length));
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.rawPayload.length).toBe(0);
  });

  it('stores the recording under DATA_DIR/recordings/<orgId>/<callId>.wav', async () => {
    expect(await readFile(join(dataDir, 'recordings', org.id, `${call.id}.wav`))).toEqual(wav);
  });

  it('serves a byte range bytes=a-b as 206 with Content-Range', async () => {
    const res = await get(org.keys.viewer, call.id, { range: 'bytes=100-1123' });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 100-1123/${wav.length}`);
    expect(res.headers['content-length']).toBe('1024');
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.rawPayload).toEqual(wav.subarray(100, 1124));
  });

  it('serves an open range bytes=a- to the end', async () => {
    const start = wav.length - 500;
    const res = await get(org.keys.viewer, call.id, { range: `bytes=${start}-` });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${wav.length - 1}/${wav.length}`);
    expect(res.rawPayload).toEqual(wav.subarray(start));
  });

  it('serves a suffix range bytes=-n as the last n bytes', async () => {
    const res = await get(org.keys.viewer, call.id, { range: 'bytes=-44' });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${wav.length - 44}-${wav.length - 1}/${wav.length}`);
    expect(res.rawPayload).toEqual(wav.subarray(wav.length - 44));
  });

  it('clips a range that runs past the end', async () => {
    const res = await get(org.keys.viewer, call.id, { range: `bytes=${wav.length - 10}-${wav.length + 1000}` });
    expect(res.statusCode).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${wav.length - 10}-${wav.length - 1}/${wav.length}`);
    expect(res.rawPayload).toEqual(wav.subarray(wav.length - 10));
  });

  it('answers 416 with the size for a range that starts past the end', async () => {
    const res = await get(org.keys.viewer, call.id, { range: `bytes=${wav.length}-` });
    expect(res.statusCode).toBe(416);
    expect(res.headers['content-range']).toBe(`bytes */${wav.length}`);
    expect(res.json().error.code).toBe('range_not_satisfiable');
  });

  it('serves the whole file for several ranges at once', async () => {
    const res = await get(org.keys.viewer, call.id, { range: 'bytes=0-9,20-29' });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload).toEqual(wav);
  });

  it('ignores a Range header it cannot read', async () => {
    const res = await get(org.keys.viewer, call.id, { range: 'bytes=9-2' });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload).toEqual(wav);
  });

  it("answers 404 to another organization's key", async () => {
    const res = await get(other.keys.owner, call.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });

  it('answers 404 recording_not_found for a call without a recording', async () => {
    const bare = await newCall(org.id);
    const res = await get(org.keys.viewer, bare.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('recording_not_found');
  });

  it('answers 404 once the call is deleted, and the recording is gone from the store', async () => {
    const doomed = await newCall(org.id);
    await giveRecording(doomed);
    await t.app.db.update(calls).set({ endedAt: new Date(), status: 'completed' }).where(eq(calls.id, doomed.id));
    const key = recordingKey(org.id, doomed.id);
    expect(await t.app.recordings.stat(key)).not.toBeNull();
    const del = await t.as(org.keys.admin, { method: 'DELETE', url: `/v1/calls/${doomed.id}` });
    expect(del.statusCode).toBe(204);
    expect((await get(org.keys.viewer, doomed.id)).statusCode).toBe(404);
    expect(await t.app.recordings.stat(key)).toBeNull();
  });

  it('answers 404 recording_not_found when the store lost the file', async () => {
    const lost = await newCall(org.id);
    await giveRecording(lost);
    await t.app.recordings.remove(recordingKey(org.id, lost.id));
    const res = await get(org.keys.viewer, lost.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('recording_not_found');
  });

  it('refuses a malformed call id with 400', async () => {
    const res = await get(org.keys.viewer, 'call_../../etc');
    expect(res.statusCode).toBe(400);
  });

  it('requires authentication', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/v1/calls/${call.id}/recording` });
    expect(res.statusCode).toBe(401);
  });

  it('documents the response as audio/wav in OpenAPI', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const op = doc.paths['/v1/calls/{id}/recording'].get;
    expect(Object.keys(op.responses['200'].content)).toEqual(['audio/wav']);
    expect(Object.keys(op.responses['206'].content)).toEqual(['audio/wav']);
    expect(Object.keys(op.responses['404'].content)).toEqual(['application/json']);
  });
});
