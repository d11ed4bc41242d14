import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const PREFIX = `enc:${VERSION}:`;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEALED = /^enc:v1:([0-9a-f]{8}):([A-Za-z0-9+/]+={0,2})$/;

/** A stored secret that this server's key cannot open: the wrong or a lost key, or a damaged value. */
export class SecretKeyError extends Error {
  constructor(
    message: string,
    /** The key id the value names, when it names one. */
    readonly keyId?: string,
  ) {
    super(message);
    this.name = 'SecretKeyError';
  }
}

/** The id a key is known by in sealed values: 8 hex characters of a hash of it, enough to tell keys apart. */
export function keyIdOf(key: Uint8Array): string {
  return createHash('sha256').update('vocelio secrets key id\0').update(key).digest('hex').slice(0, 8);
}

/**
 * Encrypts short secrets (tool header values) for storage: AES-256-GCM, a fresh 96-bit IV per value, stored
 * as `enc:v1:<keyId>:<base64 of iv | tag | ciphertext>`. The version and key id are authenticated too, so a
 * value cannot be relabelled, and a value sealed with another key says so instead of failing obscurely.
 */
export class SecretBox {
  /** This key's id, as it appears in the values it seals. */
  readonly keyId: string;

  constructor(private readonly key: Uint8Array) {
    if (key.byteLength !== 32) throw new Error(`a secrets key has 32 bytes, not ${key.byteLength}`);
    this.keyId = keyIdOf(key);
  }

  /** True for a value in the sealed format; anything else is plain text (written before encryption). */
  static isSealed(value: string): boolean {
    return value.startsWith(PREFIX);
  }

  /** The key id a sealed value names, or null for plain text. */
  static keyIdOf(value: string): string | null {
    return SEALED.exec(value)?.[1] ?? null;
  }

  /** Encrypts one value. */
  seal(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`${PREFIX}${this.keyId}`));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${this.keyId}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  /** Decrypts a sealed value; plain text (a row from before encryption) comes back as it is. */
  open(value: string): string {
    if (!SecretBox.isSealed(value)) return value;
    const m = SEALED.exec(value);
    if (!m) throw new SecretKeyError('a stored secret is damaged (not in the enc:v1 format)');
    const [, keyId = '', data = ''] = m;
    if (keyId !== this.keyId) {
      throw new SecretKeyError(`a stored secret was encrypted with key ${keyId}, but this server's key is ${this.keyId}: set SECRETS_KEY to the key that encrypted it`, keyId);
    }
    const raw = Buffer.from(data, 'base64');
    if (raw.byteLength < IV_BYTES + TAG_BYTES) throw new SecretKeyError('a stored secret is damaged (too short)', keyId);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(`${PREFIX}${keyId}`));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretKeyError(`a stored secret encrypted with key ${keyId} does not decrypt (damaged or altered)`, keyId);
    }
  }
}
