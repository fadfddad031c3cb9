/**
 * The error catalogue: every error the system reports to a caller has a stable code here.
 *
 * Codes never change meaning once shipped; front ends map them to their own dialect
 * (RESP `-ERR`/`-CONTENTION`, HTTP status, WebSocket `{error: {code}}`). Bad input is a
 * PaxosStoreError with a code; a failed assertion (a bug) is a plain AssertionError.
 */

export const errorCatalogue = {
  INVALID_ARGUMENT: { httpStatus: 400, message: 'invalid argument' },
  KEY_TOO_LARGE: { httpStatus: 413, message: 'key too large' },
  VALUE_TOO_LARGE: { httpStatus: 413, message: 'value too large' },
  REQUEST_TOO_LARGE: { httpStatus: 413, message: 'request too large' },
  NOT_FOUND: { httpStatus: 404, message: 'not found' },
  PRECONDITION_FAILED: { httpStatus: 412, message: 'precondition failed' },
  CONTENTION: { httpStatus: 409, message: 'too much contention on this key; retry' },
  NO_QUORUM: { httpStatus: 503, message: 'no quorum of replicas reachable' },
  OVERLOADED: { httpStatus: 503, message: 'overloaded; retry later' },
  TIMEOUT: { httpStatus: 504, message: 'timed out' },
  WRONG_TYPE: { httpStatus: 400, message: 'operation against a value of the wrong type' },
  UNKNOWN_COMMAND: { httpStatus: 400, message: 'unknown command' },
  PROTOCOL_ERROR: { httpStatus: 400, message: 'protocol error' },
  UNAUTHENTICATED: { httpStatus: 401, message: 'unauthenticated' },
  CORRUPTION: { httpStatus: 500, message: 'data corruption detected' },
  NO_SPACE: { httpStatus: 507, message: 'no space left on device' },
  IO_ERROR: { httpStatus: 500, message: 'I/O error' },
  CLOSED: { httpStatus: 503, message: 'closed' },
  CONFIG_MISMATCH: { httpStatus: 500, message: 'configuration does not match the data directory' },
  INTERNAL: { httpStatus: 500, message: 'internal error' },
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

export class PaxosStoreError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message ?? errorCatalogue[code].message, options);
    this.name = 'PaxosStoreError';
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return errorCatalogue[this.code].httpStatus;
  }
}

export function isPaxosStoreError(error: unknown): error is PaxosStoreError {
  return error instanceof PaxosStoreError;
}

/** Maps a Node.js system error from the file layer onto the catalogue (ENOSPC → NO_SPACE, …). */
export function fromSystemError(error: unknown, what: string): PaxosStoreError {
  if (error instanceof PaxosStoreError) return error;
  const code = (error as { code?: string } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new PaxosStoreError('NO_SPACE', `${what}: no space left on device`, undefined, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new PaxosStoreError('IO_ERROR', `${what}: ${message}`, { systemCode: code }, { cause: error });
}
