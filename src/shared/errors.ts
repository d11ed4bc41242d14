/** An error the API caller can act on: a stable code, a human message, an HTTP status and optional details. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** 404 for a resource that does not exist in the caller's organization (never reveals other tenants' ids). */
export const notFound = (what: string, id: string): AppError =>
  new AppError('not_found', `${what} ${id} does not exist`, 404);

/** 400 for input that passed the schema but cannot work. */
export const invalid = (message: string, details?: unknown): AppError =>
  new AppError('invalid_request', message, 400, details);

/** 401: no or bad credentials. */
export const unauthorized = (message = 'authentication required'): AppError =>
  new AppError('unauthorized', message, 401);

/** 403: authenticated, but the role or scope does not allow this. */
export const forbidden = (message: string): AppError => new AppError('forbidden', message, 403);

/** 409: the request conflicts with the current state. */
export const conflict = (message: string, details?: unknown): AppError =>
  new AppError('conflict', message, 409, details);

/** A failure talking to an external provider; `retryable` drives fallback and retry logic. */
export class ProviderError extends Error {
  constructor(
    readonly provider: string,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ProviderError';
  }

  /** 408, 429 and 5xx are worth retrying; any other 4xx is not. */
  static isRetryableStatus(status: number): boolean {
    return status === 408 || status === 429 || status >= 500;
  }
}
