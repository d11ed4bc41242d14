import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScript, parseDuration, parseScriptJson, readScriptFile, scriptFromFlags, speechSpan, type SayStep } from './script.js';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/audio');
const HELLO = join(FIXTURES, 'hello.ulaw');
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'fixtures.json'), 'utf8')) as { files: Record<string, { speech: Array<{ startMs: number; endMs: number }> }> };

const flags = (...args: string[]) => {
  const out: Array<{ name: string; value?: string }> = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.replace(/^--/, '');
    out.push(['wait', 'no-wait'].includes(name) ? { name } : { name, value: args[++i] });
  }
  return out;
};

describe('simulator scripts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vocelio-script-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads steps from flags in the order given, --barge-in and --no-wait changing the say before them', () => {
    expect(scriptFromFlags(flags('--say', 'a.wav', '--pause', '800', '--dtmf', '12#', '--say', 'b.wav', '--barge-in', '600', '--wait', '--say', 'c.ulaw', '--no-wait'))).toEqual([
      { say: 'a.wav' },
      { pause: 800 },
      { dtmf: '12#' },
      { say: 'b.wav', bargeInAfterMs: 600 },
      { waitForReply: true },
      { say: 'c.ulaw', waitForReply: false },
    ]);
  });

  it('takes durations in milliseconds or seconds', () => {
    expect([parseDuration('800', 'x'), parseDuration('800ms', 'x'), parseDuration('1.5s', 'x'), parseDuration(250, 'x')]).toEqual([800, 800, 1500, 250]);
  });

  it.each([
    [['--pause', 'soon'], '--pause: "soon" is not a duration; use milliseconds (800) or seconds (1.5s)'],
    [['--pause', '-5'], '--pause: "-5" is not a duration'],
    [['--dtmf', '12x'], '--dtmf: "12x" is not a string of DTMF keys (0-9, *, #, A-D)'],
    [['--barge-in', '600', '--say', 'a.wav'], '--barge-in changes the --say just before it; put it right after a --say <file>'],
    [['--pause', '100', '--no-wait'], '--no-wait changes the --say just before it'],
  ])('rejects %j with a message that says what to write', (args, message) => {
    expect(() => scriptFromFlags(flags(...args))).toThrow(message);
  });

  it('reads a JSON script as an array of steps or {"steps": [...]}', () => {
    const steps = [{ say: 'a.wav', bargeInAfterMs: 300 }, { pause: '1s' }, { dtmf: '9' }, { waitForReply: true }];
    const expected = [{ say: 'a.wav', bargeInAfterMs: 300 }, { pause: 1000 }, { dtmf: '9' }, { waitForReply: true }];
    expect(parseScriptJson(steps)).toEqual(expected);
    expect(parseScriptJson({ steps })).toEqual(expected);
  });

  it.each([
    [{ say: 'a.wav' }, 'a script is a JSON array of steps'],
    [[{ sya: 'a.wav' }], 'step 1: needs one of say, pause, dtmf or waitForReply (got sya)'],
    [[{ pause: 100 }, { say: 'a.wav', bargeIn: 3 }], 'step 2: unexpected "bargeIn" (a say step takes say, bargeInAfterMs, waitForReply)'],
    [[{ dtmf: 5 }], 'step 1: dtmf must be a string of keys such as "12#"'],
    [[{ pause: 'later' }], 'step 1: pause: "later" is not a duration'],
  ])('rejects the JSON script %j, naming the step', (json, message) => {
    expect(() => parseScriptJson(json)).toThrow(message);
  });

  it('loads each say\'s audio and waits for replies, except before a barge-in', async () => {
    const script = await loadScript([{ say: HELLO }, { say: HELLO, bargeInAfterMs: 600 }, { pause: 100 }]);
    const [first, second] = script.steps as SayStep[];
    expect(first).toMatchObject({ kind: 'say', label: 'hello.ulaw', waitForReply: false, bargeInAfterMs: null });
    expect(second).toMatchObject({ waitForReply: true, bargeInAfterMs: 600 });
    expect(first!.audio.durationMs).toBe(40790 / 8);
  });

  it('refuses a barge-in that does not follow the say whose reply it talks over', async () => {
    await expect(loadScript([{ say: HELLO }, { pause: 100 }, { say: HELLO, bargeInAfterMs: 600 }])).rejects.toThrow(/step 3 barges in on the agent's reply, so it must come right after the say/);
    await expect(loadScript([{ say: HELLO, waitForReply: true }, { say: HELLO, bargeInAfterMs: 600 }])).rejects.toThrow(/step 1 waits for the reply to finish, so step 2 would have nothing to barge in on/);
  });

  it('names the step and the file when an audio file is missing', async () => {
    await expect(loadScript([{ pause: 10 }, { say: 'nope.wav' }], dir)).rejects.toThrow(`step 2 (say): ${join(dir, 'nope.wav')}: no such file`);
  });

  it('refuses an empty script', async () => {
    await expect(loadScript([])).rejects.toThrow('the script has no steps');
  });

  it('resolves a script file\'s audio paths against the script\'s own directory', async () => {
    mkdirSync(join(dir, 'calls'), { recursive: true });
    writeFileSync(join(dir, 'calls', 'hello.ulaw'), readFileSync(HELLO));
    writeFileSync(join(dir, 'calls', 'script.json'), JSON.stringify([{ say: 'hello.ulaw' }, { dtmf: '1' }]));
    const script = await readScriptFile(join(dir, 'calls', 'script.json'));
    expect(script.steps.map((s) => s.kind)).toEqual(['say', 'dtmf']);
    expect((script.steps[0] as SayStep).file).toBe(join(dir, 'calls', 'hello.ulaw'));
  });

  it('reports a script file that is not JSON with the parser\'s reason', async () => {
    writeFileSync(join(dir, 'bad.json'), '[{"say": "a.wav",]');
    await expect(readScriptFile(join(dir, 'bad.json'))).rejects.toThrow(/--script .*bad\.json: not valid JSON/);
  });

  it('finds where the speech in a file is, utterance by utterance', () => {
    const audio = new Uint8Array(readFileSync(join(FIXTURES, 'two-utterances.ulaw')));
    const span = speechSpan(audio)!;
    const expected = manifest.files['two-utterances.ulaw']!.speech;
    expect(span.utterances).toHaveLength(2);
    span.utterances.forEach((u, i) => {
      expect(Math.abs(u.startMs - expected[i]!.startMs)).toBeLessThanOrEqual(40);
      expect(Math.abs(u.endMs - expected[i]!.endMs)).toBeLessThanOrEqual(40);
    });
    expect(speechSpan(new Uint8Array(readFileSync(join(FIXTURES, 'silence.ulaw'))))).toBeNull();
  });
});
