import { describe, expect, it } from 'vitest';
import { encodeTwilioMessage, parseTwilioMessage, ProtocolError } from './twilio-protocol.js';

const start = {
  event: 'start',
  sequenceNumber: '1',
  streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0',
  start: {
    accountSid: 'AC00000000000000000000000000000000',
    streamSid: 'MZ18ad3ab5a668481ce02b83e7395059f0',
    callSid: 'CA00000000000000000000000000000000',
    tracks: ['inbound'],
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    customParameters: { token: 'abc' },
  },
};

const codeOf = (raw: string): string => {
  try {
    parseTwilioMessage(raw);
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  return 'parsed';
};

describe('parseTwilioMessage', () => {
  it('reads a start message with its custom parameters and media format', () => {
    const msg = parseTwilioMessage(JSON.stringify(start));
    expect(msg).toMatchObject({ event: 'start', start: { callSid: start.start.callSid, customParameters: { token: 'abc' }, mediaFormat: { sampleRate: 8000 } } });
  });

  it('reads a media message', () => {
    const msg = parseTwilioMessage('{"event":"media","sequenceNumber":"3","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"//8="}}');
    expect(msg).toEqual({ event: 'media', sequenceNumber: '3', streamSid: 'MZ1', media: { track: 'inbound', chunk: '1', timestamp: '5', payload: '//8=' } });
  });

  it('reads dtmf, mark, stop and connected messages', () => {
    expect(parseTwilioMessage('{"event":"dtmf","sequenceNumber":"5","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"#"}}')).toMatchObject({ dtmf: { digit: '#' } });
    expect(parseTwilioMessage('{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"m1"}}')).toMatchObject({ mark: { name: 'm1' } });
    expect(parseTwilioMessage('{"event":"stop","sequenceNumber":"9","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}')).toMatchObject({ stop: { callSid: 'CA1' } });
    expect(parseTwilioMessage('{"event":"connected","protocol":"Call","version":"1.0.0"}')).toEqual({ event: 'connected', protocol: 'Call', version: '1.0.0' });
  });

  it('refuses text that is not JSON', () => expect(codeOf('{nope')).toBe('not_json'));
  it('refuses JSON that is not an object', () => expect(codeOf('[1,2]')).toBe('not_object'));
  it('refuses an unknown event', () => expect(codeOf('{"event":"hello"}')).toBe('unknown_event'));
  it('refuses a media message without a payload', () => expect(codeOf('{"event":"media","sequenceNumber":"1","streamSid":"MZ1","media":{"chunk":"1","timestamp":"0"}}')).toBe('bad_field'));
  it('refuses an oversize media payload', () => expect(codeOf(JSON.stringify({ event: 'media', sequenceNumber: '1', streamSid: 'MZ1', media: { chunk: '1', timestamp: '0', payload: 'A'.repeat(20_000) } }))).toBe('bad_field'));
  it('refuses an oversize message before parsing it', () => expect(codeOf(`{"event":"media","x":"${'A'.repeat(70_000)}"}`)).toBe('too_large'));
  it('refuses a dtmf digit that is not a key', () => expect(codeOf('{"event":"dtmf","sequenceNumber":"5","streamSid":"MZ1","dtmf":{"digit":"x"}}')).toBe('bad_field'));
  it('refuses a start whose parameters are not strings', () => expect(codeOf(JSON.stringify({ ...start, start: { ...start.start, customParameters: { token: 5 } } }))).toBe('bad_field'));
});

describe('encodeTwilioMessage', () => {
  it('writes clear with the stream sid, as Twilio expects', () => {
    expect(JSON.parse(encodeTwilioMessage({ event: 'clear', streamSid: 'MZ1' }))).toEqual({ event: 'clear', streamSid: 'MZ1' });
  });
});
