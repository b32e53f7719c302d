import { X509Certificate } from 'node:crypto';
import { certificateThumbprints } from './certs.js';
import { isGuid, newGuid } from './ids.js';
import type { AppRegistration, ServiceAccount } from './model.js';

/** A registered app as the token service needs it. */
export interface RegisteredApp {
  clientId: string;
  displayName: string;
  /** the app's service principal object id in this tenant */
  servicePrincipalId: string;
  secrets: string[];
  certificates: Array<{ pem: string; x5t: string; x5tS256: string; publicKey: X509Certificate['publicKey']; notAfter: number }>;
  applicationPermissions: string[];
  delegatedPermissions: string[];
  allowPublicClient: boolean;
}

export class RegistryError extends Error {}

/** App registrations and password-capable accounts of the tenant. */
/**
 * Smart Lockout as Entra ID applies it by default in the public cloud: 10
 * failed passwords lock the account for a minute, and each further lockout
 * lasts longer (learn.microsoft.com/entra/identity/authentication/howto-password-smart-lockout).
 */
export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_MS = 60_000;

export class TenantRegistry {
  private readonly apps = new Map<string, RegisteredApp>();
  private readonly accounts = new Map<string, ServiceAccount & { userId: string }>();
  private readonly lockout = new Map<string, { failures: number; lockedUntil: number; lockouts: number }>();

  /** A wrong password: counts towards Smart Lockout. */
  passwordFailed(username: string, now: number): void {
    const k = username.toLowerCase();
    const l = this.lockout.get(k) ?? { failures: 0, lockedUntil: 0, lockouts: 0 };
    l.failures++;
    if (l.failures >= LOCKOUT_THRESHOLD) {
      l.lockouts++;
      l.lockedUntil = now + LOCKOUT_MS * 2 ** (l.lockouts - 1);
      l.failures = 0;
    }
    this.lockout.set(k, l);
  }

  passwordSucceeded(username: string): void {
    const l = this.lockout.get(username.toLowerCase());
    if (l !== undefined) l.failures = 0;
  }

  /** Whether Smart Lockout holds the account now (AADSTS50053, even for the right password). */
  lockedOut(username: string, now: number): boolean {
    return (this.lockout.get(username.toLowerCase())?.lockedUntil ?? 0) > now;
  }

  registerApp(input: AppRegistration): RegisteredApp {
    const clientId = input.clientId.toLowerCase();
    if (!isGuid(clientId)) throw new RegistryError(`clientId '${input.clientId}' is not a GUID`);
    const certificates = (input.certificates ?? []).map((pem) => {
      let x509: X509Certificate;
      try {
        x509 = new X509Certificate(pem);
      } catch {
        throw new RegistryError('a certificate is not a PEM X.509 certificate');
      }
      const t = certificateThumbprints(pem);
      return { pem, x5t: t.x5t, x5tS256: t.x5tS256, publicKey: x509.publicKey, notAfter: Date.parse(x509.validTo) };
    });
    const previous = this.apps.get(clientId);
    const app: RegisteredApp = {
      clientId,
      displayName: input.displayName ?? previous?.displayName ?? `app ${clientId.slice(0, 8)}`,
      servicePrincipalId: previous?.servicePrincipalId ?? newGuid(),
      secrets: [...(input.secrets ?? [])],
      certificates,
      applicationPermissions: [...(input.applicationPermissions ?? [])],
      delegatedPermissions: [...(input.delegatedPermissions ?? [])],
      allowPublicClient: input.allowPublicClient ?? false,
    };
    this.apps.set(clientId, app);
    return app;
  }

  removeApp(clientId: string): boolean {
    return this.apps.delete(clientId.toLowerCase());
  }

  app(clientId: string): RegisteredApp | undefined {
    return this.apps.get(clientId.toLowerCase());
  }

  listApps(): RegisteredApp[] {
    return [...this.apps.values()];
  }

  addAccount(account: ServiceAccount & { userId: string }): void {
    this.accounts.set(account.username.toLowerCase(), { ...account });
  }

  removeAccount(username: string): boolean {
    return this.accounts.delete(username.toLowerCase());
  }

  account(username: string): (ServiceAccount & { userId: string }) | undefined {
    return this.accounts.get(username.toLowerCase());
  }

  listAccounts(): Array<ServiceAccount & { userId: string }> {
    return [...this.accounts.values()];
  }
}
