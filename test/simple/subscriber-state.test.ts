import t from 'tap';
import { answered, isInFlight, isUp, sending, SUBSCRIBER_TRANSITIONS, type SubscriberState } from '../../src/simple/subscriber-state.js';
import { canTransition } from '../../src/util/state-machine.js';

const ALL: readonly SubscriberState[] = ['initial', 'notify-wait', 'active', 'refreshing', 'retry-wait', 'terminated'];

t.test('up and in flight are read from the state', async (t) => {
  t.same(ALL.filter(isUp), ['active', 'refreshing']);
  t.same(ALL.filter(isInFlight), ['notify-wait', 'refreshing']);
  t.equal(sending('initial'), 'notify-wait');
  t.equal(sending('retry-wait'), 'notify-wait');
  t.equal(sending('active'), 'refreshing', 'a SUBSCRIBE out of an active subscription keeps it up');
  t.equal(answered('notify-wait'), 'retry-wait');
  t.equal(answered('refreshing'), 'active');
  t.equal(answered('terminated'), undefined, 'a late answer after removal changes nothing');
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
});
