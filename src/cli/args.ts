import { parseArgs } from 'node:util';

/** A command-line mistake; exits 2 with a hint. */
export class UsageError extends Error {}

/** A failure the user can act on (a server not running, a key refused); exits 1 with the message alone. */
export class CommandError extends Error {}

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;

/** Parses the options of one subcommand, turning parseArgs errors into UsageErrors. */
export function parseCommandArgs<T extends Options>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
