/**
 * How often to poll, from the number of people and the request budget.
 * Graph documents 1,500 presence requests per 30 s per app per tenant
 * (throttling-limits; cloudcommunications-getpresencesbyuserid) and up to 650
 * ids a getPresencesByUserId call. Polling gets a configured share of that;
 * the safety read of webhook-covered people is paid from the same share
 * first, and the rest sets the poll interval, down to 1 s.
 */
import { MAX_IDS_PER_CALL } from './presence-batch.js';

export const MIN_POLL_INTERVAL_MS = 1000;

export interface PollPlanInput {
  mode: 'budget' | 'fixed';
  /** poll requests allowed per 30 s (the configured share of 1,500) */
  requestsPer30s: number;
  /** people polled every interval (no healthy webhook covers them) */
  polled: number;
  /** people only the safety read covers */
  covered: number;
  /** budget: the slowest wanted interval; fixed: the interval */
  intervalMs: number;
  /** the safety read interval the webhook's health asks for */
  safetyIntervalMs: number;
}

export interface PollPlan {
  pollIntervalMs: number;
  safetyIntervalMs: number;
  /** requests per 30 s the plan spends */
  requestsPer30s: number;
  /** the budget forced an interval slower than asked for */
  limited: boolean;
}

/** getPresencesByUserId calls needed for `n` people. */
export function batchesFor(n: number): number {
  return n <= 0 ? 0 : Math.ceil(n / MAX_IDS_PER_CALL);
}

export function planPolling(i: PollPlanInput): PollPlan {
  const budget = Math.max(1, i.requestsPer30s);
  const safetyBatches = batchesFor(i.covered);
  const pollBatches = batchesFor(i.polled);
  let limited = false;
  // the safety read may take at most half the share; stretched beyond that
  let safetyIntervalMs = i.safetyIntervalMs;
  if (safetyBatches > 0) {
    const leastMs = (safetyBatches * 30_000) / (budget / (pollBatches > 0 ? 2 : 1));
    if (leastMs > safetyIntervalMs) {
      safetyIntervalMs = Math.ceil(leastMs);
      limited = true;
    }
  }
  const safetyPer30s = safetyBatches === 0 ? 0 : (safetyBatches * 30_000) / safetyIntervalMs;
  const left = Math.max(budget - safetyPer30s, budget / 2);
  const leastPollMs = pollBatches === 0 ? 0 : Math.ceil((pollBatches * 30_000) / left);
  let pollIntervalMs: number;
  if (i.mode === 'fixed') {
    pollIntervalMs = Math.max(i.intervalMs, leastPollMs);
    if (leastPollMs > i.intervalMs) limited = true;
  } else {
    pollIntervalMs = Math.max(MIN_POLL_INTERVAL_MS, leastPollMs);
    if (pollIntervalMs > i.intervalMs) limited = true;
  }
  const pollPer30s = pollBatches === 0 ? 0 : (pollBatches * 30_000) / pollIntervalMs;
  return { pollIntervalMs, safetyIntervalMs, requestsPer30s: pollPer30s + safetyPer30s, limited };
}
