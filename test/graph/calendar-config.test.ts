import t from 'tap';
import { calendarRequestsPer30s, parseGraphConfig } from '../../src/graph/config.js';
import { graphConfigProblems as problems } from '../helpers/config-problems.js';

const BASE = { tenantId: '11111111-2222-4333-8444-555555555555', clientId: '66666666-7777-4888-9999-000000000000', clientSecret: 's3cret' };

t.test('the calendar is off unless asked for, with documented defaults', async (t) => {
  const c = parseGraphConfig(BASE);
  t.equal(c.calendar.enabled, false);
  t.equal(c.calendar.timeZone, 'UTC');
  t.equal(c.calendar.refreshMinutes, 5);
  t.equal(c.calendar.share, 0.05);
  t.equal(calendarRequestsPer30s(c), 60, '5 % of the 1,200 requests / 30 s');
  const on = parseGraphConfig({ ...BASE, calendar: { enabled: true, timeZone: 'Europe/Berlin' } });
  t.equal(on.calendar.enabled, true);
  t.equal(on.calendar.timeZone, 'Europe/Berlin');
});

t.test('a bad time zone names the path and what to write', async (t) => {
  const p = problems({ ...BASE, calendar: { enabled: true, timeZone: 'Mars/Olympus' } });
  t.equal(p.length, 1);
  t.match(p[0], /^graph\.calendar\.timeZone: expected an IANA time zone name such as Europe\/Berlin/);
});

t.test('a share too large, an unknown key and a bad refresh are each named', async (t) => {
  t.match(problems({ ...BASE, calendar: { enabled: true, share: 0.5 } })[0], /^graph\.calendar\.share: expected .*at most 0\.2.*presence polling needs the rest/);
  t.match(problems({ ...BASE, calendar: { enabled: true, refresMinutes: 5 } })[0], /^graph\.calendar: unknown key "refresMinutes"/);
  t.match(problems({ ...BASE, calendar: { refreshMinutes: 0 } })[0], /^graph\.calendar\.refreshMinutes: expected a refresh of at least 1 minute/);
});

t.test('polling and calendar together must fit the budget', async (t) => {
  const p = problems({ ...BASE, budget: { requestsPer30s: 650 }, poll: { share: 0.42 }, calendar: { enabled: true, share: 0.2 } });
  t.equal(p.length, 1);
  t.match(p[0], /^graph\.calendar\.share: polling \(630\) and the calendar \(130\) together take more than budget\.requestsPer30s \(650\)/);
  t.same(problems({ ...BASE, budget: { requestsPer30s: 650 }, poll: { share: 0.42 }, calendar: { enabled: false, share: 0.2 } }), [], 'not checked while off');
});
