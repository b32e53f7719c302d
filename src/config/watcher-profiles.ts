/**
 * sip.watcherProfiles: which output profile a watcher gets, by User-Agent.
 *   sip:
 *     watcherProfiles:
 *       - { userAgent: "Yealink", profile: polycom }
 * Rules are tried in order, then the built-in ones (Cisco|CP-\d → cisco,
 * Polycom|PolyEdge|VVX → polycom); a trunk's output profile wins over both.
 */
import { z } from 'zod';

function compiles(source: string): boolean {
  try {
    new RegExp(source, 'i');
    return true;
  } catch {
    return false;
  }
}

export const watcherProfileSchema = z.enum(['rfc', 'cisco', 'polycom', 'asterisk', 'xpidf'], {
  message: 'one of: rfc, cisco, polycom, asterisk, xpidf',
});

export const watcherProfileRuleSchema = z.strictObject({
  /** Regular expression tested against the SUBSCRIBE's User-Agent, case-insensitive. */
  userAgent: z
    .string()
    .min(1, 'a regular expression matching the User-Agent, e.g. "Cisco|CP-\\\\d"')
    .max(500)
    .refine(compiles, { message: 'not a valid regular expression (JavaScript syntax)' }),
  profile: watcherProfileSchema,
});

export const watcherProfilesSchema = z.array(watcherProfileRuleSchema).default([]);

export type WatcherProfileRuleConfig = z.infer<typeof watcherProfileRuleSchema>;
export type WatcherProfilesConfig = z.infer<typeof watcherProfilesSchema>;
