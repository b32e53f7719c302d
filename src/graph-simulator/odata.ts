import { badRequest } from './graph-errors.js';
import { isGuid } from './ids.js';
import type { SimUser } from './model.js';

/** Properties of microsoft.graph.user the simulator stores. */
export const USER_PROPERTIES = [
  'id',
  'displayName',
  'userPrincipalName',
  'mail',
  'mailNickname',
  'givenName',
  'surname',
  'jobTitle',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'businessPhones',
  'accountEnabled',
  'assignedPlans',
] as const;

/** Real user properties the simulator does not keep: selectable, always null. */
const NULL_USER_PROPERTIES = [
  'department',
  'employeeId',
  'companyName',
  'city',
  'country',
  'usageLocation',
  'userType',
  'faxNumber',
  'otherMails',
  'proxyAddresses',
  'onPremisesSamAccountName',
  'onPremisesExtensionAttributes',
  'onPremisesSyncEnabled',
  'createdDateTime',
];

/** What GET /users returns without $select. */
export const DEFAULT_USER_SELECT = [
  'businessPhones',
  'displayName',
  'givenName',
  'jobTitle',
  'mail',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'surname',
  'userPrincipalName',
  'id',
];

const CANONICAL = new Map<string, string>([...USER_PROPERTIES, ...NULL_USER_PROPERTIES].map((p) => [p.toLowerCase(), p]));

/** $select: canonical property names; 400 on an unknown property (as Graph answers). */
export function parseUserSelect(raw: unknown): string[] | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string') throw badRequest('Invalid $select.', 'Request_BadRequest');
  const out: string[] = [];
  for (const part of raw.split(',')) {
    const name = part.trim();
    if (name === '') continue;
    const canonical = CANONICAL.get(name.toLowerCase());
    if (!canonical) throw badRequest(`Could not find a property named '${name}' on type 'microsoft.graph.user'.`, 'Request_BadRequest');
    if (!out.includes(canonical)) out.push(canonical);
  }
  return out.length > 0 ? out : undefined;
}

export function projectUser(user: SimUser, select: readonly string[] | undefined): Record<string, unknown> {
  const props = select ?? DEFAULT_USER_SELECT;
  const source = user as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const p of props) out[p] = p in source ? source[p] : null;
  return out;
}

/** $top for a collection: 1..max inclusive. */
export function parseTop(raw: unknown, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw badRequest(`Invalid page size specified: '${String(raw)}'. Must be between 1 and ${max} inclusive.`, 'Request_BadRequest');
  }
  return n;
}

export interface UserFilter {
  test(user: SimUser): boolean;
  /** needs ConsistencyLevel: eventual and $count=true (an advanced query) */
  advanced: boolean;
}

const unsupported = (text: string) => badRequest(`Unsupported or invalid query filter clause specified: '${text}'.`, 'Request_UnsupportedQuery');

/** Split on a top-level keyword (outside quotes and parentheses). */
function splitTopLevel(text: string, keyword: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  const lower = text.toLowerCase();
  const kw = ` ${keyword} `;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'") {
      // '' is an escaped quote inside a literal
      if (quoted && text[i + 1] === "'") {
        i++;
        continue;
      }
      quoted = !quoted;
    } else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')') depth--;
    else if (!quoted && depth === 0 && lower.startsWith(kw, i)) {
      parts.push(text.slice(start, i));
      start = i + kw.length;
      i += kw.length - 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

/** A literal: 'quoted string' (with '' escapes), true/false, a bare GUID, or a number. */
function literal(text: string): string | boolean | number {
  const t = text.trim();
  if (t.startsWith("'") && t.endsWith("'") && t.length >= 2) return t.slice(1, -1).replace(/''/g, "'");
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (isGuid(t)) return t;
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  throw unsupported(text);
}

function listLiterals(text: string): Array<string | boolean | number> {
  const t = text.trim();
  if (!t.startsWith('(') || !t.endsWith(')')) throw unsupported(text);
  const inner = t.slice(1, -1).trim();
  if (inner === '') return [];
  const out: Array<string | boolean | number> = [];
  let i = 0;
  while (i < inner.length) {
    while (inner[i] === ' ' || inner[i] === ',') i++;
    if (i >= inner.length) break;
    if (inner[i] === "'") {
      let j = i + 1;
      for (;;) {
        if (j >= inner.length) throw unsupported(text);
        if (inner[j] === "'" && inner[j + 1] === "'") j += 2;
        else if (inner[j] === "'") break;
        else j++;
      }
      out.push(literal(inner.slice(i, j + 1)));
      i = j + 1;
    } else {
      let j = i;
      while (j < inner.length && inner[j] !== ',') j++;
      out.push(literal(inner.slice(i, j)));
      i = j;
    }
  }
  return out;
}

function propertyValue(user: SimUser, name: string): unknown {
  const canonical = CANONICAL.get(name.toLowerCase());
  if (!canonical) throw badRequest(`Could not find a property named '${name}' on type 'microsoft.graph.user'.`, 'Request_BadRequest');
  return (user as unknown as Record<string, unknown>)[canonical] ?? null;
}

function equalsValue(actual: unknown, expected: string | boolean | number): boolean {
  if (typeof actual === 'string' && typeof expected === 'string') return actual.toLowerCase() === expected.toLowerCase();
  return actual === expected;
}

const ANY_RE = /^assignedPlans\/any\(\s*(\w+)\s*:\s*(.+)\)$/is;

function clause(text: string): UserFilter {
  const t = text.trim();
  if (t.startsWith('(') && t.endsWith(')')) return parseUserFilter(t.slice(1, -1));
  const any = ANY_RE.exec(t);
  if (any) {
    const v = any[1] as string;
    const conditions = splitTopLevel(any[2] as string, 'and').map((c) => {
      const m = new RegExp(`^${v}/(servicePlanId|capabilityStatus|service)\\s+eq\\s+(.+)$`, 'i').exec(c.trim());
      if (!m) throw unsupported(text);
      const prop = (m[1] as string).toLowerCase();
      const value = literal(m[2] as string);
      return (plan: Record<string, unknown>): boolean => {
        const key = prop === 'serviceplanid' ? 'servicePlanId' : prop === 'capabilitystatus' ? 'capabilityStatus' : 'service';
        return equalsValue(plan[key], value);
      };
    });
    return {
      advanced: true,
      test: (user) => user.assignedPlans.some((plan) => conditions.every((c) => c(plan as unknown as Record<string, unknown>))),
    };
  }
  let m = /^startswith\(\s*(\w+)\s*,\s*(.+)\)$/i.exec(t);
  if (m) {
    const prop = m[1] as string;
    const value = literal(m[2] as string);
    if (typeof value !== 'string') throw unsupported(text);
    return {
      advanced: false,
      test: (user) => {
        const actual = propertyValue(user, prop);
        return typeof actual === 'string' && actual.toLowerCase().startsWith(value.toLowerCase());
      },
    };
  }
  m = /^(\w+)\s+eq\s+(.+)$/i.exec(t);
  if (m) {
    const prop = m[1] as string;
    const value = literal(m[2] as string);
    return { advanced: false, test: (user) => equalsValue(propertyValue(user, prop), value) };
  }
  m = /^(\w+)\s+in\s+(\(.*\))$/i.exec(t);
  if (m) {
    const prop = m[1] as string;
    const values = listLiterals(m[2] as string);
    return { advanced: false, test: (user) => values.some((v) => equalsValue(propertyValue(user, prop), v)) };
  }
  m = /^(\w+)\s+ne\s+(.+)$/i.exec(t);
  if (m) {
    const prop = m[1] as string;
    const value = literal(m[2] as string);
    return { advanced: true, test: (user) => !equalsValue(propertyValue(user, prop), value) };
  }
  throw unsupported(text);
}

/** The $filter subset the simulator understands for users; anything else is 400 Request_UnsupportedQuery. */
export function parseUserFilter(raw: string): UserFilter {
  const clauses = splitTopLevel(raw.trim(), 'and').map(clause);
  return {
    advanced: clauses.some((c) => c.advanced),
    test: (user) => clauses.every((c) => c.test(user)),
  };
}

/** The ids in a `/communications/presences?$filter=id in ('a','b')` subscription resource. */
export function parseIdInFilter(raw: string): string[] | undefined {
  const m = /^\s*id\s+in\s+(\(.*\))\s*$/is.exec(raw);
  if (!m) return undefined;
  try {
    return listLiterals(m[1] as string).map((v) => String(v));
  } catch {
    return undefined;
  }
}
