// Twilio Media Streams, bidirectional (<Connect><Stream>): the JSON text messages on the WebSocket.
// Inbound: connected, start, media, dtmf, mark, stop. Outbound: media, mark, clear.

/** Twilio's first message on a new socket. */
export interface ConnectedMessage {
  event: 'connected';
  protocol: string;
  version: string;
}

/** Stream metadata: which call, which tracks, which format, and our `<Parameter>`s. */
export interface StartMessage {
  event: 'start';
  sequenceNumber: string;
  streamSid: string;
  start: {
    accountSid: string;
    streamSid: string;
    callSid: string;
    tracks: string[];
    customParameters: Record<string, string>;
    mediaFormat: { encoding: string; sampleRate: number; channels: number };
  };
}

/** 20 ms of the caller's audio: base64 mu-law at 8 kHz. */
export interface MediaMessage {
  event: 'media';
  sequenceNumber: string;
  streamSid: string;
  media: { track: string; chunk: string; timestamp: string; payload: string };
}

/** A key the caller pressed. */
export interface DtmfMessage {
  event: 'dtmf';
  sequenceNumber: string;
  streamSid: string;
  dtmf: { track: string; digit: string };
}

/** Twilio echoing one of our marks: the audio sent before it has been played (or cleared). */
export interface MarkMessage {
  event: 'mark';
  sequenceNumber: string;
  streamSid: string;
  mark: { name: string };
}

/** The stream has ended (the call hung up or the TwiML moved on). */
export interface StopMessage {
  event: 'stop';
  sequenceNumber: string;
  streamSid: string;
  stop: { accountSid: string; callSid: string };
}

/** Every message Twilio sends. */
export type TwilioInbound = ConnectedMessage | StartMessage | MediaMessage | DtmfMessage | MarkMessage | StopMessage;

/** Every message we send. */
export type TwilioOutbound =
  | { event: 'media'; streamSid: string; media: { payload: string } }
  | { event: 'mark'; streamSid: string; mark: { name: string } }
  | { event: 'clear'; streamSid: string };

/** A message that is not valid Twilio Media Streams protocol. */
export class ProtocolError extends Error {
  constructor(
    readonly code: 'not_json' | 'not_object' | 'unknown_event' | 'bad_field' | 'too_large',
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Largest text message we parse. Twilio's biggest is `start` with custom parameters, far below this. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** 20 ms of 8 kHz mu-law is 160 bytes (216 base64 chars); anything much larger is not Twilio. */
export const MAX_MEDIA_PAYLOAD_CHARS = 8 * 1024;

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function field(o: Obj, name: string, event: string): Obj {
  const v = o[name];
  if (!isObj(v)) throw new ProtocolError('bad_field', `${event}.${name} must be an object`);
  return v;
}

function text(o: Obj, name: string, where: string, max = 256): string {
  const v = o[name];
  if (typeof v !== 'string' || v.length > max) throw new ProtocolError('bad_field', `${where}.${name} must be a string of at most ${max} characters`);
  return v;
}

// Twilio sends numbers as strings ("sequenceNumber": "3"); tolerate numbers from other implementations.
function numericText(o: Obj, name: string, where: string): string {
  const v = o[name];
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return text(o, name, where, 32);
}

function stringRecord(v: unknown, where: string): Record<string, string> {
  if (v === undefined) return {};
  if (!isObj(v)) throw new ProtocolError('bad_field', `${where} must be an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string' || val.length > 4096) throw new ProtocolError('bad_field', `${where}.${k} must be a string`);
    out[k] = val;
  }
  return out;
}

/** Parses one WebSocket text message from Twilio; throws ProtocolError for anything else. */
export function parseTwilioMessage(raw: string): TwilioInbound {
  if (raw.length > MAX_MESSAGE_BYTES) throw new ProtocolError('too_large', `message of ${raw.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    throw new ProtocolError('not_json', 'message is not JSON');
  }
  if (!isObj(msg)) throw new ProtocolError('not_object', 'message is not a JSON object');
  const event = msg.event;
  switch (event) {
    case 'connected':
      return { event, protocol: typeof msg.protocol === 'string' ? msg.protocol : 'Call', version: typeof msg.version === 'string' ? msg.version : '' };
    case 'start': {
      const s = field(msg, 'start', event);
      const fmt = field(s, 'mediaFormat', 'start.start');
      const streamSid = text(s, 'streamSid', 'start.start');
      return {
        event,
        sequenceNumber: numericText(msg, 'sequenceNumber', event),
        streamSid: typeof msg.streamSid === 'string' ? msg.streamSid : streamSid,
        start: {
          accountSid: text(s, 'accountSid', 'start.start'),
          streamSid,
          callSid: text(s, 'callSid', 'start.start'),
          tracks: Array.isArray(s.tracks) ? s.tracks.filter((t): t is string => typeof t === 'string') : ['inbound'],
          customParameters: stringRecord(s.customParameters, 'start.customParameters'),
          mediaFormat: {
            encoding: text(fmt, 'encoding', 'start.mediaFormat'),
            sampleRate: Number(fmt.sampleRate),
            channels: Number(fmt.channels ?? 1),
          },
        },
      };
    }
    case 'media': {
      const m = field(msg, 'media', event);
      return {
        event,
        sequenceNumber: numericText(msg, 'sequenceNumber', event),
        streamSid: text(msg, 'streamSid', event),
        media: {
          track: typeof m.track === 'string' ? m.track : 'inbound',
          chunk: numericText(m, 'chunk', 'media.media'),
          timestamp: numericText(m, 'timestamp', 'media.media'),
          payload: text(m, 'payload', 'media.media', MAX_MEDIA_PAYLOAD_CHARS),
        },
      };
    }
    case 'dtmf': {
      const d = field(msg, 'dtmf', event);
      const digit = text(d, 'digit', 'dtmf.dtmf', 1);
      if (!/^[0-9*#A-D]$/.test(digit)) throw new ProtocolError('bad_field', `dtmf.digit "${digit}" is not a DTMF key`);
      return { event, sequenceNumber: numericText(msg, 'sequenceNumber', event), streamSid: text(msg, 'streamSid', event), dtmf: { track: typeof d.track === 'string' ? d.track : 'inbound_track', digit } };
    }
    case 'mark': {
      const m = field(msg, 'mark', event);
      return { event, sequenceNumber: numericText(msg, 'sequenceNumber', event), streamSid: text(msg, 'streamSid', event), mark: { name: text(m, 'name', 'mark.mark') } };
    }
    case 'stop': {
      const s = isObj(msg.stop) ? msg.stop : {};
      return {
        event,
        sequenceNumber: numericText(msg, 'sequenceNumber', event),
        streamSid: text(msg, 'streamSid', event),
        stop: { accountSid: typeof s.accountSid === 'string' ? s.accountSid : '', callSid: typeof s.callSid === 'string' ? s.callSid : '' },
      };
    }
    default:
      throw new ProtocolError('unknown_event', `unknown event ${JSON.stringify(event)?.slice(0, 40) ?? 'undefined'}`);
  }
}

/** Serializes an outbound message. */
export const encodeTwilioMessage = (msg: TwilioOutbound): string => JSON.stringify(msg);
