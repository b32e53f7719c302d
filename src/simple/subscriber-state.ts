/**
 * The states of one upstream subscription (the gateway as RFC 6665
 * subscriber), and the changes allowed between them. Whether it is up,
 * whether a SUBSCRIBE is out and whether another is to follow its answer are
 * read from the state, never kept beside it.
 */
import { transitionTable, type TransitionTable } from '../util/state-machine.js';

export type SubscriberState =
  /** Made, its first turn in the trunk's queue to come (or holding a restored dialog not yet refreshed). */
  | 'initial'
  /** A SUBSCRIBE is out and the subscription is not up yet. */
  | 'notify-wait'
  /** notify-wait, and a refresh is to go out once the SUBSCRIBE out is accepted. */
  | 'notify-wait-queued'
  /** Up (a 2xx, or a NOTIFY saying active or pending); nothing out. */
  | 'active'
  /** Up, and a SUBSCRIBE (a refresh, or a new one) is out. */
  | 'refreshing'
  /** refreshing, and another refresh is to go out once the one out is accepted. */
  | 'refreshing-queued'
  /** Down (refused, failed, terminated by the notifier): a new SUBSCRIBE waits for its timer. */
  | 'retry-wait'
  /** Removed: only NOTIFYs of the ending dialog are still answered, for a while. */
  | 'terminated';

/**
 * RFC 6665 §4.1.2: a SUBSCRIBE out (notify-wait, refreshing) is answered
 * (active when accepted, retry-wait when refused); a NOTIFY in the dialog
 * may bring it up before the 2xx (§4.1.2.4), and a NOTIFY with
 * "terminated" ends it from any state (§4.1.3); removal ends it for good.
 * A refresh asked for while one is out waits in a -queued state (one
 * SUBSCRIBE out at a time per dialog).
 */
export const SUBSCRIBER_TRANSITIONS: TransitionTable<SubscriberState> = transitionTable<SubscriberState>({
  initial: ['notify-wait', 'active', 'retry-wait', 'terminated'],
  'notify-wait': ['notify-wait-queued', 'refreshing', 'retry-wait', 'terminated'],
  'notify-wait-queued': ['refreshing-queued', 'retry-wait', 'terminated'],
  active: ['refreshing', 'retry-wait', 'terminated'],
  refreshing: ['refreshing-queued', 'active', 'retry-wait', 'terminated'],
  'refreshing-queued': ['active', 'retry-wait', 'terminated'],
  'retry-wait': ['notify-wait', 'active', 'retry-wait', 'terminated'],
  terminated: [],
});

/** The subscription is up (reported up to onItem, counted as up). */
export function isUp(state: SubscriberState): boolean {
  return state === 'active' || state === 'refreshing' || state === 'refreshing-queued';
}

/** A SUBSCRIBE of this subscription is out. */
export function isInFlight(state: SubscriberState): boolean {
  return state === 'notify-wait' || state === 'refreshing' || state === 'notify-wait-queued' || state === 'refreshing-queued';
}

/** A refresh is to go out once the SUBSCRIBE out is accepted. */
export function isRefreshQueued(state: SubscriberState): boolean {
  return state === 'notify-wait-queued' || state === 'refreshing-queued';
}

/** The state a SUBSCRIBE going out moves `state` to. */
export function sending(state: SubscriberState): SubscriberState {
  return isUp(state) ? 'refreshing' : 'notify-wait';
}

/** The state a refresh asked for while a SUBSCRIBE is out moves `state` to (undefined: already queued, or nothing out). */
export function queueing(state: SubscriberState): SubscriberState | undefined {
  return state === 'notify-wait' ? 'notify-wait-queued' : state === 'refreshing' ? 'refreshing-queued' : undefined;
}

/** The state coming up (a 2xx, or a NOTIFY saying active or pending) moves `state` to; a SUBSCRIBE out stays out. */
export function comingUp(state: SubscriberState): SubscriberState {
  return state === 'notify-wait' ? 'refreshing' : state === 'notify-wait-queued' ? 'refreshing-queued' : 'active';
}

/** The state the answer to the SUBSCRIBE out moves `state` to, before the answer is looked at. */
export function answered(state: SubscriberState): SubscriberState | undefined {
  if (state === 'refreshing' || state === 'refreshing-queued') return 'active';
  if (state === 'notify-wait' || state === 'notify-wait-queued') return 'retry-wait';
  return undefined;
}
