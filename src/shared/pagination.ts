import { AppError } from './errors.js';

/** Cursors are opaque to clients: base64url of the last id on the page. Ids sort by creation time. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** Decodes a cursor, or throws a 400 that says the cursor is not one we issued. */
export function decodeCursor(cursor: string | undefined, idRegex: RegExp): string | undefined {
  if (cursor === undefined) return undefined;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!idRegex.test(id)) throw new AppError('invalid_cursor', 'cursor is not valid for this list', 400);
  return id;
}

/** Builds a page from `limit + 1` rows fetched in id order: the extra row only proves there is a next page. */
export function toPage<T extends { id: string }, R>(rows: T[], limit: number, map: (row: T) => R): { data: R[]; nextCursor: string | null } {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows.at(-1);
  return { data: pageRows.map(map), nextCursor: hasMore && last ? encodeCursor(last.id) : null };
}
