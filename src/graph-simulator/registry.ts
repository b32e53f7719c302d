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
export class TenantRegistry {
  private readonly apps = new Map<string, RegisteredApp>();
  private readonly accounts = new Map<string, ServiceAccount & { userId: string }>();

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
