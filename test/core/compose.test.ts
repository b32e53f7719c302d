import t from 'tap';
import { composeRich, composeTelephony, lineOf } from '../../src/core/compose.js';
import type { RichState } from '../../src/core/person-state.js';

const rich = (activities: string[], at: number, basic: 'open' | 'closed' = 'open'): RichState => ({
  basic,
  activities,
  origin: `p${at}`,
  at,
});

t.test('the most recent publication wins among equals', async (t) => {
  t.equal(composeRich([rich(['away'], 1), rich(['meeting'], 2)])!.origin, 'p2');
  t.equal(composeRich([rich(['meeting'], 2), rich(['away'], 1)])!.origin, 'p2');
});

t.test('on-the-phone and DND win over a newer idle publication', async (t) => {
  t.equal(composeRich([rich(['on-the-phone'], 1), rich([], 5)])!.origin, 'p1');
  t.equal(composeRich([rich(['on-the-phone'], 9), rich(['dnd'], 1)])!.origin, 'p1');
});

t.test('basic is open when any publication is open', async (t) => {
  const c = composeRich([rich([], 1, 'closed'), rich([], 2, 'open')]);
  t.equal(c!.basic, 'open');
  t.equal(composeRich([rich([], 3, 'closed')])!.basic, 'closed');
  t.equal(composeRich([]), undefined);
});

t.test('line state from calls', async (t) => {
  t.equal(lineOf([]), 'idle');
  t.equal(lineOf([{ id: 'a', phase: 'early', direction: 'recipient' }]), 'ringing');
  t.equal(lineOf([{ id: 'a', phase: 'early', direction: 'initiator' }]), 'in-call');
  t.equal(lineOf([{ id: 'a', phase: 'confirmed', held: true }]), 'on-hold');
  t.equal(
    lineOf([
      { id: 'a', phase: 'confirmed', held: true },
      { id: 'b', phase: 'confirmed' },
    ]),
    'in-call',
  );
  t.equal(lineOf([{ id: 'a', phase: 'terminated' }]), 'idle');
});

t.test('telephony sources are merged', async (t) => {
  const m = composeTelephony([
    { line: 'idle', dnd: true, calls: [], origin: 'desk', at: 1 },
    { line: 'in-call', dnd: false, calls: [{ id: 'c', phase: 'confirmed' }], origin: 'soft', at: 2 },
  ]);
  t.equal(m!.line, 'in-call');
  t.equal(m!.dnd, true);
  t.equal(m!.calls.length, 1);
  t.equal(m!.origin, 'soft');
  t.equal(composeTelephony([]), undefined);
});
