import type { SimContext } from './context.js';
import type { FreeBusyStatus } from './calendar.js';
import type { SimCounters } from './counters.js';
import { DeviceCodeError, type PendingCodeInfo } from './device-codes.js';
import { DirectoryError } from './directory.js';
import type { AppRegistration, PresenceResource, ServiceAccount, SimUser, SimUserInput } from './model.js';
import type { LifecycleEvent } from './notifier.js';
import type { SessionInfo } from './presence-engine.js';
import { RegistryError } from './registry.js';
import { subscriptionJson } from './subscriptions.js';
import type { FaultSpec, ThrottleConfig } from './throttle.js';

/** What a Teams user can do in the simulated Teams client. */
export type TeamsAction =
  | 'signin'
  | 'signout'
  | 'call'
  | 'conference'
  | 'end-call'
  | 'present'
  | 'stop-presenting'
  | 'dnd'
  | 'clear-dnd'
  | 'away'
  | 'brb'
  | 'available';

export const TEAMS_ACTIONS: readonly TeamsAction[] = [
  'signin',
  'signout',
  'call',
  'conference',
  'end-call',
  'present',
  'stop-presenting',
  'dnd',
  'clear-dnd',
  'away',
  'brb',
  'available',
];

/** The session id of the simulated Teams client. */
export const TEAMS_CLIENT_SESSION = 'teams-client';

export class SimControlError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

type Pair = readonly [string, string];

interface ClientState {
  base: Pair;
  call: Pair | undefined;
  presenting: boolean;
}

/** Test and demo control of the simulator: the typed twin of the /_sim REST API. */
export class SimControl {
  private readonly clients = new Map<string, ClientState>();

  constructor(private readonly ctx: SimContext) {}

  // ---- users

  listUsers(): SimUser[] {
    return [...this.ctx.directory.live()].map((r) => structuredClone(r.user));
  }

  /** A user by object id, UPN, mail nickname or extension (the end of a business phone number). */
  user(ref: string): SimUser {
    const u = this.find(ref);
    if (!u) throw new SimControlError(404, `no user '${ref}'`);
    return u;
  }

  private find(ref: string): SimUser | undefined {
    const direct = this.ctx.directory.get(ref);
    if (direct) return direct;
    const r = ref.toLowerCase();
    for (const { user } of this.ctx.directory.live()) {
      if (user.mailNickname.toLowerCase() === r) return user;
    }
    if (/^\+?\d+$/.test(ref)) {
      for (const { user } of this.ctx.directory.live()) {
        if (user.businessPhones.some((p) => p.replace(/\D/g, '').endsWith(ref.replace(/\D/g, '')))) return user;
      }
    }
    return undefined;
  }

  addUser(input: SimUserInput): SimUser {
    try {
      return structuredClone(this.ctx.directory.add(input));
    } catch (error) {
      if (error instanceof DirectoryError) throw new SimControlError(400, error.message);
      throw error;
    }
  }

  updateUser(ref: string, patch: Partial<Omit<SimUserInput, 'id'>>): SimUser {
    const user = this.user(ref);
    try {
      return structuredClone(this.ctx.directory.update(user.id, patch));
    } catch (error) {
      if (error instanceof DirectoryError) throw new SimControlError(400, error.message);
      throw error;
    }
  }

  /** Remove a user (delta reports it as @removed); false when there was none. */
  removeUser(ref: string, options: { permanent?: boolean } = {}): boolean {
    const user = this.find(ref);
    if (!user) return false;
    this.ctx.directory.remove(user.id, options.permanent ?? false);
    this.ctx.presence.removeUser(user.id);
    this.clients.delete(user.id);
    return true;
  }

  // ---- the Teams client

  /** Act as the user does in Teams; returns the user's presence afterwards. */
  teams(ref: string, action: TeamsAction): PresenceResource {
    const user = this.user(ref);
    const id = user.id;
    const p = this.ctx.presence;
    const signedIn = (): ClientState => {
      let c = this.clients.get(id);
      if (!c) {
        c = { base: ['Available', 'Available'], call: undefined, presenting: false };
        this.clients.set(id, c);
      }
      return c;
    };
    switch (action) {
      case 'signin':
        signedIn();
        break;
      case 'signout':
        this.clients.delete(id);
        p.clearSession(id, TEAMS_CLIENT_SESSION);
        return p.get(id);
      case 'call':
        signedIn().call = ['Busy', 'InACall'];
        break;
      case 'conference':
        signedIn().call = ['Busy', 'InAConferenceCall'];
        break;
      case 'end-call':
        signedIn().call = undefined;
        break;
      case 'present':
        signedIn().presenting = true;
        break;
      case 'stop-presenting':
        signedIn().presenting = false;
        break;
      case 'dnd':
        signedIn();
        p.setPreferred(id, 'DoNotDisturb', 'DoNotDisturb', 24 * 3600_000);
        break;
      case 'clear-dnd':
        signedIn();
        p.clearPreferred(id);
        break;
      case 'brb':
        signedIn();
        p.setPreferred(id, 'BeRightBack', 'BeRightBack', 7 * 24 * 3600_000);
        break;
      case 'away':
        signedIn().base = ['Away', 'Away'];
        break;
      case 'available': {
        const c = signedIn();
        c.base = ['Available', 'Available'];
        p.clearPreferred(id);
        break;
      }
      default:
        throw new SimControlError(400, `unknown Teams action '${String(action)}'`);
    }
    const c = this.clients.get(id);
    if (c) {
      const pair: Pair = c.presenting ? ['DoNotDisturb', 'Presenting'] : (c.call ?? c.base);
      p.setSession(id, TEAMS_CLIENT_SESSION, 'client', pair[0], pair[1], null);
    }
    return p.get(id);
  }

  call(ref: string, options: { conference?: boolean } = {}): PresenceResource {
    return this.teams(ref, options.conference ? 'conference' : 'call');
  }
  endCall(ref: string): PresenceResource {
    return this.teams(ref, 'end-call');
  }
  present(ref: string): PresenceResource {
    return this.teams(ref, 'present');
  }
  stopPresenting(ref: string): PresenceResource {
    return this.teams(ref, 'stop-presenting');
  }
  dnd(ref: string): PresenceResource {
    return this.teams(ref, 'dnd');
  }
  clearDnd(ref: string): PresenceResource {
    return this.teams(ref, 'clear-dnd');
  }
  away(ref: string): PresenceResource {
    return this.teams(ref, 'away');
  }
  available(ref: string): PresenceResource {
    return this.teams(ref, 'available');
  }
  signIn(ref: string): PresenceResource {
    return this.teams(ref, 'signin');
  }
  signOut(ref: string): PresenceResource {
    return this.teams(ref, 'signout');
  }

  /**
   * A meeting in the user's calendar from now for `minutes` (busy). While it
   * lasts Teams shows them Busy/InAMeeting, as it does for a calendar meeting:
   * a session that ends with the meeting (InAMeeting cannot be set through
   * setPresence, so it is a session of Teams itself, not of an app).
   */
  meeting(ref: string, minutes: number, options: { subject?: string; status?: FreeBusyStatus } = {}): { start: string; end: string; presence: PresenceResource } {
    const user = this.user(ref);
    if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) throw new SimControlError(400, 'minutes must be from 1 to 1440');
    const start = this.ctx.clock.now();
    const end = start + Math.round(minutes * 60_000);
    const status = options.status ?? 'busy';
    this.ctx.calendars.add(user.id, { status, start, end, ...(options.subject !== undefined ? { subject: options.subject } : {}) });
    if (status === 'busy') this.ctx.presence.setSession(user.id, `calendar:${start}`, 'client', 'Busy', 'InAMeeting', end - start);
    return { start: new Date(start).toISOString(), end: new Date(end).toISOString(), presence: this.ctx.presence.get(user.id) };
  }

  setOutOfOffice(ref: string, on: boolean, message: string | null = null): PresenceResource {
    const user = this.user(ref);
    this.ctx.presence.setOutOfOffice(user.id, on, message);
    return this.ctx.presence.get(user.id);
  }

  setStatusMessage(ref: string, text: string | null, expiresAt: number | null = null): PresenceResource {
    const user = this.user(ref);
    this.ctx.presence.setStatusMessage(user.id, text, 'text', expiresAt);
    return this.ctx.presence.get(user.id);
  }

  presence(ref: string): PresenceResource {
    return this.ctx.presence.get(this.user(ref).id);
  }

  /** The user's live presence sessions (the Teams client's and every app's). */
  sessions(ref: string): SessionInfo[] {
    return this.ctx.presence.sessions(this.user(ref).id);
  }

  // ---- apps and accounts

  registerApp(app: AppRegistration): { clientId: string; servicePrincipalId: string } {
    try {
      const r = this.ctx.registry.registerApp(app);
      return { clientId: r.clientId, servicePrincipalId: r.servicePrincipalId };
    } catch (error) {
      if (error instanceof RegistryError) throw new SimControlError(400, error.message);
      throw error;
    }
  }

  removeApp(clientId: string): boolean {
    return this.ctx.registry.removeApp(clientId);
  }

  listApps(): Array<{ clientId: string; displayName: string; applicationPermissions: string[]; delegatedPermissions: string[]; certificates: number; secrets: number }> {
    return this.ctx.registry.listApps().map((a) => ({
      clientId: a.clientId,
      displayName: a.displayName,
      applicationPermissions: [...a.applicationPermissions],
      delegatedPermissions: [...a.delegatedPermissions],
      certificates: a.certificates.length,
      secrets: a.secrets.length,
    }));
  }

  /** Add a password account; its directory user is created (without a Teams licence) when missing. */
  addServiceAccount(account: ServiceAccount): { username: string; userId: string } {
    let user = account.userId ? this.ctx.directory.get(account.userId) : this.ctx.directory.get(account.username);
    if (!user) {
      user = this.addUser({
        ...(account.userId ? { id: account.userId } : {}),
        displayName: account.displayName ?? account.username.split('@')[0] ?? account.username,
        userPrincipalName: account.username,
        teams: false,
      });
    }
    this.ctx.registry.addAccount({ ...account, userId: user.id });
    return { username: account.username, userId: user.id };
  }

  removeServiceAccount(username: string): boolean {
    return this.ctx.registry.removeAccount(username);
  }

  /** Change a password account: per-user MFA (the password grant then gets AADSTS50076) or its password. */
  updateServiceAccount(username: string, patch: { mfa?: boolean; password?: string }): { username: string; mfa: boolean } {
    const account = this.ctx.registry.account(username);
    if (!account) throw new SimControlError(404, `no account '${username}'`);
    const next = { ...account, ...(patch.mfa !== undefined ? { mfa: patch.mfa } : {}), ...(patch.password !== undefined ? { password: patch.password } : {}) };
    this.ctx.registry.addAccount(next);
    return { username: next.username, mfa: next.mfa ?? false };
  }

  // ---- device code sign-in, as the user does it on another device

  deviceCodes(): PendingCodeInfo[] {
    return this.ctx.deviceCodes.list();
  }

  /** The user enters the code and signs in (MFA satisfied interactively). */
  approveDeviceCode(userCode: string, userRef: string): { userCode: string; userPrincipalName: string } {
    const user = this.user(userRef);
    if (!user.accountEnabled) throw new SimControlError(409, `user '${user.userPrincipalName}' is disabled`);
    try {
      const g = this.ctx.deviceCodes.approve(userCode, user.id);
      return { userCode: g.userCode, userPrincipalName: user.userPrincipalName };
    } catch (error) {
      if (error instanceof DeviceCodeError) throw new SimControlError(error.status, error.message);
      throw error;
    }
  }

  /** The user enters the code and declines. */
  denyDeviceCode(userCode: string): { userCode: string } {
    try {
      return { userCode: this.ctx.deviceCodes.decline(userCode).userCode };
    } catch (error) {
      if (error instanceof DeviceCodeError) throw new SimControlError(error.status, error.message);
      throw error;
    }
  }

  /** An administrator revokes the user's sessions: every refresh token issued so far is refused (AADSTS50173). */
  revokeSessions(userRef: string): { userPrincipalName: string; refreshTokens: number } {
    const user = this.user(userRef);
    return { userPrincipalName: user.userPrincipalName, refreshTokens: this.ctx.tokens.revokeUserSessions(user.id) };
  }

  // ---- faults, throttling, tokens

  injectFault(fault: FaultSpec): void {
    try {
      this.ctx.faults.add(fault);
    } catch (error) {
      throw new SimControlError(400, error instanceof Error ? error.message : 'invalid fault');
    }
  }

  clearFaults(): void {
    this.ctx.faults.clear();
  }

  setThrottle(config: Partial<ThrottleConfig>): ThrottleConfig {
    if (config.limit !== undefined && (!Number.isFinite(config.limit) || config.limit < 0)) throw new SimControlError(400, 'limit must be >= 0');
    if (config.windowSec !== undefined && (!Number.isFinite(config.windowSec) || config.windowSec <= 0)) throw new SimControlError(400, 'windowSec must be > 0');
    return this.ctx.throttle.configure(config);
  }

  setTokenLifetime(seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 1) throw new SimControlError(400, 'token lifetime must be a positive integer');
    this.ctx.tokens.lifetimeSec = seconds;
  }

  // ---- subscriptions

  subscriptions(): Array<Record<string, unknown>> {
    return this.ctx.subscriptions.list().map((s) => ({ ...subscriptionJson(s), needsReauthorization: s.needsReauthorization, userIds: [...s.userIds] }));
  }

  /**
   * Send a lifecycle event to a subscription's lifecycleNotificationUrl; subscriptionRemoved also removes it.
   * Graph itself sends presence subscriptions only reauthorizationRequired (the simulator never emits the
   * others on its own); missed and subscriptionRemoved can be injected to prove a receiver copes with them.
   */
  fireLifecycle(subscriptionId: string, event: LifecycleEvent): { sent: boolean } {
    if (!['reauthorizationRequired', 'subscriptionRemoved', 'missed'].includes(event)) throw new SimControlError(400, `unknown lifecycle event '${String(event)}'`);
    const sub = this.ctx.subscriptions.get(subscriptionId);
    if (!sub) throw new SimControlError(404, `no subscription '${subscriptionId}'`);
    if (event === 'reauthorizationRequired') sub.needsReauthorization = true;
    const sent = this.ctx.notifier.lifecycle(sub, event);
    if (event === 'subscriptionRemoved') this.ctx.subscriptions.remove(sub.id);
    return { sent };
  }

  // ---- counters

  counters(): SimCounters {
    return this.ctx.counters.snapshot();
  }

  resetCounters(): void {
    this.ctx.counters.reset();
  }

  /** Resolves once no notification POST is queued or in flight (retries waiting on the clock do not count). */
  idle(): Promise<void> {
    return this.ctx.notifier.idle();
  }
}
