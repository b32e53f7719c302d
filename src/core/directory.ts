import { isIP } from 'node:net';

/** A person known on the SIP side (and later the Teams side). */
export interface Person {
  id: string;
  displayName: string;
  extension?: string;
  /** Normalized "sip:user@host" AoRs, host lower-case. */
  sipAors: string[];
  /** mail: the user's primary SMTP address (Graph user.mail), when they have a mailbox. */
  teams?: { userId?: string; upn?: string; mail?: string };
  /** BCP 47 language of the person's own texts (Teams status and out-of-office messages), when known. */
  language?: string;
}

/** Lower-case host, strip brackets' case issues; the user part keeps its case (RFC 3261 §19.1.4). */
export function normalizeAor(scheme: string, user: string | undefined, host: string): string {
  const h = host.toLowerCase();
  return user === undefined ? `${scheme.toLowerCase()}:${h}` : `${scheme.toLowerCase()}:${user}@${h}`;
}

function splitAor(aor: string): { user?: string; host: string } {
  const colon = aor.indexOf(':');
  const rest = aor.slice(colon + 1);
  const at = rest.lastIndexOf('@');
  return at < 0 ? { host: rest.toLowerCase() } : { user: rest.slice(0, at), host: rest.slice(at + 1).toLowerCase() };
}

/**
 * Who is who. Lookups are by map, never by scan: the notifier resolves a
 * target on every SUBSCRIBE.
 */
export class Directory {
  private readonly byId = new Map<string, Person>();
  private readonly byAor = new Map<string, Person>();
  /** user part (AoR user, extension, id) → person */
  private readonly byUser = new Map<string, Person>();
  private readonly byTeamsId = new Map<string, Person>();
  private readonly domains: Set<string>;
  private readonly persons: Person[];

  constructor(persons: Person[], options: { domains: string[] }) {
    this.domains = new Set(options.domains.map((d) => d.toLowerCase()));
    this.persons = [...persons];
    for (const p of persons) {
      if (this.byId.has(p.id)) throw new Error(`duplicate person id "${p.id}"`);
      this.byId.set(p.id, p);
      for (const aor of p.sipAors) {
        const { user, host } = splitAor(aor);
        this.byAor.set(`${user ?? ''}@${host}`, p);
        if (user !== undefined) this.claimUser(user, p);
      }
      if (p.extension !== undefined) this.claimUser(p.extension, p);
      this.claimUser(p.id, p);
      if (p.teams?.userId !== undefined) this.byTeamsId.set(p.teams.userId.toLowerCase(), p);
    }
  }

  /** Record who a person is in Teams (directory sync or the static mapping table). */
  setTeamsIdentity(personId: string, teams: { userId: string; upn?: string; mail?: string }): void {
    const p = this.byId.get(personId);
    if (p === undefined) throw new Error(`unknown person "${personId}"`);
    const key = teams.userId.toLowerCase();
    const owner = this.byTeamsId.get(key);
    if (owner !== undefined && owner !== p) throw new Error(`Teams user ${teams.userId} is already mapped to "${owner.id}"`);
    if (p.teams?.userId !== undefined) this.byTeamsId.delete(p.teams.userId.toLowerCase());
    p.teams = { ...teams };
    this.byTeamsId.set(key, p);
  }

  /** Forget who a person is in Teams (the user left the tenant or the mapping moved). */
  clearTeamsIdentity(personId: string): void {
    const p = this.byId.get(personId);
    if (p?.teams?.userId === undefined) return;
    this.byTeamsId.delete(p.teams.userId.toLowerCase());
    delete p.teams;
  }

  findByTeamsUserId(userId: string): Person | undefined {
    return this.byTeamsId.get(userId.toLowerCase());
  }

  private claimUser(user: string, p: Person): void {
    const owner = this.byUser.get(user);
    if (owner !== undefined && owner !== p) throw new Error(`"${user}" names both "${owner.id}" and "${p.id}"`);
    this.byUser.set(user, p);
  }

  get(id: string): Person | undefined {
    return this.byId.get(id);
  }

  all(): readonly Person[] {
    return this.persons;
  }

  /** True for one of our domains or a bare IP address (phones dial sip:1001@10.0.0.5). */
  isLocalHost(host: string): boolean {
    const h = host.toLowerCase();
    return this.domains.has(h) || isIP(h.replace(/^\[|\]$/g, '')) !== 0;
  }

  findBySip(user: string | undefined, host: string): Person | undefined {
    const h = host.toLowerCase();
    const exact = this.byAor.get(`${user ?? ''}@${h}`);
    if (exact !== undefined) return exact;
    if (user === undefined || !this.isLocalHost(h)) return undefined;
    return this.byUser.get(user);
  }

  primaryAor(id: string): string | undefined {
    return this.byId.get(id)?.sipAors[0];
  }
}
