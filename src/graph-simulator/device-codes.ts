/**
 * The device authorization grant as Entra ID runs it (RFC 8628; Microsoft's
 * page: learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code):
 * POST /{tenant}/oauth2/v2.0/devicecode hands out a device code and a user
 * code, valid 15 minutes (expires_in 900), polled every `interval` seconds
 * (5). The user enters the code on another device and signs in (here: the
 * control API's approve / deny, as that user would); until then the token
 * endpoint answers authorization_pending, slow_down to a client polling
 * faster than the interval (RFC 8628 §3.5: the interval then grows by 5 s),
 * expired_token after expires_in, authorization_declined when the user
 * refused. A code is redeemed once.
 */
import { randomInt } from 'node:crypto';
import { opaqueToken } from './ids.js';

/** Letters and digits a person reads without confusing them (no 0/O, 1/I/L). */
const USER_CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const USER_CODE_LENGTH = 9;
/** A poll this much early still counts as on time (timers and networks are not exact). */
const POLL_TOLERANCE_MS = 200;

export interface DeviceCodeOptions {
  /** seconds a code lives (Entra: 900) */
  lifetimeSec: number;
  /** seconds between polls (Entra: 5) */
  intervalSec: number;
}

export const DEFAULT_DEVICE_CODE_OPTIONS: DeviceCodeOptions = { lifetimeSec: 900, intervalSec: 5 };

type CodeState = 'pending' | 'approved' | 'declined' | 'redeemed';

export interface DeviceCodeGrant {
  deviceCode: string;
  userCode: string;
  clientId: string;
  /** the scope parameter as the client sent it */
  requested: string[];
  issuedAt: number;
  expiresAt: number;
  intervalSec: number;
  state: CodeState;
  /** who signed in (approved) */
  userId?: string;
  lastPollAt?: number;
}

export type PollOutcome =
  | { kind: 'unknown' }
  | { kind: 'pending' }
  | { kind: 'slow-down'; intervalSec: number }
  | { kind: 'expired' }
  | { kind: 'declined' }
  | { kind: 'approved'; grant: DeviceCodeGrant };

/** What the control API shows of a pending code (never the device code). */
export interface PendingCodeInfo {
  userCode: string;
  clientId: string;
  scopes: string[];
  state: CodeState;
  expiresAt: string;
}

export class DeviceCodeError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export class DeviceCodeStore {
  private readonly byDevice = new Map<string, DeviceCodeGrant>();
  private readonly byUser = new Map<string, DeviceCodeGrant>();

  constructor(
    private readonly now: () => number,
    public options: DeviceCodeOptions = DEFAULT_DEVICE_CODE_OPTIONS,
  ) {}

  private newUserCode(): string {
    for (;;) {
      let code = '';
      for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
      if (!this.byUser.has(code)) return code;
    }
  }

  private prune(): void {
    const t = this.now();
    for (const [code, g] of this.byDevice) {
      // a finished or long-expired code is of no use to anyone
      if (g.expiresAt + 3600_000 < t || g.state === 'redeemed') {
        this.byDevice.delete(code);
        this.byUser.delete(g.userCode);
      }
    }
  }

  issue(clientId: string, requested: string[]): DeviceCodeGrant {
    this.prune();
    const t = this.now();
    const g: DeviceCodeGrant = {
      deviceCode: opaqueToken(48),
      userCode: this.newUserCode(),
      clientId,
      requested: [...requested],
      issuedAt: t,
      expiresAt: t + this.options.lifetimeSec * 1000,
      intervalSec: this.options.intervalSec,
      state: 'pending',
    };
    this.byDevice.set(g.deviceCode, g);
    this.byUser.set(g.userCode, g);
    return g;
  }

  /** The token endpoint's view of one poll. */
  poll(deviceCode: string, clientId: string): PollOutcome {
    const g = this.byDevice.get(deviceCode);
    if (g === undefined || g.clientId !== clientId.toLowerCase() || g.state === 'redeemed') return { kind: 'unknown' };
    const t = this.now();
    if (g.state !== 'approved' && t >= g.expiresAt) return { kind: 'expired' };
    if (g.state === 'declined') return { kind: 'declined' };
    const last = g.lastPollAt;
    g.lastPollAt = t;
    if (g.state === 'approved') {
      g.state = 'redeemed';
      return { kind: 'approved', grant: g };
    }
    // the first poll may follow the code at once (msal does); only polls closer together than the interval are too fast
    if (last !== undefined && t - last < g.intervalSec * 1000 - POLL_TOLERANCE_MS) {
      g.intervalSec += 5;
      return { kind: 'slow-down', intervalSec: g.intervalSec };
    }
    return { kind: 'pending' };
  }

  private pendingCode(userCode: string): DeviceCodeGrant {
    const g = this.byUser.get(userCode.trim().toUpperCase().replace(/[\s-]/g, ''));
    if (g === undefined) throw new DeviceCodeError(404, `no device code '${userCode}'`);
    if (g.state !== 'pending') throw new DeviceCodeError(409, `code '${g.userCode}' is already ${g.state}`);
    if (this.now() >= g.expiresAt) throw new DeviceCodeError(409, `code '${g.userCode}' has expired`);
    return g;
  }

  /** The user entered the code and signed in (with whatever MFA the tenant asks for). */
  approve(userCode: string, userId: string): DeviceCodeGrant {
    const g = this.pendingCode(userCode);
    g.state = 'approved';
    g.userId = userId;
    return g;
  }

  /** The user entered the code and refused. */
  decline(userCode: string): DeviceCodeGrant {
    const g = this.pendingCode(userCode);
    g.state = 'declined';
    return g;
  }

  list(): PendingCodeInfo[] {
    return [...this.byDevice.values()].map((g) => ({
      userCode: g.userCode,
      clientId: g.clientId,
      scopes: [...g.requested],
      state: g.state,
      expiresAt: new Date(g.expiresAt).toISOString(),
    }));
  }
}
