/**
 * What the store keeps: plain JSON-able records, one shape per repository.
 * Times are ms since the epoch (Date.now), so they mean the same after a
 * restart. The zod schemas check rows read back (a row that does not match
 * is skipped and counted, never returned half-formed).
 */
import { z } from 'zod';
import type { Endpoint, TransportProtocol } from '../sip/message.js';

/** A watcher's subscription to us (notifier side of an RFC 6665 dialog usage). */
export interface WatcherSubscriptionRecord {
  /** The notifier's key for the subscription (unique). */
  id: string;
  event: string;
  /** The Event header's id parameter, when the SUBSCRIBE had one. */
  eventId?: string;
  /** Person id the subscription watches. */
  resource: string;
  /** The URI the watcher subscribed to (the document's entity). */
  entity: string;
  callId: string;
  localTag: string;
  remoteTag: string;
  /** From of our NOTIFYs (the SUBSCRIBE's To with our tag). */
  localParty: string;
  /** To of our NOTIFYs (the SUBSCRIBE's From). */
  remoteParty: string;
  remoteTarget: string;
  routeSet: string[];
  /** CSeq of our last NOTIFY: the next one after a restart uses localCseq + 1. */
  localCseq: number;
  remoteCseq: number;
  /** ms epoch */
  expiresAt: number;
  /** Accept-negotiated body type and the package's rendering variant (profile). */
  contentType: string;
  variant: string;
  /** Transport the SUBSCRIBE came on. */
  transport: TransportProtocol;
  /** Resolved next hop for NOTIFYs, when known. */
  destination?: Endpoint;
  /** Version of the next NOTIFY body (RFC 4235 §4.1). */
  version: number;
  /** ms epoch */
  createdAt: number;
  /**
   * A client-defined list subscription (RFC 5367): the list URI it was sent
   * to and the entries of its body, to rebuild the list after a restart.
   */
  clientList?: ClientListRecord;
}

export interface ClientListRecord {
  uri: string;
  entries: Array<{ uri: string; displayName?: string }>;
}

/** A publication made to us (RFC 3903), keyed by its current entity-tag. */
export interface PublicationRecord {
  etag: string;
  /** Person id */
  resource: string;
  event: string;
  /** ms epoch */
  expiresAt: number;
  /** The composed document state (e.g. { rich } or { telephony }); must be JSON-able. */
  state: unknown;
}

/** Our SUBSCRIBE to a PBX or presence server for one person (one per trunk, person and event). */
export interface UpstreamSubscriptionRecord {
  trunk: string;
  personId: string;
  event: string;
  callId: string;
  fromTag: string;
  /** Absent until the dialog is established. */
  toTag?: string;
  remoteTarget: string;
  routeSet: string[];
  /** CSeq of our last request in the dialog. */
  cseq: number;
  /** ms epoch */
  expiresAt: number;
}

/** Our PUBLISH to a presence server for one person (one per trunk, person and event). */
export interface UpstreamPublicationRecord {
  trunk: string;
  personId: string;
  event: string;
  etag: string;
  /** ms epoch */
  expiresAt: number;
}

/**
 * A Graph presence subscription. Same shape as SubscriptionRecord in
 * src/graph/subscription-state.ts (kept structurally identical, not imported:
 * the store sits below graph).
 */
export interface GraphSubscriptionRecord {
  id: string;
  account: string;
  userIds: string[];
  /** ms epoch */
  expiresAt: number;
  clientState: string;
  notificationUrl: string;
}

/** Who a person is in Teams, as the last directory sync found. */
export interface DirectoryCacheRecord {
  personId: string;
  teamsUserId: string;
  upn?: string;
  mail?: string;
  /** ms epoch of the look-up */
  at: number;
}

/**
 * The key pair of rich Graph notifications, when the gateway generated it.
 * Same shape as NotificationKeyRecord in src/graph/notification-keys.ts.
 * The private key is kept as PEM: the store file is readable by its owner only.
 */
export interface GraphNotificationKeyRecord {
  id: string;
  certPem: string;
  keyPem: string;
  /** ms epoch */
  createdAt: number;
}

/**
 * What a person had in Teams before the gateway took it over for a PBX call
 * (busy-on-busy) or wrote its own status message: restored afterwards, also
 * after a restart. Same shape as SavedPresence in src/graph/saved-presence.ts.
 */
export interface GraphSavedPresenceRecord {
  personId: string;
  userId: string;
  /** their own preferred presence (null: none); absent while the gateway holds none of it */
  preferred?: { availability: string; activity: string } | null;
  /** their status message (null: none); absent while the gateway wrote none */
  statusMessage?: { content: string; contentType: string; expiresAt?: number } | null;
  /** ms epoch */
  savedAt: number;
}

/**
 * The msal token cache of the device-code service accounts (their refresh
 * tokens), sealed with AES-256-GCM by src/graph/token-cache.ts: the store
 * holds ciphertext only.
 */
export interface GraphTokenCacheRecord {
  /** which cache (one per app registration and authority) */
  name: string;
  /** names the key that sealed it (not the key), so a changed key is told apart from a damaged record */
  keyId: string;
  /** base64 */
  iv: string;
  tag: string;
  data: string;
  /** ms epoch */
  updatedAt: number;
}

const str = z.string();
const num = z.number().finite();
const transport = z.enum(['udp', 'tcp', 'tls', 'ws', 'wss']);

export const watcherSubscriptionSchema: z.ZodType<WatcherSubscriptionRecord> = z.object({
  id: str,
  event: str,
  eventId: str.optional(),
  resource: str,
  entity: str,
  callId: str,
  localTag: str,
  remoteTag: str,
  localParty: str,
  remoteParty: str,
  remoteTarget: str,
  routeSet: z.array(str),
  localCseq: num,
  remoteCseq: num,
  expiresAt: num,
  contentType: str,
  variant: str,
  transport,
  destination: z.object({ protocol: transport, address: str, port: num }).optional(),
  version: num,
  createdAt: num,
  clientList: z.object({ uri: str, entries: z.array(z.object({ uri: str, displayName: str.optional() })) }).optional(),
});

export const publicationSchema: z.ZodType<PublicationRecord> = z.object({
  etag: str,
  resource: str,
  event: str,
  expiresAt: num,
  state: z.unknown(),
});

export const upstreamSubscriptionSchema: z.ZodType<UpstreamSubscriptionRecord> = z.object({
  trunk: str,
  personId: str,
  event: str,
  callId: str,
  fromTag: str,
  toTag: str.optional(),
  remoteTarget: str,
  routeSet: z.array(str),
  cseq: num,
  expiresAt: num,
});

export const upstreamPublicationSchema: z.ZodType<UpstreamPublicationRecord> = z.object({
  trunk: str,
  personId: str,
  event: str,
  etag: str,
  expiresAt: num,
});

export const graphSubscriptionSchema: z.ZodType<GraphSubscriptionRecord> = z.object({
  id: str,
  account: str,
  userIds: z.array(str),
  expiresAt: num,
  clientState: str,
  notificationUrl: str,
});

export const directoryCacheSchema: z.ZodType<DirectoryCacheRecord> = z.object({
  personId: str,
  teamsUserId: str,
  upn: str.optional(),
  mail: str.optional(),
  at: num,
});

export const graphNotificationKeySchema: z.ZodType<GraphNotificationKeyRecord> = z.object({
  id: str,
  certPem: str,
  keyPem: str,
  createdAt: num,
});

export const graphSavedPresenceSchema: z.ZodType<GraphSavedPresenceRecord> = z.object({
  personId: str,
  userId: str,
  preferred: z.object({ availability: str, activity: str }).nullable().optional(),
  statusMessage: z.object({ content: str, contentType: str, expiresAt: num.optional() }).nullable().optional(),
  savedAt: num,
});

export const graphTokenCacheSchema: z.ZodType<GraphTokenCacheRecord> = z.object({
  name: str,
  keyId: str,
  iv: str,
  tag: str,
  data: str,
  updatedAt: num,
});

/** Joins the parts of a composite key (a separator no name contains). */
export function compositeKey(...parts: readonly string[]): string {
  return parts.join('\u001f');
}
