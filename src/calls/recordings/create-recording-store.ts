// The store the configuration asks for.
import { join } from 'node:path';
import type { S3Settings } from '../../config.js';
import { LocalRecordingStore } from './local-recording-store.js';
import type { RecordingStore } from './recording-store.js';
import { S3RecordingStore } from './s3-recording-store.js';

/** What createRecordingStore needs from the configuration. */
export interface RecordingsConfig {
  dataDir: string;
  /** Set: recordings go to this bucket instead of `DATA_DIR/recordings`. */
  recordingsS3?: S3Settings;
}

/** The configured store: the bucket when `recordingsS3` is set, else files under `DATA_DIR/recordings`. */
export function createRecordingStore(config: RecordingsConfig): RecordingStore {
  return config.recordingsS3 ? new S3RecordingStore(config.recordingsS3) : new LocalRecordingStore(join(config.dataDir, 'recordings'));
}
