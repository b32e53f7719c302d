import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/loader.js';

function problems(text: string): string[] {
  try {
    parseConfig(text);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('sip.overload and sip.access.rateLimit defaults', async (t) => {
  const c = parseConfig('');
  t.same(c.sip.overload, { maxEventLoopLagMs: 200, queueDelayMs: 150, maxWaitMs: 1000, retryAfterSec: 10, maxRetryAfterSec: 60 });
  t.same(c.sip.rateLimit, { enabled: true, ratePerSec: 100, burst: 1000 });
});

t.test('bad overload and rate-limit values name the path and the fix', async (t) => {
  const p = problems(
    'sip:\n  overload: { queueDelayMs: 0, retryAfterSec: 30, maxRetryAfterSec: 5 }\n  rateLimit: { ratePerSec: 0, burst: x }\n',
  );
  t.ok(p.some((l) => /^sip\.overload\.queueDelayMs: expected at least 1 ms, e\.g\. 150 \(got 0\)/.test(l)), p.join('\n'));
  t.ok(p.some((l) => /^sip\.overload\.maxRetryAfterSec: below retryAfterSec \(30\); set it to at least that/.test(l)), p.join('\n'));
  t.ok(p.some((l) => /^sip\.rateLimit\.ratePerSec: expected more than 0/.test(l)), p.join('\n'));
  t.ok(p.some((l) => /^sip\.rateLimit\.burst: expected requests, e\.g\. 1000 \(got "x"\)/.test(l)), p.join('\n'));
});
