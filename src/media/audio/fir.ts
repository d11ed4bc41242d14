// Kaiser-windowed sinc low-pass design (Kaiser & Schafer): the window's beta buys the stopband
// attenuation and the length buys the transition width, each from one closed-form formula, so a
// resampler can ask for "60 dB above X Hz" instead of hand-tuning taps.
//
// Frequencies here are normalized: cycles per sample of the rate the filter runs at (0 .. 0.5).

/** Modified Bessel function of the first kind, order 0, by its power series (converges fast for beta < 30). */
export function besselI0(x: number): number {
  const q = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Kaiser window beta that gives `attenuationDb` of stopband attenuation (Kaiser's empirical formula). */
export function kaiserBeta(attenuationDb: number): number {
  if (attenuationDb > 50) return 0.1102 * (attenuationDb - 8.7);
  if (attenuationDb >= 21) return 0.5842 * (attenuationDb - 21) ** 0.4 + 0.07886 * (attenuationDb - 21);
  return 0;
}

/** Odd number of taps a Kaiser low-pass needs for `attenuationDb` over a transition `transitionWidth` wide. */
export function kaiserLength(attenuationDb: number, transitionWidth: number): number {
  const n = Math.max(1, Math.ceil((attenuationDb - 7.95) / (14.36 * transitionWidth)) + 1);
  // Odd length: the centre tap falls on a sample, so the delay is a whole number of samples.
  return n % 2 === 1 ? n : n + 1;
}

/** A low-pass specification in normalized frequency. */
export interface LowpassSpec {
  /** Highest frequency to keep (gain within the ripple of 1). */
  passbandEdge: number;
  /** Lowest frequency to attenuate by at least `attenuationDb`. */
  stopbandEdge: number;
  attenuationDb: number;
  /** Gain at DC; an interpolator by L needs L to make up for the zeros it stuffs. Default 1. */
  gain?: number;
}

/** A designed low-pass: its taps and the parameters that produced them. */
export interface LowpassDesign {
  taps: Float64Array;
  beta: number;
  /** The sinc's cutoff (-6 dB point), half-way through the transition band. */
  cutoff: number;
}

/** Designs a linear-phase windowed-sinc low-pass meeting `spec`. */
export function kaiserLowpass(spec: LowpassSpec): LowpassDesign {
  const { passbandEdge, stopbandEdge, attenuationDb, gain = 1 } = spec;
  if (!(passbandEdge > 0 && stopbandEdge > passbandEdge && stopbandEdge <= 0.5)) {
    throw new RangeError(`kaiserLowpass: need 0 < passband (${passbandEdge}) < stopband (${stopbandEdge}) <= 0.5`);
  }
  const n = kaiserLength(attenuationDb, stopbandEdge - passbandEdge);
  const beta = kaiserBeta(attenuationDb);
  const cutoff = (passbandEdge + stopbandEdge) / 2;
  const centre = (n - 1) / 2;
  const i0Beta = besselI0(beta);
  const taps = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = i - centre;
    const x = 2 * Math.PI * cutoff * t;
    const sinc = t === 0 ? 1 : Math.sin(x) / x;
    const r = t / centre;
    const window = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0Beta;
    taps[i] = 2 * cutoff * sinc * window * gain;
  }
  return { taps, beta, cutoff };
}

/** Magnitude response of `taps` at normalized `frequency`, as a linear gain. */
export function magnitudeResponse(taps: ArrayLike<number>, frequency: number): number {
  const w = 2 * Math.PI * frequency;
  let re = 0;
  let im = 0;
  for (let i = 0; i < taps.length; i++) {
    re += taps[i]! * Math.cos(w * i);
    im -= taps[i]! * Math.sin(w * i);
  }
  return Math.hypot(re, im);
}

/**
 * Worst-case attenuation in dB of `taps` over `[from, to]` relative to `reference` (the passband gain),
 * sampled at `points` frequencies; fine enough sampling resolves every sidelobe peak to a fraction of a dB.
 */
export function minAttenuationDb(taps: ArrayLike<number>, from: number, to: number, reference: number, points = 4 * taps.length): number {
  let worst = 0;
  for (let i = 0; i <= points; i++) worst = Math.max(worst, magnitudeResponse(taps, from + ((to - from) * i) / points));
  return -20 * Math.log10(worst / reference);
}
