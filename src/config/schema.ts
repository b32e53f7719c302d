import { isIP } from 'node:net';
import { z } from 'zod';
import { graphConfigSchema } from '../graph/config.js';
import { adminSchema, DEMO_ADMIN_TOKEN } from './admin.js';
import { listMemberIssues, listsSchema } from '../simple/lists-config.js';
import { storeConfigSchema } from './store.js';
import { clusterConfigSchema } from './cluster.js';
import { accessSchema, trunksSchema, unknownTrunkUsers } from '../trunks/config.js';
import { watcherProfilesSchema } from './watcher-profiles.js';
import { connectionsSchema, securityLogSchema } from './security.js';

const port = z.number().int().min(0, 'a port from 0 to 65535').max(65535, 'a port from 0 to 65535');

const listen = z
  .strictObject({
    transport: z.enum(['udp', 'tcp', 'tls', 'ws', 'wss'], { message: 'one of: udp, tcp, tls, ws, wss' }),
    address: z.string().refine((a) => isIP(a) !== 0, { message: 'an IPv4 or IPv6 address to bind, e.g. 0.0.0.0 or 127.0.0.1' }),
    port,
    /** tls and wss: the server certificate (PEM files); requestClientCert asks peers for theirs (mutual TLS). */
    tls: z
      .strictObject({
        certPath: z.string().min(1, 'a PEM certificate file'),
        keyPath: z.string().min(1, 'the PEM private key file of that certificate'),
        caPath: z.string().min(1, 'a PEM file of the CAs whose client certificates are accepted').optional(),
        requestClientCert: z.boolean().default(false),
      })
      .optional(),
    /** ws and wss: the HTTP path of the WebSocket upgrade (RFC 7118). */
    path: z.string().regex(/^\/[\x21-\x7e]*$/, 'an absolute HTTP path like / or /sip').optional(),
  })
  .superRefine((l, ctx) => {
    const secure = l.transport === 'tls' || l.transport === 'wss';
    if (secure && l.tls === undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `a ${l.transport} listener needs tls: { certPath, keyPath }` });
    }
    if (!secure && l.tls !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `tls settings apply to tls and wss listeners only; remove them or use transport: ${l.transport === 'ws' ? 'wss' : 'tls'}` });
    }
    if (l.path !== undefined && l.transport !== 'ws' && l.transport !== 'wss') {
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'path applies to ws and wss listeners only; remove it' });
    }
  });

/** Expiry bounds of one kind of soft state (RFC 6665 subscriptions, RFC 3903 publications). */
function expiryBounds(defaults: { min: number; max: number; def: number }) {
  return z
    .strictObject({
      minExpires: z.number().int().min(1).max(86_400).default(defaults.min),
      maxExpires: z.number().int().min(1).max(604_800).default(defaults.max),
      defaultExpires: z.number().int().min(1).max(604_800).default(defaults.def),
    })
    .prefault({})
    .refine((b) => b.minExpires <= b.defaultExpires && b.defaultExpires <= b.maxExpires, {
      message: 'minExpires <= defaultExpires <= maxExpires must hold',
    });
}

const sipAor = z
  .string()
  .regex(/^sips?:[^@\s;?]+@[^\s;?@]+$/i, 'a SIP address of record like sip:anna@example.com');

const user = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash or underscore (1-64 characters)'),
  displayName: z.string().min(1).max(200),
  extension: z
    .union([z.string().regex(/^[0-9A-Za-z*#+._-]{1,32}$/, 'a dialable extension like 1001'), z.number().int().nonnegative()])
    .transform(String)
    .optional(),
  sip: z.array(sipAor).optional(),
  /** BCP 47 language of the person's Teams texts (xml:lang of the PIDF notes), e.g. de-DE. */
  language: z.string().regex(/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/, 'a language tag like en-GB or de').optional(),
});

export const configSchema = z
  .strictObject({
    sip: z
      .strictObject({
        listen: z
          .array(listen)
          .min(1, 'at least one listener')
          .default([
            { transport: 'udp', address: '127.0.0.1', port: 5060 },
            { transport: 'tcp', address: '127.0.0.1', port: 5060 },
          ]),
        /** Our SIP domain: AoRs under it resolve by user part or extension. */
        domain: z.string().regex(/^[A-Za-z0-9.-]+$/, 'a DNS name like sip.example.com').default('presence-gateway.local'),
        /** Other names or addresses that mean us. */
        aliases: z.array(z.string()).default([]),
        maxMessageSize: z.number().int().min(1500).max(1_048_576).default(65_535),
        maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
        /** UDP socket buffers: a 10k-watcher fan-out's answers arrive in one burst. */
        udpBufferBytes: z.number().int().min(65_536).max(268_435_456).default(4_194_304),
        userAgent: z.string().default('presence-gateway'),
        /**
         * The address peers must use to reach us, written in Via and Contact: needed when
         * listening on 0.0.0.0 with several interfaces, or behind NAT / published container ports.
         */
        advertisedHost: z
          .string()
          .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$/, 'a DNS name or IP address like sip.example.com or 203.0.113.10')
          .optional(),
        /**
         * Under overload new SUBSCRIBE/PUBLISH get 503 + Retry-After from a cheap path; refreshes,
         * in-dialog requests and responses go first; shedding is fair across sources (src/sip/ingress.ts).
         */
        overload: z
          .strictObject({
            /** Median event-loop delay over 100 ms, three times in a row, that counts as overload; 0 turns the check off. */
            maxEventLoopLagMs: z.number({ message: 'milliseconds, e.g. 200 (0 = off)' }).int().min(0).max(60_000).default(200),
            /** Oldest queued message waiting longer than this: new requests are shed. */
            queueDelayMs: z.number({ message: 'milliseconds, e.g. 150' }).int().min(1, 'at least 1 ms, e.g. 150').max(10_000, 'at most 10000 ms').default(150),
            /** A new request queued longer than this is answered 503 rather than served late (its client is retransmitting). */
            maxWaitMs: z.number({ message: 'milliseconds, e.g. 1000' }).int().min(10, 'at least 10 ms, e.g. 1000').max(30_000, 'at most 30000 ms').default(1000),
            /** Retry-After base (a random 50-100 % of it; grows with the shedding up to maxRetryAfterSec). */
            retryAfterSec: z.number({ message: 'seconds, e.g. 10' }).int().min(1, 'at least 1 s').max(3600, 'at most 3600 s').default(10),
            maxRetryAfterSec: z.number({ message: 'seconds, e.g. 60' }).int().min(1, 'at least 1 s').max(3600, 'at most 3600 s').default(60),
          })
          .prefault({})
          .superRefine((o, ctx) => {
            if (o.maxRetryAfterSec < o.retryAfterSec) {
              ctx.addIssue({ code: 'custom', path: ['maxRetryAfterSec'], message: `below retryAfterSec (${o.retryAfterSec}); set it to at least that` });
            }
          }),
        /**
         * New out-of-dialog requests per second from each source address that is not a trunk or in
         * sip.access.trusted (in open access mode no source is limited): beyond it, 503 + Retry-After.
         */
        rateLimit: z
          .strictObject({
            enabled: z.boolean({ message: 'true or false' }).default(true),
            ratePerSec: z.number({ message: 'requests per second, e.g. 100' }).positive('more than 0, e.g. 100').max(1_000_000).default(100),
            burst: z.number({ message: 'requests, e.g. 1000' }).int().min(1, 'at least 1, e.g. 1000').max(10_000_000).default(1000),
          })
          .prefault({}),
        /** Who may send requests: trunk addresses, trusted networks, digest users (default: restricted once a trunk or user exists). */
        access: accessSchema,
        /** Output flavour per watcher by User-Agent (Cisco, Polycom, Asterisk-style, plain RFC). */
        watcherProfiles: watcherProfilesSchema,
        /** Connection hygiene of TCP, TLS and WebSocket (security.ts). */
        connections: connectionsSchema,
      })
      .prefault({}),
    /** PBXs and presence servers the gateway watches, publishes to and accepts requests from. */
    trunks: trunksSchema,
    /** Resource lists (RFC 4662): groups served as list URIs. */
    lists: listsSchema,
    /** Where SIP and Graph state survives restarts (SQLite, or Redis shared by several nodes). */
    store: storeConfigSchema,
    /** This node in a cluster of gateways sharing store.redis (node id, heartbeat and lease times). */
    cluster: clusterConfigSchema,
    /** Admin API, diagnostics page and metrics token. Leave out to serve none of them. */
    admin: adminSchema.optional(),
    subscriptions: expiryBounds({ min: 60, max: 3600, def: 3600 }),
    publications: expiryBounds({ min: 60, max: 3600, def: 3600 }),
    http: z
      .strictObject({
        address: z.string().refine((a) => isIP(a) !== 0, { message: 'an IPv4 or IPv6 address to bind, e.g. 0.0.0.0' }).default('127.0.0.1'),
        port: port.default(8080),
        /** Graph delivers webhooks only over https: a certificate here, or a TLS reverse proxy in front. */
        tls: z
          .strictObject({
            certPath: z.string().min(1, 'a PEM certificate file'),
            keyPath: z.string().min(1, 'the PEM private key file of that certificate'),
          })
          .optional(),
      })
      .prefault({}),
    /** Microsoft Teams through Graph: your tenant. Leave out for SIP only. */
    graph: graphConfigSchema.optional(),
    /**
     * The demo: run the built-in Graph simulator in this process and use it as
     * the tenant (no Microsoft 365 needed). Mutually exclusive with graph.
     */
    graphSimulator: z
      .strictObject({
        port: port.default(9443),
        /** Where its CA and address are recorded for the graph-sim command. */
        dir: z.string().optional(),
      })
      .optional(),
    /** How Teams and SIP states map onto each other (defaults: DESIGN.md). */
    mapping: z
      .strictObject({
        /** Which side names the state first when Teams and the PBX both say something. */
        prefer: z.enum(['telephony', 'teams'], { message: 'one of: telephony, teams' }).default('telephony'),
        /** Teams "Presenting" shown to SIP watchers as on the phone (default) or as DND. */
        presenting: z.enum(['on-the-phone', 'dnd'], { message: 'one of: on-the-phone, dnd' }).default('on-the-phone'),
        /** Per Teams activity or availability (case-insensitive): what SIP watchers see instead of the default. */
        teamsToSip: z
          .record(
            z.string().regex(/^[A-Za-z]+$/, 'a Teams activity or availability name like InAMeeting'),
            z.strictObject({
              activities: z.array(z.string().regex(/^[a-z-]+$/, 'an RPID activity like busy, away, on-the-phone, meeting')),
              dnd: z.boolean().optional(),
              call: z.boolean().optional(),
              note: z.string().max(200).optional(),
            }),
          )
          .default({}),
        /** How long a Teams reading equal to what the gateway itself set is taken for its own echo. */
        echoWindowSec: z.number().int().min(0).max(600).default(60),
        /** Source priority per group of people (first wins), instead of `prefer` for its members. */
        groups: z
          .array(
            z.strictObject({
              name: z.string().min(1, 'a name for the group'),
              members: z.array(z.string().min(1)).min(1, 'the ids of users in the group'),
              prefer: z
                .array(z.string().regex(/^(teams|publish|telephony|trunk:[A-Za-z0-9._-]+)$/, 'teams, publish, telephony (any trunk) or trunk:<name>'))
                .min(1, 'the sources in order, first wins, e.g. [trunk:pbx1, teams, publish]'),
            }),
          )
          .default([]),
      })
      .prefault({}),
    /** Where the gateway keeps state between runs (Graph subscription ids). */
    stateDir: z.string().min(1).default('data'),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** The security log (at warn whatever the level above; security.ts). */
        security: securityLogSchema,
      })
      .prefault({}),
    users: z.array(user).default([]),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.graph !== undefined && cfg.graphSimulator !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['graphSimulator'],
        message: 'graphSimulator runs the demo tenant; remove it to use the tenant in graph',
      });
    }
    // the demo's published token guards nothing once the admin API is reachable from elsewhere
    const loopbackHttp = cfg.http.address.startsWith('127.') || cfg.http.address === '::1';
    for (const key of ['token', 'metricsToken'] as const) {
      if (cfg.admin?.[key] === DEMO_ADMIN_TOKEN && !loopbackHttp) {
        ctx.addIssue({
          code: 'custom',
          path: ['admin', key],
          message: `the demo token is public and only allowed with http.address on loopback; set ADMIN_TOKEN to one made with \`openssl rand -hex 24\` or bind http.address to 127.0.0.1`,
        });
      }
    }
    const ids = new Map<string, number>();
    cfg.users.forEach((u, i) => {
      const first = ids.get(u.id);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['users', i, 'id'], message: `duplicate id "${u.id}" (also users[${first}])` });
      } else ids.set(u.id, i);
    });
    const userIds = new Set(cfg.users.map((u) => u.id));
    for (const message of unknownTrunkUsers(cfg.trunks, userIds)) {
      const m = /^trunks\[(\d+)\]\.users\[(\d+)\]: (.*)$/.exec(message);
      if (m !== null) ctx.addIssue({ code: 'custom', path: ['trunks', Number(m[1]), 'users', Number(m[2])], message: m[3]! });
      else ctx.addIssue({ code: 'custom', path: ['trunks'], message });
    }
    const grouped = new Map<string, string>();
    cfg.mapping.groups.forEach((g, i) => {
      g.members.forEach((m, j) => {
        const path = ['mapping', 'groups', i, 'members', j];
        if (!userIds.has(m)) ctx.addIssue({ code: 'custom', path, message: `"${m}" is not the id of any entry in users` });
        const other = grouped.get(m);
        if (other !== undefined) ctx.addIssue({ code: 'custom', path, message: `"${m}" is already in group ${other}; a person takes one group's priority` });
        else grouped.set(m, g.name);
      });
    });
    for (const issue of listMemberIssues(cfg.lists, userIds)) {
      ctx.addIssue({ code: 'custom', path: ['lists', ...issue.path], message: issue.message });
    }
    const exts = new Map<string, number>();
    cfg.users.forEach((u, i) => {
      if (u.extension === undefined) return;
      const first = exts.get(u.extension);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['users', i, 'extension'],
          message: `extension ${u.extension} is already users[${first}]'s`,
        });
      } else exts.set(u.extension, i);
    });
  });

export type GatewayConfig = z.output<typeof configSchema>;
export type UserConfig = GatewayConfig['users'][number];
