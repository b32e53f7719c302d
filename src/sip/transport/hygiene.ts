/**
 * Connection hygiene shared by the stream transports (TCP, TLS, WebSocket):
 * how long an inbound connection gets to complete a valid SIP message, how
 * long a stranger's connection may idle, and how many connections one source
 * address may hold. The layers above say who is no stranger through two
 * neutral calls: `exempt(address)` (trunks, trusted networks) and the stack's
 * trustConnection(id) (a request on it was let in).
 */
import { CountingSecurityLog, type SecurityLog } from '../security-log.js';

export interface ConnectionHygiene {
  /** ms an inbound connection gets to complete a valid SIP message (its first, and any it has started); 0 = off */
  messageTimeoutMs: number;
  /** ms a stranger's inbound connection (nothing on it let in, no live transaction) may stay idle; 0 = off */
  strangerIdleMs: number;
  /** open inbound connections per source address; 0 = no cap */
  maxPerSource: number;
  /** sources exempt from the per-source cap and the stranger rule (replaceable: the trunks come later) */
  exempt: (address: string) => boolean;
  security: SecurityLog;
}

/** Nothing enforced (library use and transport unit tests that do not ask for it). */
export function noHygiene(): ConnectionHygiene {
  return { messageTimeoutMs: 0, strangerIdleMs: 0, maxPerSource: 0, exempt: () => false, security: new CountingSecurityLog(0) };
}

/** Sweep period for the limits in force: a quarter of the shortest, 10 ms to `cap` ms. */
export function sweepPeriod(limits: readonly number[], cap: number): number | undefined {
  const on = limits.filter((l) => l > 0 && Number.isFinite(l));
  if (on.length === 0) return undefined;
  return Math.max(10, Math.min(cap, Math.floor(Math.min(...on) / 4)));
}

/** Open inbound connections per source address. */
export class SourceCounts {
  private readonly counts = new Map<string, number>();
  get(address: string): number {
    return this.counts.get(address) ?? 0;
  }
  add(address: string): void {
    this.counts.set(address, this.get(address) + 1);
  }
  remove(address: string): void {
    const n = this.get(address) - 1;
    if (n <= 0) this.counts.delete(address);
    else this.counts.set(address, n);
  }
}
