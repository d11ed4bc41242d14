import { describe, expect, it } from 'vitest';
import { idPattern, newId } from './ids.js';

describe('newId', () => {
  it('matches the pattern of its prefix', () => {
    expect(newId('agt')).toMatch(new RegExp(idPattern('agt')));
  });

  it('sorts ids made in the same millisecond in the order they were made', () => {
    const now = Date.now() + 10_000;
    const ids = Array.from({ length: 500 }, () => newId('key', now));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('sorts by creation time across milliseconds', () => {
    const a = newId('org', Date.now() + 20_000);
    const b = newId('org', Date.now() + 20_001);
    expect(a < b).toBe(true);
  });
});
