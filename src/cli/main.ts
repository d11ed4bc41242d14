import { ConfigError, loadConfig, loadDotenv, type Config } from '../config.js';
import { VERSION } from '../app.js';
import { runServe } from './serve.js';
import { runWorker } from './worker.js';
import { runMigrate } from './migrate.js';
import { runBootstrap } from './bootstrap.js';
import { runKeys } from './keys.js';
import { runSimulate } from './simulate.js';
import { runVoices } from './voices.js';
import { CommandError, UsageError } from './args.js';
import { DataDirLockedError } from '../db/data-dir-lock.js';

const HELP = `vocelio ${VERSION}: voice AI agents on the phone

Usage: vocelio <command> [options]

Commands:
  serve        HTTP API, Twilio webhooks, media streams, dashboard (embedded: also runs the workers)
  worker       job consumers (needs DATABASE_URL and REDIS_URL)
  migrate      apply pending database migrations
  bootstrap    create an organization, its owner login and an owner API key
                 --org <name> --email <email> [--password <password>]
  keys         manage API keys: keys list --org <org_id>
                 keys create --org <org_id> --name <name> [--role member] [--scope <scope>]...
                 keys revoke <key_id> --org <org_id>
  simulate     call an agent without a phone: plays Twilio's side of a call from a script
                 --agent <agt_id> [--url http://localhost:3000] [--key vk_... | VOCELIO_API_KEY]
                 steps, in order: --say <file.wav|.ulaw> [--barge-in <ms>] [--no-wait]
                                  --pause <ms>  --dtmf <keys>  --wait
                 or --script <steps.json>; [--record agent.wav] [--json] [--reply-timeout <ms>]
  voices       Piper voices for local speech (into VOICES_DIR, from PIPER_VOICES_URL)
                 voices pull <name> [--force]      download and verify, e.g. en_US-lessac-medium
                 voices list [--json]              installed voices
                 voices list --available [--language en] [--json]   the catalog
  help         this text

Configuration comes from environment variables (and ./.env); see README.md.
`;

/** Turns anything thrown at the top level into one line and an exit code. */
function fail(err: unknown): never {
  if (err instanceof ConfigError) console.error(`vocelio: configuration error: ${err.message}`);
  else if (err instanceof UsageError) console.error(`vocelio: ${err.message}\nRun "vocelio help" for usage.`);
  else if (err instanceof CommandError || err instanceof DataDirLockedError) console.error(`vocelio: ${err.message}`);
  else console.error(`vocelio: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(err instanceof UsageError ? 2 : 1);
}

async function main(argv: string[]): Promise<void> {
  // Everything this process writes (database, recordings, voices, keys) is owner-only; PGlite and other
  // libraries create files with 0666 and leave the rest to the umask.
  process.umask(0o077);
  const [command = 'help', ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP);
    return;
  }
  if (command === '--version' || command === 'version') {
    console.log(VERSION);
    return;
  }
  loadDotenv();
  // A client of a running server: it needs none of the server's configuration.
  if (command === 'simulate') return runSimulate(rest);
  const config: Config = loadConfig();
  switch (command) {
    case 'serve':
      return runServe(config, rest);
    case 'worker':
      return runWorker(config, rest);
    case 'migrate':
      return runMigrate(config, rest);
    case 'bootstrap':
      return runBootstrap(config, rest);
    case 'keys':
      return runKeys(config, rest);
    case 'voices':
      return runVoices(config, rest);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch(fail);
