import { describe, expect, it } from 'vitest';
import { parseRange } from './routes.js';

describe('parseRange', () => {
  it('serves the whole file without a Range header', () => {
    expect(parseRange(undefined, 1000)).toEqual({ kind: 'full' });
  });

  it('reads bytes=a-b as an inclusive range', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual({ kind: 'partial', start: 0, end: 99 });
  });

  it('clips the end of a range to the last byte', () => {
    expect(parseRange('bytes=900-5000', 1000)).toEqual({ kind: 'partial', start: 900, end: 999 });
  });

  it('reads bytes=a- as a range to the end', () => {
    expect(parseRange('bytes=10-', 1000)).toEqual({ kind: 'partial', start: 10, end: 999 });
  });

  it('reads bytes=-n as the last n bytes, or the whole file when n exceeds it', () => {
    expect(parseRange('bytes=-100', 1000)).toEqual({ kind: 'partial', start: 900, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ kind: 'partial', start: 0, end: 999 });
  });

  it('finds a range starting at or past the end unsatisfiable', () => {
    expect(parseRange('bytes=1000-', 1000)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=1000-2000', 1000)).toEqual({ kind: 'unsatisfiable' });
  });

  it('finds an empty suffix, or any range of an empty file, unsatisfiable', () => {
    expect(parseRange('bytes=-0', 1000)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-10', 0)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([
    ['several ranges', 'bytes=0-9,20-29'],
    ['another unit', 'items=0-9'],
    ['end before start', 'bytes=50-10'],
    ['no numbers', 'bytes=-'],
    ['garbage', 'bytes=abc-def'],
    ['absurdly large numbers', 'bytes=99999999999999999999-'],
  ])('ignores %s and serves the whole file', (_what, header) => {
    expect(parseRange(header, 1000)).toEqual({ kind: 'full' });
  });

  it('accepts the unit in any case and spaces around the numbers', () => {
    expect(parseRange('Bytes= 5 - 9 ', 1000)).toEqual({ kind: 'partial', start: 5, end: 9 });
  });
});
