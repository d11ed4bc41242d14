import { describe, expect, it } from 'vitest';
import { promptVariables, renderPrompt, templateProblem } from './prompt.js';

describe('prompt templates', () => {
  it('lists each variable once, in order of first use', () => {
    expect(promptVariables('Hi {{name}}, from {{ company }}', 'Bye {{name}}')).toEqual(['name', 'company']);
  });

  it('fills known variables and blanks unknown ones', () => {
    expect(renderPrompt('Hi {{name}}{{missing}}!', { name: 'Ada' })).toBe('Hi Ada!');
  });

  it('reports an unclosed placeholder', () => {
    expect(templateProblem('Hello {{name')).toMatch(/malformed placeholder/);
  });

  it('reports a placeholder whose name is not an identifier', () => {
    expect(templateProblem('Hello {{1st name}}')).not.toBeNull();
  });

  it('accepts a template without placeholders', () => {
    expect(templateProblem('Just text { not a placeholder }')).toBeNull();
  });
});
