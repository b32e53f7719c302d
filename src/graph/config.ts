/**
 * The Graph side's configuration (mounted under `graph:` in the main config).
 * Every message says what is expected, so an error reads "<path>: expected
 * <what and how to fix it>".
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{3,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i;

function httpsUrl(what: string) {
  return z.string().refine(
    (s) => {
      try {
        const u = new URL(s);
        return u.protocol === 'https:' && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: `an https URL (${what})` },
  );
}

const pathString = (what: string) => z.string().min(1, `a file path (${what})`);

/** How a service account gets its delegated token. */
export const SIGN_IN_METHODS = ['deviceCode', 'password'] as const;
export type SignInMethod = (typeof SIGN_IN_METHODS)[number];

/**
 * A service account: signed in once by an administrator with the device
 * code flow (MFA-safe, the default), or by password (ROPC; only for an
 * account excluded from MFA, the way older configs have it).
 */
const serviceAccount = z
  .strictObject({
    username: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'a user principal name like svc-presence@contoso.com'),
    signIn: z.enum(SIGN_IN_METHODS, { message: 'deviceCode (signed in once with presence-gateway-cli signin; works with MFA) or password (only for an account excluded from MFA)' }).optional(),
    password: z.string().min(1, "the account's password (use ${ENV_VAR} rather than writing it in the file)").optional(),
  })
  .superRefine((a, ctx) => {
    const method = a.signIn ?? (a.password !== undefined ? 'password' : 'deviceCode');
    if (method === 'password' && a.password === undefined) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'signIn: password needs the password (use ${ENV_VAR}); or use signIn: deviceCode, which works with MFA' });
    }
    if (method === 'deviceCode' && a.password !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'a device-code account keeps no password: remove password, or set signIn: password for an account excluded from MFA' });
    }
  })
  .transform((a) => {
    const method: SignInMethod = a.signIn ?? (a.password !== undefined ? 'password' : 'deviceCode');
    return method === 'password' ? { username: a.username, signIn: method, password: a.password ?? '' } : { username: a.username, signIn: method };
  });

/** A 32-byte AES key as base64 or hex; undefined when it is not one. */
export function decodeTokenCacheKey(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-f]{64}$/i.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return b.length === 32 ? b : undefined;
  }
  return undefined;
}

/** The environment variable read for the token cache key when graph.tokenCacheKey is not given. */
export const TOKEN_CACHE_KEY_ENV = 'PRESENCE_GATEWAY_TOKEN_CACHE_KEY';
const KEY_HOW = `make one with: openssl rand -base64 32; write tokenCacheKey: \${${TOKEN_CACHE_KEY_ENV}} and set that variable rather than the key itself`;

const staticEntry = z
  .strictObject({
    person: z.string().min(1, 'a person id from users[]'),
    userId: z.string().regex(GUID, "the Teams user's Entra object id (a GUID)").optional(),
    upn: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'a user principal name like anna@contoso.com').optional(),
  })
  .refine((s) => (s.userId === undefined) !== (s.upn === undefined), {
    message: 'exactly one of userId or upn (say who the person is in Teams)',
  });

// Graph: throttling-limits and cloudcommunications-getpresencesbyuserid (1,500 requests per 30 s per app per tenant)
export const GRAPH_PRESENCE_LIMIT_PER_30S = 1500;
/** The gateway's own ceiling by default: 80 % of the documented limit, headroom for retries and other tools of the app. */
export const DEFAULT_REQUESTS_PER_30S = 1200;
export const POLL_MODES = ['budget', 'fixed'] as const;

/** Poll requests per 30 s that `share` of the documented limit allows. */
export function pollRequestsPer30s(share: number): number {
  return Math.max(1, Math.floor(share * GRAPH_PRESENCE_LIMIT_PER_30S));
}

/**
 * Service plans that carry Teams: TEAMS1 (commercial), TEAMS_GOV (GCC),
 * TEAMS_AR_GCCHIGH (GCC High), TEAMS_AR_DOD (DoD), as listed in Azure
 * Communication Services' "Teams license requirements" (eligible service plans)
 * and Entra's licensing-service-plan-reference.
 */
export const TEAMS_SERVICE_PLAN_IDS = [
  '57ff2da0-773e-42df-b2af-ffb7a2317929',
  '304767db-7d23-49e8-a945-4a7eb65f9f28',
  '9953b155-8aef-4c56-92f3-72b0487fce41',
  'fd500458-c24c-478e-856c-a6067a8376cd',
] as const;

export const SIP_MATCH_FIELDS = ['extension', 'id', 'displayName', 'aorUser'] as const;
export const GRAPH_MATCH_FIELDS = [
  'userPrincipalName',
  'mail',
  'mailNickname',
  'displayName',
  'businessPhones',
  'onPremisesSamAccountName',
] as const;
export type SipMatchField = (typeof SIP_MATCH_FIELDS)[number];
export type GraphMatchField = (typeof GRAPH_MATCH_FIELDS)[number];

/** Whether `zone` is an IANA time zone name Intl knows (e.g. Europe/Berlin, UTC). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The calendar reader (opt-in): "In a meeting until 14:00" from
 * POST /users/{id}/calendar/getSchedule. Application permission
 * Calendars.ReadBasic.All, the least privileged one (Graph: calendar-getschedule,
 * its permissions table: application Calendars.ReadBasic, higher
 * Calendars.Read, Calendars.ReadWrite; older versions of the page listed only
 * Calendars.Read, which still works).
 */
const calendarConfig = z.strictObject({
  enabled: z.boolean().default(false),
  /** IANA zone the end time is shown in ("until 14:00"); the person's own zone is not known. */
  timeZone: z
    .string()
    .refine(isTimeZone, { message: 'expected an IANA time zone name such as Europe/Berlin or UTC (the zone "until 14:00" is shown in)' })
    .default('UTC'),
  /** Each person's calendar is read again this often. */
  refreshMinutes: z.number().int().min(1, 'a refresh of at least 1 minute').max(60, 'a refresh of at most 60 minutes').default(5),
  /** How far ahead each read looks. */
  lookaheadHours: z.number().int().min(1, 'at least 1 hour ahead').max(24, 'at most 24 hours ahead').default(4),
  /** The share of budget.requestsPer30s the calendar may use; presence polling keeps the rest. */
  share: z
    .number()
    .gt(0, 'a share above 0 and at most 0.2 of budget.requestsPer30s (e.g. 0.05)')
    .max(0.2, 'a share of at most 0.2 of budget.requestsPer30s (presence polling needs the rest; e.g. 0.05)')
    .default(0.05),
});

export const graphConfigSchema = z
  .strictObject({
    tenantId: z
      .string()
      .refine((s) => GUID.test(s) || (DOMAIN.test(s) && !['common', 'organizations', 'consumers'].includes(s.toLowerCase())), {
        message: 'your Entra tenant id (a GUID) or its verified domain, e.g. contoso.onmicrosoft.com (not "common")',
      }),
    clientId: z.string().regex(GUID, 'the app registration\'s Application (client) id, a GUID'),
    clientSecret: z.string().min(1, 'the client secret value (use ${ENV_VAR}), or give certificate instead').optional(),
    certificate: z
      .strictObject({
        certPath: pathString('PEM certificate uploaded to the app registration'),
        keyPath: pathString("PEM private key of that certificate"),
      })
      .optional(),
    /** Where tokens come from; the tenant id is appended. */
    authorityHost: httpsUrl('the Entra ID login host, e.g. https://login.microsoftonline.com').default('https://login.microsoftonline.com'),
    graphBaseUrl: httpsUrl('Microsoft Graph with its version, e.g. https://graph.microsoft.com/v1.0').default('https://graph.microsoft.com/v1.0'),
    /** The resource whose /.default scope app tokens are asked for (national clouds differ). */
    graphResource: httpsUrl('the Graph resource id, e.g. https://graph.microsoft.com').default('https://graph.microsoft.com'),
    /** A PEM CA added to the TLS trust of both token and Graph requests. */
    trustedCaPath: pathString('PEM CA certificate to trust in addition to the system CAs').optional(),
    serviceAccounts: z.array(serviceAccount).default([]),
    /** AES-256-GCM key sealing the stored msal token cache (device-code accounts' refresh tokens). */
    tokenCacheKey: z
      .string()
      .refine((s) => decodeTokenCacheKey(s) !== undefined, { message: `expected a 32-byte key, base64 or hex (${KEY_HOW})` })
      .optional(),
    webhook: z
      .strictObject({
        publicUrl: httpsUrl('where Graph can POST change notifications, e.g. https://gw.contoso.com/graph/notifications'),
        clientState: z
          .string()
          .min(16, 'a random secret of 16 to 128 characters (or leave it out to have one generated)')
          .max(128, 'a random secret of 16 to 128 characters (Graph allows at most 128)')
          .default(() => randomBytes(32).toString('base64url')),
        /**
         * Rich notifications (includeResourceData): each notification carries the
         * presence, encrypted to our certificate, so no read-back is needed.
         * `true` or `{}`: a key pair generated once and kept in the store;
         * or your own PEM pair (certPath + keyPath, RSA 2048 to 4096 bits).
         */
        richNotifications: z
          .preprocess(
            (v) => (v === true ? {} : v),
            z
              .strictObject({
                certPath: pathString('PEM certificate (RSA, 2048 to 4096 bits) Graph encrypts notifications to').optional(),
                keyPath: pathString('PEM private key of that certificate').optional(),
                certificateId: z.string().min(1, 'an id of 1 to 128 characters').max(128, 'an id of 1 to 128 characters (Graph allows at most 128)').optional(),
              })
              .refine((r) => (r.certPath === undefined) === (r.keyPath === undefined), {
                message: 'give both certPath and keyPath, or neither (to have a key pair generated and kept in the store)',
              }),
          )
          .optional(),
      })
      .optional(),
    poll: z
      .strictObject({
        /** budget: the interval follows the number of people and poll.share (down to 1 s); fixed: every intervalSec */
        mode: z.enum(POLL_MODES, { message: `one of: ${POLL_MODES.join(', ')} (budget derives the interval from the people and poll.share)` }).default('budget'),
        /** the share of Graph's documented 1,500 requests / 30 s that polling may use */
        share: z
          .number()
          .gt(0, 'a share above 0 and at most 0.9 of the 1,500 requests / 30 s (e.g. 0.4)')
          .max(0.9, 'a share above 0 and at most 0.9 of the 1,500 requests / 30 s (leave room for writes; e.g. 0.4)')
          .default(0.4),
        /** mode budget: the slowest interval; mode fixed: the interval */
        intervalSec: z.number().int().min(5, 'a poll interval of at least 5 seconds').max(3600, 'a poll interval up to 3600 seconds').default(30),
        /** people a healthy webhook covers are read again this often (shorter while it is not healthy) */
        safetyReadSec: z.number().int().min(30, 'a safety read interval of at least 30 seconds').max(86_400, 'at most 86400 seconds').default(600),
      })
      .prefault({}),
    writer: z
      .strictObject({
        enabled: z.boolean().default(true),
        dnd: z.enum(['preferred', 'session', 'off'], { message: 'one of: preferred, session, off' }).default('session'),
        statusMessage: z.boolean().default(false),
        /**
         * What a PBX call shows in Teams. 'busy': a Busy/InACall session (display
         * only: Teams calls still ring). 'dnd': DoNotDisturb as the person's
         * preferred presence for the call, then what they had before restored.
         */
        duringCall: z.enum(['busy', 'dnd'], { message: 'one of: busy, dnd' }).default('busy'),
        expirationMinutes: z
          .number()
          .int()
          .min(5, 'minutes from 5 to 240 (Graph takes PT5M to PT4H)')
          .max(240, 'minutes from 5 to 240 (Graph takes PT5M to PT4H)')
          .default(5),
      })
      .prefault({}),
    directory: z
      .strictObject({
        match: z
          .strictObject({
            sip: z.enum(SIP_MATCH_FIELDS, { message: `one of: ${SIP_MATCH_FIELDS.join(', ')}` }).default('aorUser'),
            graph: z.enum(GRAPH_MATCH_FIELDS, { message: `one of: ${GRAPH_MATCH_FIELDS.join(', ')}` }).default('userPrincipalName'),
            stripDomain: z.boolean().default(true),
          })
          .prefault({}),
        static: z.array(staticEntry).default([]),
        teamsLicensedOnly: z.boolean().default(true),
        /** service plans that make a user Teams-licensed (commercial and US government clouds by default) */
        teamsServicePlanIds: z
          .array(z.string().regex(GUID, 'a service plan id (a GUID) from Microsoft\'s licensing service plan reference'))
          .min(1, 'at least one Teams service plan id (or set teamsLicensedOnly: false)')
          .default([...TEAMS_SERVICE_PLAN_IDS]),
        /** Directory changes are picked up by a delta query this often. */
        syncIntervalMin: z.number().int().min(1, 'at least 1 minute').max(1440, 'at most 1440 minutes').default(15),
      })
      .prefault({}),
    calendar: calendarConfig.prefault({}),
    budget: z
      .strictObject({
        requestsPer30s: z
          .number()
          .int()
          .min(10, 'a request budget of at least 10 per 30 s')
          .max(GRAPH_PRESENCE_LIMIT_PER_30S, `at most ${GRAPH_PRESENCE_LIMIT_PER_30S} per 30 s (Graph's documented limit per app and tenant; leave it out for the default ${DEFAULT_REQUESTS_PER_30S})`)
          .default(DEFAULT_REQUESTS_PER_30S),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const pollPer30s = pollRequestsPer30s(c.poll.share);
    if (pollPer30s > c.budget.requestsPer30s) {
      ctx.addIssue({
        code: 'custom',
        path: ['poll', 'share'],
        message: `${c.poll.share} of 1,500 is ${pollPer30s} requests / 30 s, more than budget.requestsPer30s (${c.budget.requestsPer30s}); lower poll.share or raise budget.requestsPer30s`,
      });
    }
    if (c.calendar.enabled && pollPer30s + calendarRequestsPer30s(c) > c.budget.requestsPer30s) {
      ctx.addIssue({
        code: 'custom',
        path: ['calendar', 'share'],
        message: `polling (${pollPer30s}) and the calendar (${calendarRequestsPer30s(c)}) together take more than budget.requestsPer30s (${c.budget.requestsPer30s}) per 30 s; lower calendar.share or poll.share`,
      });
    }
    if ((c.clientSecret === undefined) === (c.certificate === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: c.clientSecret === undefined ? [] : ['certificate'],
        message: 'give exactly one app credential: clientSecret, or certificate {certPath, keyPath}',
      });
    }
    const names = new Map<string, number>();
    c.serviceAccounts.forEach((a, i) => {
      const key = a.username.toLowerCase();
      const first = names.get(key);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['serviceAccounts', i, 'username'], message: `duplicate of serviceAccounts[${first}] (list each account once)` });
      } else names.set(key, i);
    });
    const persons = new Map<string, number>();
    c.directory.static.forEach((s, i) => {
      const first = persons.get(s.person);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['directory', 'static', i, 'person'], message: `"${s.person}" is already directory.static[${first}] (one entry per person)` });
      } else persons.set(s.person, i);
    });
  });

/** getSchedule requests per 30 s the calendar may start: its share of the gateway's budget, at least 1. */
export function calendarRequestsPer30s(c: { calendar: { share: number }; budget: { requestsPer30s: number } }): number {
  return Math.max(1, Math.floor(c.calendar.share * c.budget.requestsPer30s));
}

export type GraphConfigInput = z.input<typeof graphConfigSchema>;
export type GraphConfig = z.output<typeof graphConfigSchema>;

/** A Graph configuration that does not validate: each problem names its path and the fix. */
export class GraphConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid graph configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'GraphConfigError';
  }
}

function formatPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string') out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(top level)' : out;
}

/** Validate `input` (the object under `graph:`); throws GraphConfigError naming `prefix.path: expected ...`. */
export function parseGraphConfig(input: unknown, prefix = 'graph'): GraphConfig {
  const r = graphConfigSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  const problems = r.error.issues.map((issue) => {
    const where = formatPath(prefix, issue.path);
    if (issue.code === 'unrecognized_keys') return `${where}: unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling)`;
    if (issue.code === 'custom') return `${where}: ${issue.message}`;
    return `${where}: expected ${issue.message.replace(/^Invalid input: expected /, '')}`;
  });
  throw new GraphConfigError(problems);
}

/**
 * The key sealing the stored token cache: graph.tokenCacheKey, else the
 * environment variable. Undefined when no account signs in by device code
 * (nothing to keep); a GraphConfigError naming the path and the fix when one
 * does and there is no usable key. The key is never logged.
 */
export function resolveTokenCacheKey(config: GraphConfig, env: Readonly<Record<string, string | undefined>> = process.env, prefix = 'graph'): Buffer | undefined {
  const index = config.serviceAccounts.findIndex((a) => a.signIn === 'deviceCode');
  if (index < 0) return undefined;
  if (config.tokenCacheKey !== undefined) {
    const key = decodeTokenCacheKey(config.tokenCacheKey);
    if (key !== undefined) return key;
    throw new GraphConfigError([`${prefix}.tokenCacheKey: expected a 32-byte key, base64 or hex (${KEY_HOW})`]);
  }
  const fromEnv = env[TOKEN_CACHE_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = decodeTokenCacheKey(fromEnv);
    if (key !== undefined) return key;
    throw new GraphConfigError([`${prefix}.tokenCacheKey: the environment variable ${TOKEN_CACHE_KEY_ENV} is not a 32-byte key, base64 or hex (${KEY_HOW})`]);
  }
  const who = config.serviceAccounts[index]?.username ?? '';
  throw new GraphConfigError([
    `${prefix}.tokenCacheKey: missing: ${prefix}.serviceAccounts[${index}] (${who}) signs in by device code and its refresh token is kept in the store, encrypted with this key (${KEY_HOW})`,
  ]);
}
