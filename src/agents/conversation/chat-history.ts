import type { ChatMessage } from '../../media/providers.js';

/** An assistant message in the history; barge-in cuts its content to what the caller heard. */
export type AssistantEntry = Extract<ChatMessage, { role: 'assistant' }>;

/**
 * The conversation as the model sees it. Two caller messages never follow each other: when the agent said
 * nothing the caller heard in between (they cut in while it was still thinking), the caller's new words are
 * added to their last message, because the model never answered it. An empty assistant message would be
 * refused by some compatible servers, and an invented one ("[interrupted]") would be imitated by the model.
 */
export class ChatHistory {
  private readonly messages: ChatMessage[] = [];

  /** Adds what the caller said (or keyed), joined to their last message if the agent has not answered it. */
  addUser(text: string): void {
    const last = this.messages.at(-1);
    if (last?.role === 'user') last.content = `${last.content}\n${text}`;
    else this.messages.push({ role: 'user', content: text });
  }

  /** Adds an assistant message and returns it, so the answer can fill or cut it later. */
  addAssistant(content = ''): AssistantEntry {
    const entry: AssistantEntry = { role: 'assistant', content };
    this.messages.push(entry);
    return entry;
  }

  /** Adds a tool's result. */
  addTool(toolCallId: string, content: string): void {
    this.messages.push({ role: 'tool', toolCallId, content });
  }

  /** Removes an entry (an answer nobody heard); removing one already gone does nothing. */
  remove(entry: ChatMessage): void {
    const i = this.messages.indexOf(entry);
    if (i !== -1) this.messages.splice(i, 1);
  }

  /** The messages of a request for `text` from the caller, as `addUser(text)` would make them; the history is not changed. */
  forRequestWith(systemPrompt: string, text: string): ChatMessage[] {
    const messages = this.forRequest(systemPrompt);
    const last = messages.at(-1);
    if (last?.role === 'user') messages[messages.length - 1] = { ...last, content: `${last.content}\n${text}` };
    else messages.push({ role: 'user', content: text });
    return messages;
  }

  /** The messages of the next request: the system prompt, then the history. */
  forRequest(systemPrompt: string): ChatMessage[] {
    return systemPrompt ? [{ role: 'system', content: systemPrompt }, ...this.messages] : [...this.messages];
  }
}
