/**
 * `sip.access.guessing`: the digest password-guessing throttle (see
 * src/sip/guessing-guard.ts). Defaults are safe; every field is optional.
 *
 *   sip:
 *     access:
 *       guessing:
 *         maxFailures: 5          # per source address + user name in windowSec, then locked out
 *         lockoutSec: 60          # doubles per relapse up to maxLockoutSec
 *         perUserMaxFailures: 30  # per user name from all sources (sources it succeeded from excepted)
 *         refuseWith: 403         # or 503 (with Retry-After)
 */
import { z } from 'zod';

const whole = (min: number, max: number, unit: string) =>
  z
    .number({ message: `a whole number of ${unit} from ${min} to ${max}` })
    .int(`a whole number of ${unit} from ${min} to ${max}`)
    .min(min, `at least ${min} ${unit}; raise it`)
    .max(max, `at most ${max} ${unit}; lower it`);

export const guessingSchema = z
  .strictObject({
    /** false turns the throttle off (not advised on a reachable address) */
    enabled: z.boolean({ message: 'true or false' }).default(true),
    windowSec: whole(10, 86_400, 'seconds').default(600),
    delayAfter: whole(1, 100, 'failures').default(3),
    delayMs: whole(0, 10_000, 'milliseconds').default(1000),
    maxFailures: whole(1, 100, 'failures').default(5),
    lockoutSec: whole(1, 86_400, 'seconds').default(60),
    maxLockoutSec: whole(1, 604_800, 'seconds').default(3600),
    perUserMaxFailures: whole(1, 100_000, 'failures').default(30),
    maxTracked: whole(100, 1_000_000, 'entries').default(10_000),
    trustSuccessSec: whole(0, 2_592_000, 'seconds').default(86_400),
    refuseWith: z
      .number()
      .refine((n) => n === 403 || n === 503, { message: 'either 403 (Forbidden) or 503 (Service Unavailable with Retry-After)' })
      .transform((n) => n as 403 | 503)
      .default(403),
  })
  .superRefine((g, ctx) => {
    if (g.lockoutSec > g.maxLockoutSec) {
      ctx.addIssue({ code: 'custom', path: ['lockoutSec'], message: `lockoutSec (${g.lockoutSec}) exceeds maxLockoutSec (${g.maxLockoutSec}); lower it or raise maxLockoutSec` });
    }
    if (g.delayAfter > g.maxFailures) {
      ctx.addIssue({ code: 'custom', path: ['delayAfter'], message: `delayAfter (${g.delayAfter}) exceeds maxFailures (${g.maxFailures}); challenges would never be delayed; lower it` });
    }
    if (g.perUserMaxFailures < g.maxFailures) {
      ctx.addIssue({ code: 'custom', path: ['perUserMaxFailures'], message: `perUserMaxFailures (${g.perUserMaxFailures}) is below maxFailures (${g.maxFailures}): one source would lock the user out everywhere; raise it` });
    }
  });

export type GuessingConfig = z.output<typeof guessingSchema>;

/** What applies when `sip.access.guessing` is left out (it then stays absent from the parsed config). */
export const GUESSING_DEFAULTS: GuessingConfig = guessingSchema.parse({});
