import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const load = (env: Record<string, string>) => loadConfig(env);
const failure = (env: Record<string, string>): ConfigError => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('loadConfig', () => {
  it('runs with no configuration at all: port 3000, ./data, embedded database and queue', () => {
    const c = load({});
    expect(c.port).toBe(3000);
    expect(c.dataDir).toMatch(/\/data$/);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.redisUrl).toBeUndefined();
    expect(c.publicUrl).toBe('http://localhost:3000');
  });

  it('derives PUBLIC_URL from PORT and strips a trailing slash from a given one', () => {
    expect(load({ PORT: '8080' }).publicUrl).toBe('http://localhost:8080');
    expect(load({ PUBLIC_URL: 'https://voice.example.com/' }).publicUrl).toBe('https://voice.example.com');
  });

  it('names the variable when PORT is not a number', () => {
    const err = failure({ PORT: 'eighty' });
    expect(err.variable).toBe('PORT');
    expect(err.message).toBe('PORT: must be a whole number, got "eighty"');
  });

  it('refuses a DATABASE_URL that is not a postgres URL, without echoing its password', () => {
    const err = failure({ DATABASE_URL: 'mysql://u:secret@h/db' });
    expect(err.variable).toBe('DATABASE_URL');
    expect(err.message).not.toContain('secret');
  });

  it('refuses a REDIS_URL that is not a URL', () => {
    expect(failure({ REDIS_URL: 'localhost:6379' }).variable).toBe('REDIS_URL');
  });

  it('treats empty variables as unset', () => {
    expect(load({ DATABASE_URL: '', REDIS_URL: '  ' }).databaseUrl).toBeUndefined();
  });

  it('requires TWILIO_AUTH_TOKEN together with TWILIO_ACCOUNT_SID', () => {
    expect(failure({ TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}` }).variable).toBe('TWILIO_AUTH_TOKEN');
  });

  it('checks the shape of a Twilio account SID', () => {
    expect(failure({ TWILIO_ACCOUNT_SID: 'nope', TWILIO_AUTH_TOKEN: 'x' }).variable).toBe('TWILIO_ACCOUNT_SID');
  });

  it('reads provider keys and base URLs under their customary names', () => {
    const c = load({ OPENAI_API_KEY: 'sk-1', OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', DEEPGRAM_API_KEY: 'dg', ELEVENLABS_API_KEY: 'el', STRIPE_SECRET_KEY: 'sk_test_1', STRIPE_WEBHOOK_SECRET: 'whsec_1' });
    expect(c.providers.openai).toEqual({ apiKey: 'sk-1', baseUrl: 'http://127.0.0.1:11434/v1' });
    expect(c.providers.deepgram.apiKey).toBe('dg');
    expect(c.providers.elevenlabs.apiKey).toBe('el');
    expect(c.providers.stripe).toMatchObject({ secretKey: 'sk_test_1', webhookSecret: 'whsec_1' });
  });

  it('rejects a Stripe key that is not a secret or restricted key', () => {
    expect(failure({ STRIPE_SECRET_KEY: 'pk_test_1' }).variable).toBe('STRIPE_SECRET_KEY');
  });

  it('rejects an unknown LOG_LEVEL with the allowed values', () => {
    expect(failure({ LOG_LEVEL: 'loud' }).message).toContain('fatal, error, warn, info, debug, trace, silent');
  });
});
