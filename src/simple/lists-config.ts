/**
 * Resource lists (RFC 4662) served by the gateway: groups of configured
 * people (a department, an attendant's console) under one list URI.
 *
 *   lists:
 *     batchMs: 200
 *     groups:
 *       - name: sales
 *         uri: sip:sales@gateway.example.com
 *         displayName: Sales
 *         members: [anna, bert]
 *     clientLists: { enabled: true, maxResources: 200 }
 */
import { z } from 'zod';

const listUri = z
  .string()
  .regex(/^sips?:[^@\s;?<>"]+@[^\s;?@<>"]+$/i, 'a SIP URI like sip:sales@gateway.example.com');

const memberId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a user id from users[] (letters, digits, dot, dash or underscore)');

export const listGroupSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lower-case letters, digits, dot, dash or underscore (1-64 characters)'),
  uri: listUri,
  displayName: z.string().min(1).max(200).optional(),
  members: z.array(memberId).max(1000, 'at most 1000 members in one list'),
});

export const listsSchema = z
  .strictObject({
    /** Member changes within this window go out as one partial NOTIFY (RFC 4662 §4.8). */
    batchMs: z.number().int().min(0).max(60_000).default(200),
    groups: z.array(listGroupSchema).default([]),
    /** Lists a console sends in its SUBSCRIBE (RFC 5367 recipient-list-subscribe); absent: CLIENT_LISTS_DEFAULTS. */
    clientLists: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** More resources than this in one client list: 413. */
        maxResources: z.number().int('a whole number from 1 to 1000').min(1, 'from 1 to 1000').max(1000, 'from 1 to 1000').default(200),
      })
      .optional(),
  })
  .prefault({})
  .superRefine((lists, ctx) => {
    const names = new Map<string, number>();
    const uris = new Map<string, number>();
    lists.groups.forEach((g, i) => {
      const n = names.get(g.name);
      if (n !== undefined) ctx.addIssue({ code: 'custom', path: ['groups', i, 'name'], message: `duplicate list name "${g.name}" (also groups[${n}])` });
      else names.set(g.name, i);
      const key = g.uri.toLowerCase();
      const u = uris.get(key);
      if (u !== undefined) ctx.addIssue({ code: 'custom', path: ['groups', i, 'uri'], message: `duplicate list URI ${g.uri} (also groups[${u}])` });
      else uris.set(key, i);
      const seen = new Set<string>();
      g.members.forEach((m, j) => {
        if (seen.has(m)) ctx.addIssue({ code: 'custom', path: ['groups', i, 'members', j], message: `"${m}" is listed twice` });
        seen.add(m);
      });
    });
  });

export type ListsConfig = z.output<typeof listsSchema>;
export type ClientListsConfig = NonNullable<ListsConfig['clientLists']>;
/** Client lists when lists.clientLists is not configured: on, at most 200 resources each. */
export const CLIENT_LISTS_DEFAULTS: ClientListsConfig = Object.freeze({ enabled: true, maxResources: 200 });
export type ListGroupConfig = ListsConfig['groups'][number];

/**
 * Cross-section checks for the top-level schema's superRefine: every member
 * must be a configured user id. Returns issues with paths relative to `lists`.
 */
export function listMemberIssues(lists: ListsConfig, userIds: ReadonlySet<string>): Array<{ path: (string | number)[]; message: string }> {
  const out: Array<{ path: (string | number)[]; message: string }> = [];
  lists.groups.forEach((g, i) => {
    g.members.forEach((m, j) => {
      if (!userIds.has(m)) out.push({ path: ['groups', i, 'members', j], message: `"${m}" is not the id of any entry in users` });
    });
  });
  return out;
}
