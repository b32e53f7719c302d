import t from 'tap';
import { watcherProfilesSchema } from '../../src/config/watcher-profiles.js';
import { WatcherProfileSelector } from '../../src/simple/watcher-profile.js';

t.test('sip.watcherProfiles: rules parse and drive the selector', async (t) => {
  t.same(watcherProfilesSchema.parse(undefined), [], 'absent: no extra rules');
  const rules = watcherProfilesSchema.parse([
    { userAgent: '^Yealink', profile: 'polycom' },
    { userAgent: 'Grandstream|GXP\\d+', profile: 'asterisk' },
  ]);
  const sel = new WatcherProfileSelector(rules);
  t.equal(sel.select({ userAgent: 'Grandstream GXP2170 1.0.11' }), 'asterisk');
  t.equal(sel.select({ userAgent: 'Yealink SIP-T46S' }), 'polycom');
  t.equal(sel.select({ userAgent: 'Cisco-CP8845' }), 'cisco', 'built-in rules still apply after the configured ones');
});

t.test('sip.watcherProfiles: errors name the field', async (t) => {
  const badRegex = watcherProfilesSchema.safeParse([{ userAgent: 'Cisco(', profile: 'cisco' }]);
  t.notOk(badRegex.success);
  t.same(badRegex.error?.issues[0]?.path, [0, 'userAgent']);
  t.match(badRegex.error?.issues[0]?.message ?? '', /regular expression/);

  const badProfile = watcherProfilesSchema.safeParse([{ userAgent: 'Cisco', profile: 'snom' }]);
  t.notOk(badProfile.success);
  t.same(badProfile.error?.issues[0]?.path, [0, 'profile']);
  t.match(badProfile.error?.issues[0]?.message ?? '', /rfc, cisco, polycom, asterisk/);

  t.notOk(watcherProfilesSchema.safeParse([{ userAgent: '', profile: 'cisco' }]).success, 'empty regex');
  t.notOk(watcherProfilesSchema.safeParse([{ userAgent: 'x', profile: 'cisco', extra: 1 }]).success, 'unknown key');
});
