/**
 * One service account's sign-in, as an explicit state machine:
 *
 *   signed-out ──(device code started)──▶ signing-in ──(done)──▶ signed-in
 *        │                                   │  ▲                  │
 *        │ (password sign-in ok)             │  └──(sign in again)─┤
 *        └──────────────▶ signed-in          ▼                     ▼
 *                                          failed ◀──(refresh refused / password refused)
 *
 * A failed device-code account leaves `failed` only through a new sign-in;
 * a failed password account never does (a changed password needs a changed
 * config and a restart): no retried grant, no Smart Lockout.
 *
 * `usable` says whether subscriptions may use the account now: signed in;
 * a password account not yet tried; or one signing in again while its
 * earlier sign-in still holds.
 */
import type { SignInMethod } from './config.js';
import { systemClock, type Clock } from '../util/clock.js';

export type SignInState = 'signed-out' | 'signing-in' | 'signed-in' | 'failed';

export interface DeviceCodePrompt {
  userCode: string;
  verificationUri: string;
  /** the service's own sentence for the user */
  message: string;
  /** ms epoch */
  expiresAt: number;
}

export interface AccountStatus {
  account: string;
  method: SignInMethod;
  state: SignInState;
  usable: boolean;
  /** what is wrong, or what happened last */
  reason?: string;
  /** the service's error code (e.g. AADSTS50173, invalid_grant) */
  code?: string;
  /** while signing in: what the administrator enters where */
  prompt?: DeviceCodePrompt;
  /** ms epoch of the last completed sign-in */
  signedInAt?: number;
  /** ms epoch the state was entered */
  since: number;
}

const TRANSITIONS: Readonly<Record<SignInState, readonly SignInState[]>> = {
  'signed-out': ['signing-in', 'signed-in', 'failed'],
  'signing-in': ['signing-in', 'signed-in', 'signed-out', 'failed'],
  'signed-in': ['signed-in', 'signing-in', 'failed'],
  failed: ['signing-in'],
};

export class SignInTransitionError extends Error {}

export interface TransitionDetail {
  reason?: string;
  code?: string;
  prompt?: DeviceCodePrompt;
}

export class AccountSignIn {
  private st: SignInState = 'signed-out';
  private detail: TransitionDetail = {};
  private since: number;
  private signedInAt: number | undefined;
  /** an earlier sign-in still holds (a new one is under way) */
  private holding = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly method: SignInMethod,
    private readonly clock: Pick<Clock, 'now'> = systemClock,
  ) {
    this.since = clock.now();
    if (method === 'deviceCode') this.detail = { reason: `not signed in: run presence-gateway-cli signin ${name}, or Sign in on the diagnostics page` };
  }

  get state(): SignInState {
    return this.st;
  }

  usable(): boolean {
    if (this.st === 'signed-in') return true;
    if (this.st === 'signed-out') return this.method === 'password';
    if (this.st === 'signing-in') return this.holding;
    return false;
  }

  /** Whether a transition to `next` is allowed from here. */
  can(next: SignInState): boolean {
    if (next === 'signing-in' && this.method !== 'deviceCode') return false;
    return TRANSITIONS[this.st].includes(next);
  }

  to(next: SignInState, detail: TransitionDetail = {}): void {
    if (!this.can(next)) throw new SignInTransitionError(`account ${this.name}: ${this.st} → ${next} is not a valid sign-in transition`);
    const wasUsable = this.usable();
    if (next === 'signing-in') this.holding = this.st === 'signed-in' || (this.st === 'signing-in' && this.holding);
    else this.holding = false;
    // back on an earlier sign-in after a failed new one (a code given) is no new sign-in
    if (next === 'signed-in' && detail.code === undefined) this.signedInAt = this.clock.now();
    if (next !== this.st) this.since = this.clock.now();
    this.st = next;
    this.detail = { ...detail };
    if (wasUsable !== this.usable() || next !== 'signing-in' || detail.prompt !== undefined) for (const l of this.listeners) l();
  }

  /** Told after every change of state (and when a prompt arrives); returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get prompt(): DeviceCodePrompt | undefined {
    return this.detail.prompt;
  }

  status(): AccountStatus {
    const s: AccountStatus = { account: this.name, method: this.method, state: this.st, usable: this.usable(), since: this.since };
    if (this.detail.reason !== undefined) s.reason = this.detail.reason;
    if (this.detail.code !== undefined) s.code = this.detail.code;
    if (this.detail.prompt !== undefined) s.prompt = { ...this.detail.prompt };
    if (this.signedInAt !== undefined) s.signedInAt = this.signedInAt;
    return s;
  }
}
