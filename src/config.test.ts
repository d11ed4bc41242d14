import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, s3SettingsFromEnv } from './config.js';

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

  it('refuses TRUST_PROXY=true, saying what to write instead', () => {
    for (const value of ['true', 'TRUE', 'yes', 'on']) {
      const err = failure({ TRUST_PROXY: value });
      expect(err.variable).toBe('TRUST_PROXY');
      expect(err.message).toContain('any client choose its address');
      expect(err.message).toContain('TRUST_PROXY=loopback');
    }
  });

  it('refuses a bare hop count for TRUST_PROXY: it cannot tell a proxy from a direct client', () => {
    for (const value of ['1', '2']) {
      const err = failure({ TRUST_PROXY: value });
      expect(err.message).toContain(`hop count (${value})`);
      expect(err.message).toContain('TRUST_PROXY=10.0.0.0/8');
    }
  });

  it('reads TRUST_PROXY as a list of proxy addresses, CIDR ranges and proxy-addr names', () => {
    expect(load({}).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: 'loopback' }).trustProxy).toEqual(['loopback']);
    expect(load({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.10,uniquelocal, fd00::/8, ::1' }).trustProxy).toEqual(['10.0.0.0/8', '192.168.1.10', 'uniquelocal', 'fd00::/8', '::1']);
  });

  it.each(['10.0.0.0/33', 'proxy.internal', '10.0.0.0/8/1', 'localhost', '1.2.3', 'fd00::/129'])('refuses the TRUST_PROXY entry %s', (entry) => {
    const err = failure({ TRUST_PROXY: `loopback, ${entry}` });
    expect(err.message).toBe(`TRUST_PROXY: "${entry}" is not an IP address, a CIDR range or one of loopback, linklocal, uniquelocal`);
  });

  it('sets HTTP timeouts deliberately, and refuses a headers timeout longer than the request timeout', () => {
    expect(load({}).http).toEqual({ requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 65_000, connectionsCheckingIntervalMs: 1000 });
    expect(load({ HTTP_REQUEST_TIMEOUT_MS: '800', HTTP_HEADERS_TIMEOUT_MS: '500' }).http.connectionsCheckingIntervalMs).toBe(50);
    expect(failure({ HTTP_REQUEST_TIMEOUT_MS: '5000', HTTP_HEADERS_TIMEOUT_MS: '6000' }).variable).toBe('HTTP_HEADERS_TIMEOUT_MS');
  });
});

describe('s3SettingsFromEnv', () => {
  const full = {
    RECORDINGS_S3_ENDPOINT: 'http://minio:9000/',
    RECORDINGS_S3_BUCKET: 'calls',
    RECORDINGS_S3_REGION: 'eu-central-1',
    RECORDINGS_S3_ACCESS_KEY_ID: 'AK',
    RECORDINGS_S3_SECRET_ACCESS_KEY: 'SK',
  };

  it('is undefined when no RECORDINGS_S3_ variable is set', () => {
    expect(s3SettingsFromEnv({})).toBeUndefined();
  });

  it('reads the bucket settings', () => {
    expect(s3SettingsFromEnv(full)).toEqual({ endpoint: 'http://minio:9000', bucket: 'calls', region: 'eu-central-1', accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: undefined });
  });

  it("defaults to AWS's regional endpoint", () => {
    const { RECORDINGS_S3_ENDPOINT: _e, ...aws } = full;
    expect(s3SettingsFromEnv(aws)?.endpoint).toBe('https://s3.eu-central-1.amazonaws.com');
  });

  it('names the missing variable when the settings are incomplete', () => {
    const { RECORDINGS_S3_SECRET_ACCESS_KEY: _s, ...partial } = full;
    expect(() => s3SettingsFromEnv(partial)).toThrow(ConfigError);
    expect(() => s3SettingsFromEnv(partial)).toThrow(/RECORDINGS_S3_SECRET_ACCESS_KEY/);
  });

  it('refuses an endpoint that is not an http(s) base URL', () => {
    expect(() => s3SettingsFromEnv({ ...full, RECORDINGS_S3_ENDPOINT: 'ftp://x' })).toThrow(/RECORDINGS_S3_ENDPOINT/);
    expect(() => s3SettingsFromEnv({ ...full, RECORDINGS_S3_ENDPOINT: 'http://user:pw@x' })).toThrow(/RECORDINGS_S3_ENDPOINT/);
  });
});
