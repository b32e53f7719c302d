import t from 'tap';
import { AdminConfigError, adminSchema, parseAdminConfig } from '../../src/config/admin.js';

const GOOD = 'a'.repeat(12) + 'B'.repeat(12);

t.test('a valid admin section, with defaults', async (t) => {
  t.same(parseAdminConfig({ token: GOOD }), { token: GOOD, historySize: 50 });
  t.same(parseAdminConfig({ token: GOOD, historySize: 5, metricsToken: GOOD + 'm' }), { token: GOOD, historySize: 5, metricsToken: GOOD + 'm' });
  t.ok(adminSchema.safeParse({ token: GOOD }).success, 'the schema is exported for config/schema.ts');
});

t.test('errors name the path and the fix', async (t) => {
  const problems = (input: unknown): readonly string[] => {
    try {
      parseAdminConfig(input);
    } catch (err) {
      if (err instanceof AdminConfigError) return err.problems;
      throw err;
    }
    return [];
  };
  t.match(problems({}), [/^admin\.token: missing; set at least 24 characters .*openssl rand -hex 24/]);
  t.match(problems({ token: 'short' }), [/^admin\.token: too short: use at least 24 characters/]);
  t.match(problems({ token: 'has spaces in it, that is not good at all' }), [/^admin\.token: printable ASCII without spaces/]);
  t.match(problems({ token: GOOD, historySize: 0 }), [/^admin\.historySize: at least 1 entry/]);
  t.match(problems({ token: GOOD, historySize: 2.5 }), [/^admin\.historySize: a whole number/]);
  t.match(problems({ token: GOOD, tokn: 'x' }), [/^admin: unknown key "tokn" \(allowed: token, historySize, metricsToken\)/]);
  t.match(problems({ token: 42 }), [/^admin\.token: a string of at least 24/]);
  t.match(problems({ token: GOOD, metricsToken: 'x' }), [/^admin\.metricsToken: too short/]);
  t.throws(() => parseAdminConfig({}), /invalid admin configuration:\n {2}- admin\.token/);
});
