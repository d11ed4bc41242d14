import { afterEach, describe, expect, it, vi } from 'vitest';
import { OutboundAudio, FRAME_BYTES } from './outbound-audio.js';
import type { TwilioOutbound } from './twilio-protocol.js';

function setup(leadMs = 100) {
  const sent: TwilioOutbound[] = [];
  let clock = 1000;
  const out = new OutboundAudio('MZ1', { leadMs, send: (m) => sent.push(m), now: () => clock });
  return { out, sent, advance: (ms: number) => (clock += ms) };
}

const kinds = (sent: TwilioOutbound[]) => sent.map((m) => m.event);

describe('OutboundAudio', () => {
  it('sends only the lead ahead of real time at once', () => {
    const { out, sent } = setup(100);
    out.pushAudio(new Uint8Array(FRAME_BYTES * 20));
    expect(sent).toHaveLength(5);
    out.stop();
  });

  it('cuts audio into exact 20 ms frames and pads the tail before a mark', () => {
    const { out, sent } = setup(1000);
    out.pushAudio(new Uint8Array(FRAME_BYTES + 10).fill(1));
    out.pushMark('m1');
    expect(kinds(sent)).toEqual(['media', 'media', 'mark']);
    const second = Buffer.from((sent[1] as { media: { payload: string } }).media.payload, 'base64');
    expect(second.length).toBe(FRAME_BYTES);
    expect(second[9]).toBe(1);
    expect(second[10]).toBe(0xff);
    out.stop();
  });

  it('keeps marks in order behind the audio they follow', () => {
    const { out, sent } = setup(1000);
    out.pushAudio(new Uint8Array(FRAME_BYTES));
    out.pushMark('a');
    out.pushAudio(new Uint8Array(FRAME_BYTES));
    out.pushMark('b');
    expect(sent.map((m) => (m.event === 'mark' ? m.mark.name : m.event))).toEqual(['media', 'a', 'media', 'b']);
  });

  it('clear drops unsent audio and tells Twilio to clear', () => {
    const { out, sent } = setup(40);
    out.pushAudio(new Uint8Array(FRAME_BYTES * 50));
    out.pushMark('late');
    out.clear();
    expect(out.pending).toBe(0);
    expect(sent.at(-1)).toEqual({ event: 'clear', streamSid: 'MZ1' });
    expect(kinds(sent).filter((k) => k === 'media')).toHaveLength(2);
  });
});

describe('OutboundAudio timeline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  // The pacer's clock and its timers move together, 20 ms at a time, as they do in real life.
  const timed = () => {
    vi.useFakeTimers();
    const s = setup(100);
    const play = (ms: number) => {
      for (let t = 0; t < ms; t += 20) {
        s.advance(20);
        vi.advanceTimersByTime(20);
      }
    };
    const wait = (ms: number) => s.advance(ms);
    return { ...s, play, wait };
  };
  it('counts as played only the audio whose time has come, not what was sent ahead', () => {
    const { out, play } = timed();
    out.pushAudio(new Uint8Array(FRAME_BYTES * 50));
    expect(out.queuedMs).toBe(1000);
    expect(out.playedMs()).toBe(0);
    play(340);
    expect(out.playedMs()).toBe(340);
    out.stop();
  });

  it('restarts playback from now after a quiet period, as Twilio does', () => {
    const { out, play, wait } = timed();
    out.pushAudio(new Uint8Array(FRAME_BYTES * 5));
    play(100);
    wait(5000);
    expect(out.playedMs()).toBe(100);
    out.pushAudio(new Uint8Array(FRAME_BYTES * 5));
    play(40);
    expect(out.playedMs()).toBe(140);
    out.stop();
  });

  it('cuts the timeline back to what was played on clear', () => {
    const { out, play } = timed();
    out.pushAudio(new Uint8Array(FRAME_BYTES * 50));
    play(260);
    out.clear();
    expect(out.queuedMs).toBe(260);
    expect(out.playedMs()).toBe(260);
    out.pushAudio(new Uint8Array(FRAME_BYTES * 5));
    expect(out.queuedMs).toBe(360);
    out.stop();
  });
});
