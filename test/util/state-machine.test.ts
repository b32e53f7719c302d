import t from 'tap';
import { canTransition, transitionTable } from '../../src/util/state-machine.js';

t.test('a transition table allows what it lists and nothing else', async (t) => {
  const table = transitionTable<'a' | 'b' | 'c'>({ a: ['b'], b: ['b', 'c'], c: [] });
  t.ok(canTransition(table, 'a', 'b'));
  t.ok(canTransition(table, 'b', 'b'), 'a listed self-change');
  t.notOk(canTransition(table, 'a', 'a'), 'an unlisted self-change is refused');
  t.notOk(canTransition(table, 'a', 'c'));
  t.notOk(canTransition(table, 'c', 'a'), 'a final state allows nothing');
  t.ok(Object.isFrozen(table) && Object.isFrozen(table.a), 'frozen');
});
