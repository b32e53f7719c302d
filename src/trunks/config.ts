/**
 * Config of SIP trunks (PBXs and presence servers the gateway watches, feeds
 * and accepts requests from) and of inbound access control (`sip.access`).
 * The lead plugs `trunksSchema` in as `trunks` and `accessSchema` as `sip.access`.
 */
import { z } from 'zod';
import { parseCidr } from './cidr.js';
import { parseTrunkTarget } from './target.js';
import { guessingSchema } from './guessing-config.js';

export const VENDOR_PROFILES = ['generic', 'asterisk', 'cisco', 'kamailio', 'polycom'] as const;
export const TRUNK_DIRECTIONS = ['watch', 'publish', 'inbound'] as const;
export type VendorProfile = (typeof VENDOR_PROFILES)[number];
export type TrunkDirection = (typeof TRUNK_DIRECTIONS)[number];

const URI_FIX = 'write sip:host[:port][;transport=tcp] (or ;transport=tls, or sips:host[:port])';

const sipTarget = z.string().refine((s) => parseTrunkTarget(s) !== null, { message: `not a SIP URI; ${URI_FIX}` });

const cidr = z.string().refine((s) => parseCidr(s) !== null, {
  message: 'not an IP address or CIDR block; write e.g. 10.0.0.5, 10.0.0.0/24 or 2001:db8::/48',
});

const USER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const USERS_FIX = 'write all, a list of user ids like [anna, bert], or { pattern: "^10\\\\d\\\\d$" }';

/** Who a trunk carries: every user, the listed user ids, or those whose extension (else id) matches. */
export type TrunkUsers = 'all' | string[] | { pattern: string };

const trunkUsers = z.unknown().transform((v, ctx): TrunkUsers => {
  if (v === undefined || v === 'all') return 'all';
  if (Array.isArray(v)) {
    const out: string[] = [];
    v.forEach((id, i) => {
      if (typeof id === 'number' && Number.isInteger(id) && id >= 0) id = String(id);
      if (typeof id !== 'string' || !USER_ID.test(id)) {
        ctx.addIssue({ code: 'custom', path: [i], message: 'not a user id; write the id of an entry of users (letters, digits, dot, dash, underscore)' });
      } else out.push(id);
    });
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    const pattern = (v as Record<string, unknown>)['pattern'];
    if (keys.length !== 1 || typeof pattern !== 'string') {
      ctx.addIssue({ code: 'custom', message: `an object here takes only pattern; ${USERS_FIX}` });
      return z.NEVER;
    }
    try {
      new RegExp(pattern);
    } catch (err) {
      const why = err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : 'invalid';
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: `not a valid regular expression (${why}); fix it, e.g. "^10\\\\d\\\\d$"` });
      return z.NEVER;
    }
    return { pattern };
  }
  ctx.addIssue({ code: 'custom', message: USERS_FIX });
  return z.NEVER;
});

const seconds = (min: number, max: number) =>
  z.number().int(`whole seconds from ${min} to ${max}`).min(min, `seconds from ${min} to ${max}`).max(max, `seconds from ${min} to ${max}`);

export const trunkSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9-]{1,32}$/, 'a name of lower-case letters, digits and dashes (1-32), like pbx1'),
    address: sipTarget,
    outboundProxy: sipTarget.optional(),
    /** host of request URIs at the trunk; default the address host */
    domain: z
      .string()
      .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$/, 'a DNS name or IP address like pbx.example.com')
      .optional(),
    profile: z.enum(VENDOR_PROFILES, { message: `one of: ${VENDOR_PROFILES.join(', ')}` }).default('generic'),
    directions: z
      .array(z.enum(TRUNK_DIRECTIONS, { message: `one of: ${TRUNK_DIRECTIONS.join(', ')}` }))
      .min(1, 'at least one of watch, publish, inbound (or leave directions out for [watch, inbound])')
      .default(['watch', 'inbound']),
    users: trunkUsers.optional().transform((u): TrunkUsers => u ?? 'all'),
    userPart: z.enum(['extension', 'id'], { message: 'one of: extension, id' }).default('extension'),
    credentials: z
      .strictObject({
        username: z.string().min(1, 'the user name the trunk expects'),
        password: z.string().min(1, 'the password (write ${ENV_VAR} to keep it out of the file)'),
        realm: z.string().min(1).optional(),
      })
      .optional(),
    inboundAddresses: z.array(cidr).default([]),
    optionsIntervalSec: z
      .number()
      .int('whole seconds from 0 (no pings) to 3600')
      .min(0, 'seconds from 0 (no pings) to 3600')
      .max(3600, 'seconds from 0 (no pings) to 3600')
      .default(30),
    watch: z
      .strictObject({
        event: z.enum(['dialog', 'presence'], { message: 'one of: dialog, presence' }).optional(),
        expires: seconds(60, 86_400).default(3600),
        ratePerSec: z.number().int('a whole number from 1 to 10000').min(1, 'from 1 to 10000').max(10_000, 'from 1 to 10000').default(50),
      })
      .prefault({}),
    publish: z.strictObject({ expires: seconds(60, 86_400).default(3600) }).prefault({}),
    tls: z
      .strictObject({
        caPath: z.string().min(1).optional(),
        certPath: z.string().min(1).optional(),
        keyPath: z.string().min(1).optional(),
        servername: z.string().min(1).optional(),
        verify: z.boolean().default(true),
      })
      .optional(),
  })
  .superRefine((t, ctx) => {
    const seen = new Set<string>();
    t.directions.forEach((d, i) => {
      if (seen.has(d)) ctx.addIssue({ code: 'custom', path: ['directions', i], message: `"${d}" is listed twice; list it once` });
      seen.add(d);
    });
    if (t.tls !== undefined) {
      const usesTls = [t.address, t.outboundProxy].some((a) => a !== undefined && parseTrunkTarget(a)?.protocol === 'tls');
      if (!usesTls) {
        ctx.addIssue({
          code: 'custom',
          path: ['tls'],
          message: 'tls settings need a TLS address; write ;transport=tls (or sips:) in address or outboundProxy, or remove tls',
        });
      }
      if ((t.tls.certPath === undefined) !== (t.tls.keyPath === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tls', t.tls.certPath === undefined ? 'certPath' : 'keyPath'],
          message: 'mutual TLS needs both certPath and keyPath; give both or neither',
        });
      }
    }
  });

export const trunksSchema = z
  .array(trunkSchema)
  .default([])
  .superRefine((trunks, ctx) => {
    const names = new Map<string, number>();
    trunks.forEach((t, i) => {
      const first = names.get(t.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `duplicate name "${t.name}" (also trunks[${first}]); give each trunk its own name`,
        });
      } else names.set(t.name, i);
    });
  });

export type TrunkConfig = z.output<typeof trunkSchema>;

export const accessSchema = z
  .strictObject({
    /** open: anyone; restricted: trunk addresses, trusted networks and digest users. Default: restricted when a trunk or user exists. */
    mode: z.enum(['open', 'restricted'], { message: 'one of: open, restricted' }).optional(),
    /** sources accepted without authentication (a phone VLAN) */
    trusted: z.array(cidr).default([]),
    /** digest realm; default sip.domain */
    realm: z.string().min(1, 'a realm like gateway.example.com').optional(),
    challenge: z
      .number()
      .refine((n) => n === 401 || n === 407, { message: 'either 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)' })
      .transform((n) => n as 401 | 407)
      .default(401),
    users: z
      .array(
        z.strictObject({
          username: z.string().regex(/^[A-Za-z0-9._~!$&'()*+,;=%-]{1,64}$/, 'a user name of 1-64 letters, digits and . _ - characters'),
          password: z.string().min(1, 'the password (write ${ENV_VAR} to keep it out of the file)'),
          /** may subscribe to anyone's presence.winfo (who watches whom) */
          admin: z.boolean().optional(),
        }),
      )
      .default([]),
    /** digest password-guessing throttle (guessing-config.ts) */
    guessing: guessingSchema.optional(),
  })
  .prefault({})
  .superRefine((a, ctx) => {
    const names = new Map<string, number>();
    a.users.forEach((u, i) => {
      const first = names.get(u.username);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['users', i, 'username'],
          message: `duplicate username "${u.username}" (also users[${first}]); give each user its own name`,
        });
      } else names.set(u.username, i);
    });
  });

export type AccessConfig = z.output<typeof accessSchema>;

/** The access mode in force: as configured, else restricted when any trunk or digest user exists. */
export function effectiveAccessMode(access: AccessConfig, trunks: readonly TrunkConfig[]): 'open' | 'restricted' {
  if (access.mode !== undefined) return access.mode;
  return trunks.length > 0 || access.users.length > 0 ? 'restricted' : 'open';
}

/**
 * Problems with user lists naming ids that are not in `users` (the lead calls
 * this with the configured ids). One message per unknown id, path first.
 */
export function unknownTrunkUsers(trunks: readonly TrunkConfig[], userIds: Iterable<string>): string[] {
  const known = new Set(userIds);
  const out: string[] = [];
  trunks.forEach((t, i) => {
    if (!Array.isArray(t.users)) return;
    t.users.forEach((id, j) => {
      if (!known.has(id)) {
        out.push(`trunks[${i}].users[${j}]: "${id}" is not the id of any entry of users; add it to users or remove it from this list`);
      }
    });
  });
  return out;
}
