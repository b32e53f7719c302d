/**
 * Refused Graph password sign-ins (ROPC), remembered across restarts so that a
 * restart loop cannot trip Entra's Smart Lockout: one meta row per account,
 * the refusal with a salted hash of the password (never the password).
 * Structurally the PasswordRefusalStore of src/graph/auth.ts.
 */
import type { GatewayStore } from './store.js';

export interface PasswordRefusalRecord {
  code: string;
  message: string;
  /** ms epoch */
  at: number;
  salt: string;
  hash: string;
}

export interface PasswordRefusalState {
  get(account: string): PasswordRefusalRecord | undefined;
  /** Written through at once (flushed): a crash right after a refusal must not forget it. */
  set(account: string, refusal: PasswordRefusalRecord): void;
  delete(account: string): void;
}

const keyOf = (account: string): string => `graph.passwordRefused.${account.toLowerCase()}`;

export function passwordRefusalState(store: GatewayStore): PasswordRefusalState {
  return {
    get(account) {
      const v = store.meta.get(keyOf(account));
      if (v === undefined) return undefined;
      try {
        const r = JSON.parse(v) as PasswordRefusalRecord;
        return typeof r.hash === 'string' && typeof r.salt === 'string' ? r : undefined;
      } catch {
        return undefined;
      }
    },
    set(account, refusal) {
      store.meta.set(keyOf(account), JSON.stringify(refusal));
      store.flush();
    },
    delete(account) {
      store.meta.delete(keyOf(account));
    },
  };
}
