// A tiny stand-in for a Piper voice: a real ONNX graph with Piper's exact input/output signature, so the
// real loading, feeding and inference code runs in tests and benchmarks (no real voice can be downloaded
// here). It is not a TTS model: it renders a deterministic tone whose length follows the inputs the way a
// VITS duration predictor's does, which is what the code around the model depends on.
//
// Graph (opset 13), all shapes dynamic in the number of phoneme ids N and output samples T:
//   T        = floor(input_lengths[0] * 256 * scales[1])              (length_scale lengthens, like Piper)
//   t        = Range(0, T, 1) / sample_rate                            (seconds)
//   freq     = 220 Hz * (1 + sid[0])                                   (speakers differ by pitch; 220 Hz without sid)
//   phase    = mean(input)                                             (different text, different waveform)
//   envelope = 0.6 + 0.4 * sin(2 pi 4 t)                                (a syllable-rate wobble, never silent)
//   output   = Reshape(0.5 * envelope * sin(2 pi freq t + phase), [1, 1, 1, -1])
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

/** Output samples the test model renders per phoneme id at length_scale 1. */
export const TEST_SAMPLES_PER_ID = 256;

/** Pitch of speaker 0 (and of single-speaker test voices), in Hz; speaker k sounds at (k + 1) times this. */
export const TEST_BASE_HZ = 220;

/** Options of {@link writeTestPiperVoice}. */
export interface TestPiperVoiceOptions {
  /** Speakers (> 1 adds the `sid` input and a `speaker_id_map`). Default 1. */
  speakers?: number;
  /** `audio.sample_rate` of the voice. Default 22050, the rate of most real Piper voices. */
  sampleRate?: number;
  /** Overrides merged into the written `.onnx.json`, to test bad or unusual configs. */
  config?: Record<string, unknown>;
}

/** The phoneme ids of the test voice: Piper's usual "_" 0, "^" 1, "$" 2, then space, punctuation, a-z, digits. */
export function testPhonemeIdMap(): Record<string, number[]> {
  const symbols = [' ', '!', "'", ',', '-', '.', '?', ...'abcdefghijklmnopqrstuvwxyz', ...'0123456789'];
  const map: Record<string, number[]> = { _: [0], '^': [1], $: [2] };
  symbols.forEach((s, i) => (map[s] = [3 + i]));
  return map;
}

/**
 * Writes `<name>.onnx` and `<name>.onnx.json` into `dir` (created if missing): a valid Piper voice whose
 * model onnxruntime loads and runs. See the file header for what the model computes.
 */
export async function writeTestPiperVoice(
  dir: string,
  name = 'test-voice',
  options: TestPiperVoiceOptions = {},
): Promise<{ onnxPath: string; configPath: string }> {
  const speakers = options.speakers ?? 1;
  const sampleRate = options.sampleRate ?? 22050;
  await mkdir(dir, { recursive: true });
  const onnxPath = join(dir, `${name}.onnx`);
  const configPath = `${onnxPath}.json`;
  await writeFile(onnxPath, buildTestPiperModel({ speakers, sampleRate }));
  const config = {
    audio: { sample_rate: sampleRate, quality: 'x_low' },
    espeak: { voice: 'en-us' },
    language: { code: 'en_US' },
    inference: { noise_scale: 0.667, length_scale: 1, noise_w: 0.8 },
    phoneme_type: 'text',
    phoneme_map: {},
    phoneme_id_map: testPhonemeIdMap(),
    num_symbols: 256,
    num_speakers: speakers,
    speaker_id_map: speakers > 1 ? Object.fromEntries(Array.from({ length: speakers }, (_, i) => [`speaker_${i}`, i])) : {},
    piper_version: '1.0.0',
    dataset: name,
    ...options.config,
  };
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  return { onnxPath, configPath };
}

/** The serialized ONNX model of the test voice. */
export function buildTestPiperModel(opts: { speakers: number; sampleRate: number }): Uint8Array {
  const nodes: INodeProto[] = [];
  const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []) => {
    nodes.push({ opType, input, output: [output], name: output, attribute });
    return output;
  };
  const castFloat = (input: string, output: string) => node('Cast', [input], output, [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }]);

  // T from input_lengths and length_scale, as a float scalar Range can take.
  const length = node('Squeeze', [castFloat('input_lengths', 'lengths_f')], 'length');
  const lengthScale = node('Gather', ['scales', 'one_i64'], 'length_scale', [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]);
  const samplesF = node('Floor', [node('Mul', [node('Mul', [length, 'samples_per_id'], 'base_samples'), lengthScale], 'scaled_samples')], 'samples_f');
  const time = node('Div', [node('Range', ['zero_f', samplesF, 'one_f'], 'index'), 'sample_rate'], 'time');

  let freq = 'base_hz';
  if (opts.speakers > 1) {
    const sid = node('Squeeze', [castFloat('sid', 'sid_f')], 'sid_scalar');
    freq = node('Mul', ['base_hz', node('Add', [sid, 'one_f'], 'sid_plus_one')], 'freq');
  }
  const idsPhase = node('ReduceMean', [castFloat('input', 'input_f')], 'ids_phase', [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]);
  const phase = node('Add', [node('Mul', [node('Mul', [time, freq], 'cycles'), 'two_pi'], 'radians'), idsPhase], 'phase');
  const carrier = node('Sin', [phase], 'carrier');
  const wobble = node('Sin', [node('Mul', [time, 'wobble_rad_per_s'], 'wobble_phase')], 'wobble');
  const envelope = node('Add', [node('Mul', [wobble, 'wobble_depth'], 'wobble_scaled'), 'envelope_floor'], 'envelope');
  const wave = node('Mul', [node('Mul', [carrier, envelope], 'shaped'), 'amplitude'], 'wave');
  node('Reshape', [wave, 'output_shape'], 'output');

  const scalarF = (name: string, value: number): ITensorProto => ({ name, dataType: FLOAT, dims: [], floatData: [value] });
  const initializer: ITensorProto[] = [
    scalarF('zero_f', 0),
    scalarF('one_f', 1),
    scalarF('samples_per_id', TEST_SAMPLES_PER_ID),
    scalarF('sample_rate', opts.sampleRate),
    scalarF('base_hz', TEST_BASE_HZ),
    scalarF('two_pi', 2 * Math.PI),
    scalarF('wobble_rad_per_s', 2 * Math.PI * 4),
    scalarF('wobble_depth', 0.4),
    scalarF('envelope_floor', 0.6),
    scalarF('amplitude', 0.5),
    { name: 'one_i64', dataType: INT64, dims: [], int64Data: [1] },
    { name: 'output_shape', dataType: INT64, dims: [4], int64Data: [1, 1, 1, -1] },
  ];

  const input: IValueInfoProto[] = [
    tensorInfo('input', INT64, [1, 'phonemes']),
    tensorInfo('input_lengths', INT64, [1]),
    tensorInfo('scales', FLOAT, [3]),
  ];
  if (opts.speakers > 1) input.push(tensorInfo('sid', INT64, [1]));

  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'vocelio-test-piper',
    graph: {
      name: 'test_piper_voice',
      node: nodes,
      initializer,
      input,
      output: [tensorInfo('output', FLOAT, [1, 1, 1, 'time'])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function tensorInfo(name: string, elemType: number, dims: Array<number | string>): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
