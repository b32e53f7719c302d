import t from 'tap';
import { answered, comingUp, isInFlight, isRefreshQueued, isUp, queueing, sending, SUBSCRIBER_TRANSITIONS, type SubscriberState } from '../../src/simple/subscriber-state.js';
import { canTransition, InvalidTransitionError, throwIfStrict } from '../../src/util/state-machine.js';

const ALL: readonly SubscriberState[] = ['initial', 'notify-wait', 'notify-wait-queued', 'active', 'refreshing', 'refreshing-queued', 'retry-wait', 'terminated'];

/** A step of the subscriber graph, under the tests' policy: a refused step throws. */
function step(from: SubscriberState, to: SubscriberState | undefined): SubscriberState {
  if (to === undefined) throw new Error(`no next state from ${from}`);
  if (!canTransition(SUBSCRIBER_TRANSITIONS, from, to)) throwIfStrict('throw', 'upstream subscription', from, to);
  return to;
}

t.test('up and in flight are read from the state', async (t) => {
  t.same(ALL.filter(isUp), ['active', 'refreshing', 'refreshing-queued']);
  t.same(ALL.filter(isInFlight), ['notify-wait', 'notify-wait-queued', 'refreshing', 'refreshing-queued']);
  t.same(ALL.filter(isRefreshQueued), ['notify-wait-queued', 'refreshing-queued']);
  t.equal(sending('initial'), 'notify-wait');
  t.equal(sending('retry-wait'), 'notify-wait');
  t.equal(sending('active'), 'refreshing', 'a SUBSCRIBE out of an active subscription keeps it up');
  t.equal(answered('notify-wait'), 'retry-wait');
  t.equal(answered('refreshing'), 'active');
  t.equal(answered('terminated'), undefined, 'a late answer after removal changes nothing');
  t.equal(answered('notify-wait-queued'), 'retry-wait');
  t.equal(answered('refreshing-queued'), 'active');
  t.equal(queueing('notify-wait'), 'notify-wait-queued');
  t.equal(queueing('refreshing'), 'refreshing-queued');
  t.equal(queueing('refreshing-queued'), undefined, 'already queued');
  t.equal(queueing('active'), undefined, 'nothing out: the queue sends it');
  t.equal(comingUp('notify-wait'), 'refreshing');
  t.equal(comingUp('notify-wait-queued'), 'refreshing-queued', 'the queued refresh survives coming up');
  t.equal(comingUp('retry-wait'), 'active');
});

t.test('every helper moves only along the graph (a refused step throws)', async (t) => {
  for (const s of ALL) {
    if (isInFlight(s)) {
      t.doesNotThrow(() => step(s, answered(s)), `${s} answered`);
      if (!isUp(s)) t.doesNotThrow(() => step(s, comingUp(s)), `${s} coming up`);
      const q = queueing(s);
      if (q !== undefined) t.doesNotThrow(() => step(s, q), `${s} queueing`);
    } else if (s !== 'terminated') {
      t.doesNotThrow(() => step(s, sending(s)), `${s} sending`);
    }
  }
  t.throws(() => step('notify-wait-queued', 'notify-wait'), InvalidTransitionError, 'a queued refresh is not dropped while the SUBSCRIBE is out');
});

t.test('the subscriber graph refuses what it does not list', async (t) => {
  for (const s of ALL) {
    if (s !== 'terminated') t.ok(canTransition(SUBSCRIBER_TRANSITIONS, s, 'terminated'), `${s} → terminated (removed)`);
    t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'terminated', s), `terminated → ${s} refused`);
  }
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'notify-wait', 'active'), 'up while a SUBSCRIBE is out is refreshing, not active');
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'notify-wait', 'notify-wait'), 'a second SUBSCRIBE while one is out');
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'refreshing', 'refreshing'));
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'active', 'active'));
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'active', 'notify-wait'));
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'retry-wait', 'refreshing'));
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'initial', 'refreshing'));
  t.ok(canTransition(SUBSCRIBER_TRANSITIONS, 'notify-wait', 'refreshing'), 'a NOTIFY brings it up while the SUBSCRIBE is out');
  t.ok(canTransition(SUBSCRIBER_TRANSITIONS, 'refreshing', 'retry-wait'), 'terminated by the notifier while a refresh is out');
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'active', 'refreshing-queued'), 'nothing out: nothing to queue behind');
  t.notOk(canTransition(SUBSCRIBER_TRANSITIONS, 'refreshing-queued', 'refreshing'), 'the queued refresh is sent only after the answer');
});
