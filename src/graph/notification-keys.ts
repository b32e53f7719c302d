/**
 * The key pair of rich change notifications: Graph encrypts each item's
 * symmetric key with the public key of the certificate a subscription names
 * (encryptionCertificate + encryptionCertificateId), the gateway unwraps it
 * with the private key. The pair comes from the config (PEM files) or is
 * generated once and kept in a NotificationKeyStore (the gateway's store),
 * so a restart decrypts what the subscriptions of the last run still send.
 * Graph does not check the issuer: a self-signed RSA certificate of 2,048 to
 * 4,096 bits will do.
 * Graph: change-notifications-with-resource-data (Managing encryption keys)
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { Logger } from '../util/logger.js';
import { createSelfSignedCertificate } from '../util/x509.js';
import type { Clock } from '../util/clock.js';

/** A stored key pair (PEM); the shape of the store's graph_notification_keys record. */
export interface NotificationKeyRecord {
  /** the encryptionCertificateId the subscriptions carry (at most 128 characters) */
  id: string;
  certPem: string;
  keyPem: string;
  /** ms epoch */
  createdAt: number;
}

export interface NotificationKeyStore {
  load(): Promise<NotificationKeyRecord[]>;
  save(record: NotificationKeyRecord): Promise<void>;
}

/** Keys in memory only (tests; a gateway without a store): a restart generates a new one. */
export class MemoryNotificationKeyStore implements NotificationKeyStore {
  private readonly records = new Map<string, NotificationKeyRecord>();
  async load(): Promise<NotificationKeyRecord[]> {
    return [...this.records.values()].map((r) => ({ ...r }));
  }
  async save(record: NotificationKeyRecord): Promise<void> {
    this.records.set(record.id, { ...record });
  }
}

export interface NotificationKey {
  id: string;
  /** base64 DER of the certificate: the subscription's encryptionCertificate */
  certificateBase64: string;
  /** SHA-1 thumbprint, hex upper case (what encryptionCertificateThumbprint carries) */
  thumbprint: string;
  privateKey: KeyObject;
  /** ms epoch */
  notAfter: number;
}

const MAX_ID = 128;

/** A record into a usable key; throws naming what is wrong. */
export function notificationKeyOf(record: NotificationKeyRecord): NotificationKey {
  const cert = new X509Certificate(record.certPem);
  const privateKey = createPrivateKey(record.keyPem);
  const pub = cert.publicKey;
  if (pub.asymmetricKeyType !== 'rsa') throw new Error('the certificate must have an RSA key');
  const bits = pub.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048 || bits > 4096) throw new Error(`the RSA key must have 2048 to 4096 bits (has ${bits})`);
  // the private key must be the certificate's
  const mine = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  if (!mine.equals(pub.export({ type: 'spki', format: 'der' }))) throw new Error('the private key does not belong to the certificate');
  if (record.id === '' || record.id.length > MAX_ID) throw new Error(`the certificate id must have 1 to ${MAX_ID} characters`);
  return {
    id: record.id,
    certificateBase64: cert.raw.toString('base64'),
    thumbprint: createHash('sha1').update(cert.raw).digest('hex').toUpperCase(),
    privateKey,
    notAfter: Date.parse(cert.validTo),
  };
}

/** The current key (new subscriptions use it) and every older one still held (notifications of older subscriptions). */
export class NotificationKeyring {
  private readonly byId = new Map<string, NotificationKey>();

  constructor(
    readonly current: NotificationKey,
    older: readonly NotificationKey[] = [],
  ) {
    for (const k of older) this.byId.set(k.id, k);
    this.byId.set(current.id, current);
  }

  /** The key an item's encryptionCertificateId names. */
  key(id: string): NotificationKey | undefined {
    return this.byId.get(id);
  }
}

export interface LoadKeysOptions {
  /** PEM files from the config; without them the store's key is used, or one is generated */
  files?: { certPem: string; keyPem: string; id?: string };
  store: NotificationKeyStore;
  logger: Logger;
  clock: Pick<Clock, 'now'>;
  /** validity of a generated certificate (default 2 years) */
  days?: number;
}

/**
 * The keyring for this run: the configured pair, else the newest stored
 * one that is valid for another day, else a new pair (saved before use).
 */
export async function loadNotificationKeys(o: LoadKeysOptions): Promise<NotificationKeyring> {
  let stored: NotificationKey[] = [];
  try {
    const records = await o.store.load();
    for (const r of records.sort((a, b) => b.createdAt - a.createdAt)) {
      try {
        stored.push(notificationKeyOf(r));
      } catch (error) {
        o.logger.warn({ err: error, certificateId: r.id }, 'graph: a stored notification key is unusable; skipped');
      }
    }
  } catch (error) {
    o.logger.warn({ err: error }, 'graph: cannot read the stored notification keys');
    stored = [];
  }
  if (o.files !== undefined) {
    const cert = new X509Certificate(o.files.certPem);
    const id = o.files.id ?? `presence-gateway-${createHash('sha1').update(cert.raw).digest('hex').slice(0, 16)}`;
    const key = notificationKeyOf({ id, certPem: o.files.certPem, keyPem: o.files.keyPem, createdAt: o.clock.now() });
    return new NotificationKeyring(key, stored);
  }
  const dayAhead = o.clock.now() + 86_400_000;
  const usable = stored.find((k) => k.notAfter > dayAhead);
  if (usable !== undefined) return new NotificationKeyring(usable, stored);
  const made = createSelfSignedCertificate('presence-gateway rich notifications', o.days ?? 730);
  const der = new X509Certificate(made.certPem).raw;
  const record: NotificationKeyRecord = {
    id: `presence-gateway-${createHash('sha1').update(der).digest('hex').slice(0, 16)}`,
    certPem: made.certPem,
    keyPem: made.keyPem,
    createdAt: o.clock.now(),
  };
  await o.store.save(record);
  o.logger.info({ certificateId: record.id }, 'graph: generated the key pair for rich notifications');
  return new NotificationKeyring(notificationKeyOf(record), stored);
}
