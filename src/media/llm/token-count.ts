// Token counts for requests whose provider reported none: a stream we cut on barge-in is billed for its
// prompt, yet carries no `usage`. Counted with OpenAI's o200k_base encoding (GPT-4o and later); for other
// models the figure is an estimate, and is recorded as one.
import type { ChatMessage, ToolSpec } from '../providers.js';

/** Counts the tokens of prompts and of streamed output. */
export interface TokenCounter {
  /** Tokens of the messages and tool definitions of one chat request. */
  prompt(messages: readonly ChatMessage[], tools?: readonly ToolSpec[]): number;
  /** Tokens of a piece of text. */
  text(text: string): number;
}

/**
 * Loads the tokenizer. Its tables take about a quarter of a second to parse on the thread that loads them,
 * so this runs once at start, never in the middle of a call.
 */
export async function loadTokenCounter(): Promise<TokenCounter> {
  const { encode, encodeChat } = await import('gpt-tokenizer/encoding/o200k_base');
  return {
    prompt(messages, tools) {
      const chat = messages.map(toTokenizerMessage);
      const toolTokens = tools?.length ? encode(JSON.stringify(tools)).length : 0;
      return encodeChat(chat, 'gpt-4o').length + toolTokens;
    },
    text: (text) => (text ? encode(text).length : 0),
  };
}

function toTokenizerMessage(message: ChatMessage): { role: string; content: string } {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      return { role: 'assistant', content: message.toolCalls?.length ? `${message.content}${JSON.stringify(message.toolCalls)}` : message.content };
    case 'tool':
      return { role: 'tool', content: message.content };
    default: {
      const never: never = message;
      throw new Error(`unknown chat message ${JSON.stringify(never)}`);
    }
  }
}
