/** Lines the engine says on its own. English for now; per-agent overrides can come with localization. */
export const LINES = {
  reprompt: 'Are you still there?',
  silenceGoodbye: "I haven't heard from you, so I'll end the call now. Goodbye.",
  apology: "I'm sorry, I'm having technical difficulties right now. Please call back later. Goodbye.",
  maxDuration: "We've reached the time limit for this call. Thank you for calling. Goodbye.",
  filler: 'One moment, please.',
} as const;
