import { CallSession, type CallInfo, type CallSessionServices, type CallSocketIo } from './call-session.js';

/** The node's live calls: the sessions by call id, and a gauge of how many there are. */
export interface LiveCallRegistry {
  sessions: Map<string, CallSession>;
  liveCalls: { set(value: number): void };
}

/**
 * Builds call sessions from the app's services, which it is given once, and keeps the node's registry of
 * live calls true from a session's creation to its end. The media socket supplies only what is its own.
 */
export class CallSessionFactory {
  constructor(
    private readonly services: CallSessionServices,
    private readonly live: LiveCallRegistry,
  ) {}

  /** A new session for `info`, registered as live on this node (not yet started). */
  create(info: CallInfo, io: CallSocketIo): CallSession {
    const { sessions, liveCalls } = this.live;
    const session = new CallSession(info, {
      ...this.services,
      ...io,
      log: io.log.child({ callId: info.callId }),
      onEnded: (s) => {
        sessions.delete(s.info.callId);
        liveCalls.set(sessions.size);
      },
    });
    sessions.set(info.callId, session);
    liveCalls.set(sessions.size);
    return session;
  }
}
