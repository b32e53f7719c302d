import t from 'tap';
import { Headers } from '../../src/sip/headers.js';
import { hasOptionTag, optionTags, unsupportedRequirements } from '../../src/sip/option-tags.js';

t.test('option tags over several lines and commas, lower-cased, once each', async (t) => {
  const h = Headers.from([
    ['require', 'EventList, foo'],
    ['require', ' bar ,foo,'],
    ['supported', 'eventlist'],
  ]);
  t.same(optionTags(h, 'require'), ['eventlist', 'foo', 'bar']);
  t.ok(hasOptionTag(h, 'supported', 'EVENTLIST'));
  t.notOk(hasOptionTag(h, 'supported', 'foo'));
  t.same(unsupportedRequirements(h, new Set(['eventlist'])), ['foo', 'bar']);
  t.same(unsupportedRequirements(new Headers(), new Set()), []);
});
