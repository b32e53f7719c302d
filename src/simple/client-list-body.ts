/**
 * The list a subscriber sends in its SUBSCRIBE (RFC 5367): a resource-lists
 * document (RFC 4826) with Content-Disposition: recipient-list, optionally
 * compressed (Content-Encoding: deflate or gzip, RFC 3261 §20.12). This
 * module reads it or says which response refuses it.
 */
import { gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { BodyError, DEFAULT_MAX_BODY_BYTES, RESOURCE_LISTS_CONTENT_TYPE, parseResourceLists, type ResourceListEntry } from '../bodies/index.js';
import { parseMediaType } from '../sip/header-values.js';
import type { SipRequest, SipResponse } from '../sip/message.js';
import { hasOptionTag } from '../sip/option-tags.js';
import { reply, safeReason } from './sip-util.js';

export const RECIPIENT_LIST_SUBSCRIBE = 'recipient-list-subscribe';
const ACCEPT_ENCODING = 'identity, deflate, gzip';

export type ClientListBody = { ok: true; entries: ResourceListEntry[] } | { ok: false; response: SipResponse };

/** The disposition type of Content-Disposition, lower-case, or undefined. */
function dispositionOf(request: SipRequest): string | undefined {
  const v = request.headers.get('content-disposition');
  if (v === undefined) return undefined;
  const semi = v.indexOf(';');
  return (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase();
}

/** Whether a SUBSCRIBE carries (or says it carries) its own list: RFC 5367 §3. */
export function isClientListSubscribe(request: SipRequest): boolean {
  return hasOptionTag(request.headers, 'require', RECIPIENT_LIST_SUBSCRIBE) || dispositionOf(request) === 'recipient-list';
}

function decode(body: Buffer, encodings: string[], maxBytes: number): Buffer {
  let out = body;
  // RFC 3261 §20.12: encodings are listed in the order they were applied; undo them last first.
  for (const enc of [...encodings].reverse()) {
    const opts = { maxOutputLength: maxBytes };
    if (enc === 'identity') continue;
    if (enc === 'gzip' || enc === 'x-gzip') out = gunzipSync(out, opts);
    else if (enc === 'deflate') {
      // "deflate" is zlib-wrapped (RFC 1950); some senders write a raw RFC 1951 stream.
      try {
        out = inflateSync(out, opts);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw err;
        out = inflateRawSync(out, opts);
      }
    } else throw new BodyError(415, `Content-Encoding ${enc} is not supported`);
  }
  return out;
}

/** Read the list of a client-list SUBSCRIBE, at most `maxEntries` distinct entries. */
export function readClientList(request: SipRequest, maxEntries: number): ClientListBody {
  const refuse = (status: number, reason: string, extra?: Array<[string, string]>): ClientListBody => ({
    ok: false,
    response: reply(request, status, extra, { reason }),
  });
  if (request.body.length === 0) return refuse(400, 'Bad Request - recipient-list-subscribe without a resource-lists body');
  const disposition = dispositionOf(request);
  if (disposition !== undefined && disposition !== 'recipient-list') {
    return refuse(415, `Unsupported Media Type - Content-Disposition ${disposition.slice(0, 40)} (recipient-list expected)`, [
      ['accept', RESOURCE_LISTS_CONTENT_TYPE],
    ]);
  }
  const ct = request.headers.get('content-type');
  const media = ct === undefined ? null : parseMediaType(ct);
  if (media === null || `${media.type}/${media.subtype}`.toLowerCase() !== RESOURCE_LISTS_CONTENT_TYPE) {
    return refuse(415, 'Unsupported Media Type', [['accept', RESOURCE_LISTS_CONTENT_TYPE]]);
  }
  const encodings: string[] = [];
  for (const v of request.headers.getAll('content-encoding')) for (const e of v.split(',')) if (e.trim().length > 0) encodings.push(e.trim().toLowerCase());
  let body: Buffer;
  try {
    body = decode(request.body, encodings, DEFAULT_MAX_BODY_BYTES);
  } catch (err) {
    if (err instanceof BodyError) return refuse(415, safeReason('Unsupported Media Type', err.message), [['accept-encoding', ACCEPT_ENCODING]]);
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      return refuse(413, `Request Entity Too Large - the decompressed list is above ${DEFAULT_MAX_BODY_BYTES} bytes`);
    }
    return refuse(400, safeReason('Bad Request - the body does not decompress', (err as Error).message));
  }
  try {
    return { ok: true, entries: parseResourceLists(body, { maxEntries }).entries };
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    if (err.status === 413) return refuse(413, `Request Entity Too Large - at most ${maxEntries} resources in a client list`);
    if (err.status === 415) return refuse(415, safeReason('Unsupported Media Type', err.message), [['accept', RESOURCE_LISTS_CONTENT_TYPE]]);
    return refuse(400, safeReason('Bad Request', err.message));
  }
}
