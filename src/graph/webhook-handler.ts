/**
 * The Graph webhook, framework-agnostic: the validation handshake and the
 * parsing of change and lifecycle notification batches. What to do with
 * them is the presence reader's business.
 */
import { isRecord } from './json.js';

export interface WebhookReply {
  status: number;
  contentType?: string;
  body?: string;
}

export interface WebhookHandlers {
  /** POST <url>?validationToken=...: Graph checks the endpoint before creating a subscription. */
  handleValidation(query: unknown): WebhookReply;
  /** POST <url> with a notification batch; answers at once, works after. */
  handleNotifications(body: unknown): WebhookReply;
}

const MAX_TOKEN = 4096;

/** The validation token of a query, when it has one. */
export function validationToken(query: unknown): string | undefined {
  if (!isRecord(query)) return undefined;
  const v = query['validationToken'];
  const t = Array.isArray(v) ? v[0] : v;
  return typeof t === 'string' ? t : undefined;
}

/** Echo the decoded token as text/plain, 200, in time (Graph waits 10 s). */
// Graph: change-notifications-delivery-webhooks (notification endpoint validation)
export function validationReply(query: unknown): WebhookReply {
  const token = validationToken(query);
  if (token === undefined || token.length > MAX_TOKEN) return { status: 400, contentType: 'text/plain; charset=utf-8', body: 'validationToken missing or too long' };
  return { status: 200, contentType: 'text/plain; charset=utf-8', body: token };
}

/** The encrypted resource of a rich notification, as Graph sends it (changeNotificationEncryptedContent). */
export interface EncryptedContent {
  data: string;
  dataKey: string;
  dataSignature: string;
  encryptionCertificateId: string;
  encryptionCertificateThumbprint: string | undefined;
}

export interface ChangeNotification {
  subscriptionId: string;
  clientState: string | undefined;
  tenantId: string | undefined;
  /** the Teams user whose presence changed (lower case) */
  userId: string;
  /** rich notifications (includeResourceData) only */
  encryptedContent?: EncryptedContent;
}

export interface LifecycleNotification {
  subscriptionId: string;
  clientState: string | undefined;
  tenantId: string | undefined;
  event: string;
}

export interface ParsedNotifications {
  changes: ChangeNotification[];
  lifecycle: LifecycleNotification[];
  /** items that are neither */
  malformed: number;
  /** the JWTs of a batch with resource data (changeNotificationCollection.validationTokens), when it has them */
  validationTokens?: string[];
}

const RESOURCE_ID = /communications\/presences(?:\('([^']+)'\)|\/([^/?()]+))/i;

function userIdOf(item: Record<string, unknown>): string | undefined {
  const rd = item['resourceData'];
  if (isRecord(rd) && typeof rd['id'] === 'string' && rd['id'] !== '') return rd['id'].toLowerCase();
  const resource = item['resource'];
  if (typeof resource !== 'string') return undefined;
  const m = RESOURCE_ID.exec(resource);
  const id = m?.[1] ?? m?.[2];
  if (id === undefined) return undefined;
  try {
    return decodeURIComponent(id).toLowerCase();
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function encryptedContentOf(v: unknown): EncryptedContent | undefined {
  if (!isRecord(v)) return undefined;
  const { data, dataKey, dataSignature, encryptionCertificateId } = v;
  if (typeof data !== 'string' || typeof dataKey !== 'string' || typeof dataSignature !== 'string' || typeof encryptionCertificateId !== 'string') return undefined;
  return { data, dataKey, dataSignature, encryptionCertificateId, encryptionCertificateThumbprint: str(v['encryptionCertificateThumbprint']) };
}

/** Split a notification POST body into change and lifecycle notifications. Never throws. */
export function parseNotifications(body: unknown, maxItems = 1000): ParsedNotifications {
  const out: ParsedNotifications = { changes: [], lifecycle: [], malformed: 0 };
  const value = isRecord(body) ? body['value'] : undefined;
  if (!Array.isArray(value)) {
    out.malformed = 1;
    return out;
  }
  for (const item of value.slice(0, maxItems)) {
    if (!isRecord(item) || typeof item['subscriptionId'] !== 'string') {
      out.malformed++;
      continue;
    }
    const base = { subscriptionId: item['subscriptionId'], clientState: str(item['clientState']), tenantId: str(item['tenantId']) };
    if (typeof item['lifecycleEvent'] === 'string') {
      out.lifecycle.push({ ...base, event: item['lifecycleEvent'] });
      continue;
    }
    const userId = userIdOf(item);
    if (userId === undefined) {
      out.malformed++;
      continue;
    }
    const change: ChangeNotification = { ...base, userId };
    // Graph: change-notifications-with-resource-data (encryptedContent on each item, validationTokens on the batch)
    const encrypted = encryptedContentOf(item['encryptedContent']);
    if (encrypted !== undefined) change.encryptedContent = encrypted;
    out.changes.push(change);
  }
  out.malformed += Math.max(0, value.length - maxItems);
  const tokens = isRecord(body) ? body['validationTokens'] : undefined;
  if (Array.isArray(tokens)) out.validationTokens = tokens.filter((x): x is string => typeof x === 'string').slice(0, 100);
  return out;
}
