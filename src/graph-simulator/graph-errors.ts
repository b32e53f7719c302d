import { isoSeconds } from './ids.js';

/** An error a Graph route answers with: status, Graph error code, message, extra headers. */
export class GraphHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'GraphHttpError';
  }
}

export interface GraphErrorBody {
  error: {
    code: string;
    message: string;
    innerError: { date: string; 'request-id': string; 'client-request-id': string };
  };
}

/** The body shape Microsoft Graph uses for every error. */
export function graphErrorBody(code: string, message: string, requestId: string, clientRequestId: string, now: number): GraphErrorBody {
  return {
    error: {
      code,
      message,
      innerError: { date: isoSeconds(now), 'request-id': requestId, 'client-request-id': clientRequestId },
    },
  };
}

export const badRequest = (message: string, code = 'BadRequest'): GraphHttpError => new GraphHttpError(400, code, message);
export const notFound = (message: string, code = 'Request_ResourceNotFound'): GraphHttpError => new GraphHttpError(404, code, message);
export const forbidden = (message: string, code = 'Forbidden'): GraphHttpError => new GraphHttpError(403, code, message);
