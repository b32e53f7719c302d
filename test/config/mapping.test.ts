import t from 'tap';
import { teamsToSipTable } from '../../src/config/core-config.js';
import { ConfigError, parseConfig } from '../../src/config/loader.js';
import { sipMeaningOf } from '../../src/core/mapping.js';

const teams = (availability: string, activity: string) => ({ availability, activity, at: 0 });

t.test('the default table is DESIGN.md', async (t) => {
  const table = teamsToSipTable(parseConfig('').mapping);
  t.same(sipMeaningOf(teams('Busy', 'InAMeeting'), table).activities, ['meeting']);
  t.equal(sipMeaningOf(teams('DoNotDisturb', 'Presenting'), table).call, true);
});

t.test('a deployment replaces entries and chooses Presenting as DND', async (t) => {
  const c = parseConfig(
    [
      'mapping:',
      '  prefer: teams',
      '  presenting: dnd',
      '  teamsToSip:',
      '    InAMeeting: { activities: [busy], note: "In a Teams meeting" }',
      '    BeRightBack: { activities: [] }',
    ].join('\n'),
  );
  t.equal(c.mapping.prefer, 'teams');
  const table = teamsToSipTable(c.mapping);
  t.same(sipMeaningOf(teams('Busy', 'InAMeeting'), table), { activities: ['busy'], note: 'In a Teams meeting' });
  t.same(sipMeaningOf(teams('Away', 'BeRightBack'), table).activities, []);
  t.equal(sipMeaningOf(teams('DoNotDisturb', 'Presenting'), table).dnd, true);
  t.same(sipMeaningOf(teams('Away', 'Away'), table).activities, ['away'], 'untouched entries keep their default');
});

t.test('bad mapping values name the path', async (t) => {
  try {
    parseConfig('mapping:\n  prefer: pbx\n  teamsToSip:\n    InAMeeting: { activities: ["Busy Now"] }\n');
    t.fail('expected a ConfigError');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    const p = (err as ConfigError).problems.join('\n');
    t.match(p, /mapping\.prefer: expected one of: telephony, teams \(got "pbx"\)/);
    t.match(p, /mapping\.teamsToSip\.InAMeeting\.activities\[0\]: expected an RPID activity/);
  }
});
