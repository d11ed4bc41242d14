import fp from 'fastify-plugin';
import { createRecordingStore } from './create-recording-store.js';
import type { RecordingStore } from './recording-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Finished call recordings (files under DATA_DIR/recordings, or an S3-compatible bucket). */
    recordings: RecordingStore;
  }
}

/** Registers the recording store on the app; `store` replaces the configured one (tests, embedders). */
export const recordingsPlugin = fp(
  async (app, opts: { store?: RecordingStore }) => {
    app.decorate('recordings', opts.store ?? createRecordingStore(app.config));
  },
  { name: 'recordings', dependencies: ['db'] },
);

export { recordingRoutes, parseRange } from './routes.js';
export { CallRecorder, type CallRecorderOptions, type FinishedRecording } from './call-recorder.js';
export { recordingKey, recordingTempDir, type ByteRange, type RecordingStore } from './recording-store.js';
export { LocalRecordingStore } from './local-recording-store.js';
export { S3RecordingStore } from './s3-recording-store.js';
export { createRecordingStore, type RecordingsConfig } from './create-recording-store.js';
