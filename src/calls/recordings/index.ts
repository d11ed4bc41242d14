import fp from 'fastify-plugin';
import { createRecordingStore, type RecordingStore } from './recording-store.js';

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
export {
  LocalRecordingStore,
  S3RecordingStore,
  createRecordingStore,
  recordingKey,
  recordingTempDir,
  s3SettingsFromEnv,
  type RecordingStore,
  type S3Settings,
} from './recording-store.js';
