/**
 * The states of one upstream subscription (the gateway as RFC 6665
 * subscriber), and the changes allowed between them. Whether it is up and
 * whether a SUBSCRIBE is out are read from the state, never kept beside it.
 */
import { transitionTable, type TransitionTable } from '../util/state-machine.js';

export type SubscriberState =
  /** Made, its first turn in the trunk's queue to come (or holding a restored dialog not yet refreshed). */
  | 'initial'
  /** A SUBSCRIBE is out and the subscription is not up yet. */
  | 'notify-wait'
  /** Up (a 2xx, or a NOTIFY saying active or pending); nothing out. */
  | 'active'
  /** Up, and a SUBSCRIBE (a refresh, or a new one) is out. */
  | 'refreshing'
  /** Down (refused, failed, terminated by the notifier): a new SUBSCRIBE waits for its timer. */
  | 'retry-wait'
  /** Removed: only NOTIFYs of the ending dialog are still answered, for a while. */
  | 'terminated';

/**
 * RFC 6665 §4.1.2: a SUBSCRIBE out (notify-wait, refreshing) is answered
 * (active when accepted, retry-wait when refused); a NOTIFY in the dialog
 * may bring it up before the 2xx (§4.1.2.4), and a NOTIFY with
 * "terminated" ends it from any state (§4.1.3); removal ends it for good.
 */
export const SUBSCRIBER_TRANSITIONS: TransitionTable<SubscriberState> = transitionTable<SubscriberState>({
  initial: ['notify-wait', 'active', 'retry-wait', 'terminated'],
  'notify-wait': ['refreshing', 'retry-wait', 'terminated'],
  active: ['refreshing', 'retry-wait', 'terminated'],
  refreshing: ['active', 'retry-wait', 'terminated'],
  'retry-wait': ['notify-wait', 'active', 'retry-wait', 'terminated'],
  terminated: [],
});

/** The subscription is up (reported up to onItem, counted as up). */
export function isUp(state: SubscriberState): boolean {
  return state === 'active' || state === 'refreshing';
}

/** A SUBSCRIBE of this subscription is out. */
export function isInFlight(state: SubscriberState): boolean {
  return state === 'notify-wait' || state === 'refreshing';
}

/** The state a SUBSCRIBE going out moves `state` to. */
export function sending(state: SubscriberState): SubscriberState {
  return isUp(state) ? 'refreshing' : 'notify-wait';
}

/** The state the answer to the SUBSCRIBE out moves `state` to, before the answer is looked at. */
export function answered(state: SubscriberState): SubscriberState | undefined {
  return state === 'refreshing' ? 'active' : state === 'notify-wait' ? 'retry-wait' : undefined;
}

