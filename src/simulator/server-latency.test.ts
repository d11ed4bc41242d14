import { describe, expect, it } from 'vitest';
import { formatServerAnswers } from './server-latency.js';

describe('the server\'s caller-wait lines of the simulate report', () => {
  it('shows each answer\'s caller wait with the parts it adds up from', () => {
    const lines = formatServerAnswers([
      { seq: 2, latency: { callerWaitMs: 1166, endOfTurnMs: 463, sttFinalMs: 0, llmFirstTokenMs: 331.88, firstChunkMs: 176.44, ttsFirstByteMs: 132.01, overheadMs: 0 } },
    ]);
    expect(lines).toEqual(['  answer #2: caller wait 1166 ms = end of turn 463 + LLM first token 332 + first chunk 176 + TTS first byte 132 + ours 0']);
  });

  it('names the STT final wait inside the end of turn when there was one, and a dash for a part not measured', () => {
    const [line] = formatServerAnswers([{ seq: 4, latency: { callerWaitMs: 900, endOfTurnMs: 600, sttFinalMs: 120, ttsFirstByteMs: 80, overheadMs: 2 } }]);
    expect(line).toBe('  answer #4: caller wait 900 ms = end of turn 600 (STT final 120) + LLM first token - + first chunk - + TTS first byte 80 + ours 2');
  });
});
