import t from 'tap';
import { mayEnter, NON_INVITE_TRANSITIONS, setTransactionRefusals, type TransactionState } from '../../src/sip/transaction/state.js';
import { canTransition, InvalidTransitionError } from '../../src/util/state-machine.js';
import { capturingLogger } from '../helpers/log-capture.js';

t.test('non-INVITE graph (RFC 3261 §17.1.2.2, §17.2.2): what is allowed', async (t) => {
  const ok: Array<[TransactionState, TransactionState]> = [
    ['trying', 'proceeding'],
    ['trying', 'completed'],
    ['trying', 'terminated'],
    ['proceeding', 'proceeding'],
    ['proceeding', 'completed'],
    ['proceeding', 'terminated'],
    ['completed', 'terminated'],
  ];
  for (const [from, to] of ok) t.ok(canTransition(NON_INVITE_TRANSITIONS, from, to), `${from} → ${to}`);
  const refused: Array<[TransactionState, TransactionState]> = [
    ['trying', 'trying'],
    ['proceeding', 'trying'],
    ['completed', 'proceeding'],
    ['completed', 'completed'],
    ['completed', 'trying'],
    ['terminated', 'trying'],
    ['terminated', 'proceeding'],
    ['terminated', 'completed'],
    ['terminated', 'terminated'],
  ];
  for (const [from, to] of refused) t.notOk(canTransition(NON_INVITE_TRANSITIONS, from, to), `${from} → ${to} refused`);
});

t.test('a refused transaction change is logged at error level and not allowed', async (t) => {
  const { lines, logger } = capturingLogger('debug');
  const tx = { state: 'completed' as TransactionState, method: 'NOTIFY', branch: 'z9hG4bKx' };
  t.notOk(mayEnter(tx, 'proceeding', logger));
  t.ok(mayEnter(tx, 'terminated', logger));
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, 1, 'only the refused one is logged');
  t.match(lines[0], { level: 50, msg: 'transaction state change refused', from: 'completed', to: 'proceeding', method: 'NOTIFY', branch: 'z9hG4bKx' });
});

t.test("under setTransactionRefusals('throw') (the tests' policy) a refused change throws", async (t) => {
  setTransactionRefusals('throw');
  t.teardown(() => setTransactionRefusals('log'));
  const { lines, logger } = capturingLogger('debug');
  const tx = { state: 'terminated' as TransactionState, method: 'SUBSCRIBE', branch: 'z9hG4bKy' };
  t.throws(() => mayEnter(tx, 'completed', logger), InvalidTransitionError);
  t.throws(() => mayEnter(tx, 'completed', logger), { message: 'SUBSCRIBE transaction: state change terminated → completed refused' });
  const live = { state: 'trying' as TransactionState, method: 'SUBSCRIBE', branch: 'z9hG4bKz' };
  t.ok(mayEnter(live, 'proceeding', logger), 'an allowed change is unaffected');
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, 0, 'thrown, not logged');
});
