/**
 * One description per repository, shared by every store implementation:
 * the table name, how a record is keyed, when it expires, and its shape.
 */
import { z } from 'zod';
import {
  compositeKey,
  directoryCacheSchema,
  graphNotificationKeySchema,
  graphSavedPresenceSchema,
  graphSubscriptionSchema,
  graphTokenCacheSchema,
  publicationSchema,
  upstreamPublicationSchema,
  upstreamSubscriptionSchema,
  watcherSubscriptionSchema,
  type DirectoryCacheRecord,
  type GraphNotificationKeyRecord,
  type GraphSavedPresenceRecord,
  type GraphSubscriptionRecord,
  type GraphTokenCacheRecord,
  type PublicationRecord,
  type UpstreamPublicationRecord,
  type UpstreamSubscriptionRecord,
  type WatcherSubscriptionRecord,
} from './records.js';

export interface TableSpec<R> {
  readonly table: string;
  keyOf(record: R): string;
  /** ms epoch, or null for records that never expire */
  expiresOf(record: R): number | null;
  readonly schema: z.ZodType<R>;
}

export interface MetaRecord {
  key: string;
  value: string;
}

export const TABLES = {
  watcherSubscriptions: {
    table: 'watcher_subscriptions',
    keyOf: (r) => r.id,
    expiresOf: (r) => r.expiresAt,
    schema: watcherSubscriptionSchema,
  } satisfies TableSpec<WatcherSubscriptionRecord>,
  publications: {
    table: 'publications',
    keyOf: (r) => r.etag,
    expiresOf: (r) => r.expiresAt,
    schema: publicationSchema,
  } satisfies TableSpec<PublicationRecord>,
  upstreamSubscriptions: {
    table: 'upstream_subscriptions',
    keyOf: (r) => compositeKey(r.trunk, r.personId, r.event),
    expiresOf: (r) => r.expiresAt,
    schema: upstreamSubscriptionSchema,
  } satisfies TableSpec<UpstreamSubscriptionRecord>,
  upstreamPublications: {
    table: 'upstream_publications',
    keyOf: (r) => compositeKey(r.trunk, r.personId, r.event),
    expiresOf: (r) => r.expiresAt,
    schema: upstreamPublicationSchema,
  } satisfies TableSpec<UpstreamPublicationRecord>,
  graphSubscriptions: {
    table: 'graph_subscriptions',
    keyOf: (r) => r.id,
    expiresOf: (r) => r.expiresAt,
    schema: graphSubscriptionSchema,
  } satisfies TableSpec<GraphSubscriptionRecord>,
  directoryCache: {
    table: 'directory_cache',
    keyOf: (r) => r.personId,
    expiresOf: () => null,
    schema: directoryCacheSchema,
  } satisfies TableSpec<DirectoryCacheRecord>,
  graphNotificationKeys: {
    table: 'graph_notification_keys',
    keyOf: (r) => r.id,
    expiresOf: () => null,
    schema: graphNotificationKeySchema,
  } satisfies TableSpec<GraphNotificationKeyRecord>,
  graphSavedPresence: {
    table: 'graph_saved_presence',
    keyOf: (r) => r.personId,
    expiresOf: () => null,
    schema: graphSavedPresenceSchema,
  } satisfies TableSpec<GraphSavedPresenceRecord>,
  graphTokenCache: {
    table: 'graph_token_cache',
    keyOf: (r) => r.name,
    expiresOf: () => null,
    schema: graphTokenCacheSchema,
  } satisfies TableSpec<GraphTokenCacheRecord>,
} as const;

export const META_TABLE = {
  table: 'meta',
  keyOf: (r) => r.key,
  expiresOf: () => null,
  schema: z.object({ key: z.string(), value: z.string() }),
} satisfies TableSpec<MetaRecord>;
