import { isGuid, isoGraph, newGuid } from './ids.js';
import { TEAMS_SERVICE_PLAN_ID, type AssignedPlan, type SimUser, type SimUserInput } from './model.js';

/** One directory record; removed users stay as tombstones so /users/delta can report them. */
export interface UserRecord {
  user: SimUser;
  /** insertion order, immutable: the paging cursor */
  order: number;
  /** global change counter at the record's last change: the delta cursor */
  version: number;
  removed: boolean;
  /** removal was permanent (delta says "deleted", else "changed") */
  permanent: boolean;
}

export class DirectoryError extends Error {}

/** The tenant's users, ordered by insertion, with a change counter for delta queries. */
export class UserDirectory {
  private readonly byId = new Map<string, UserRecord>();
  private readonly byUpn = new Map<string, UserRecord>();
  private readonly records: UserRecord[] = [];
  private versionCounter = 0;
  private orderCounter = 0;

  constructor(private readonly now: () => number) {}

  /** The current change counter; a delta token remembers it. */
  get version(): number {
    return this.versionCounter;
  }

  add(input: SimUserInput): SimUser {
    const id = (input.id ?? newGuid()).toLowerCase();
    if (!isGuid(id)) throw new DirectoryError(`user id '${id}' is not a GUID`);
    const upn = input.userPrincipalName.trim();
    if (!/^[^@\s]+@[^@\s]+$/.test(upn)) throw new DirectoryError(`userPrincipalName '${upn}' is not user@domain`);
    const existing = this.byId.get(id);
    if (existing && !existing.removed) throw new DirectoryError(`user ${id} already exists`);
    const other = this.byUpn.get(upn.toLowerCase());
    if (other && !other.removed && other.user.id !== id) throw new DirectoryError(`userPrincipalName ${upn} already exists`);
    const plans: AssignedPlan[] =
      input.teams === false
        ? []
        : [
            {
              assignedDateTime: isoGraph(this.now()).replace(/\.\d+Z$/, 'Z'),
              capabilityStatus: 'Enabled',
              service: 'TeamspaceAPI',
              servicePlanId: TEAMS_SERVICE_PLAN_ID,
            },
          ];
    const nick = input.mailNickname ?? upn.split('@')[0] ?? upn;
    const user: SimUser = {
      id,
      displayName: input.displayName,
      userPrincipalName: upn,
      mail: input.mail === undefined ? upn : input.mail,
      mailNickname: nick,
      givenName: input.givenName ?? null,
      surname: input.surname ?? null,
      jobTitle: input.jobTitle ?? null,
      mobilePhone: input.mobilePhone ?? null,
      officeLocation: input.officeLocation ?? null,
      preferredLanguage: input.preferredLanguage ?? null,
      businessPhones: input.businessPhones ?? [],
      accountEnabled: input.accountEnabled ?? true,
      assignedPlans: plans,
    };
    const record: UserRecord = existing ?? { user, order: this.orderCounter++, version: 0, removed: false, permanent: false };
    if (existing) {
      if (existing.user.userPrincipalName.toLowerCase() !== upn.toLowerCase()) {
        this.byUpn.delete(existing.user.userPrincipalName.toLowerCase());
      }
      existing.user = user;
      existing.removed = false;
      existing.permanent = false;
    } else {
      this.records.push(record);
      this.byId.set(id, record);
    }
    record.version = ++this.versionCounter;
    this.byUpn.set(upn.toLowerCase(), record);
    return user;
  }

  /** Change some properties of a user (counts as a change for delta). */
  update(idOrUpn: string, patch: Partial<Omit<SimUserInput, 'id'>>): SimUser {
    const record = this.record(idOrUpn);
    if (!record) throw new DirectoryError(`no user ${idOrUpn}`);
    const u = record.user;
    if (patch.userPrincipalName !== undefined && patch.userPrincipalName.toLowerCase() !== u.userPrincipalName.toLowerCase()) {
      if (this.get(patch.userPrincipalName)) throw new DirectoryError(`userPrincipalName ${patch.userPrincipalName} already exists`);
      this.byUpn.delete(u.userPrincipalName.toLowerCase());
      u.userPrincipalName = patch.userPrincipalName;
      this.byUpn.set(u.userPrincipalName.toLowerCase(), record);
    }
    if (patch.displayName !== undefined) u.displayName = patch.displayName;
    if (patch.mail !== undefined) u.mail = patch.mail;
    if (patch.mailNickname !== undefined) u.mailNickname = patch.mailNickname;
    if (patch.givenName !== undefined) u.givenName = patch.givenName;
    if (patch.surname !== undefined) u.surname = patch.surname;
    if (patch.jobTitle !== undefined) u.jobTitle = patch.jobTitle;
    if (patch.mobilePhone !== undefined) u.mobilePhone = patch.mobilePhone;
    if (patch.officeLocation !== undefined) u.officeLocation = patch.officeLocation;
    if (patch.preferredLanguage !== undefined) u.preferredLanguage = patch.preferredLanguage;
    if (patch.businessPhones !== undefined) u.businessPhones = patch.businessPhones;
    if (patch.accountEnabled !== undefined) u.accountEnabled = patch.accountEnabled;
    if (patch.teams !== undefined) this.setTeamsPlan(u, patch.teams);
    record.version = ++this.versionCounter;
    return u;
  }

  private setTeamsPlan(user: SimUser, enabled: boolean): void {
    const plan = user.assignedPlans.find((p) => p.servicePlanId === TEAMS_SERVICE_PLAN_ID);
    if (plan) {
      plan.capabilityStatus = enabled ? 'Enabled' : 'Deleted';
    } else if (enabled) {
      user.assignedPlans.push({
        assignedDateTime: isoGraph(this.now()).replace(/\.\d+Z$/, 'Z'),
        capabilityStatus: 'Enabled',
        service: 'TeamspaceAPI',
        servicePlanId: TEAMS_SERVICE_PLAN_ID,
      });
    }
  }

  /** Remove a user; returns false when there was none. */
  remove(idOrUpn: string, permanent = false): boolean {
    const record = this.record(idOrUpn);
    if (!record) return false;
    record.removed = true;
    record.permanent = permanent;
    record.version = ++this.versionCounter;
    return true;
  }

  /** A live user by object id or UPN (case-insensitive). */
  get(idOrUpn: string): SimUser | undefined {
    return this.record(idOrUpn)?.user;
  }

  /**
   * The live user whose mailbox has this SMTP address (user.mail,
   * case-insensitive); a user without mail has no mailbox. A UPN that differs
   * from mail names no mailbox (this model keeps no proxyAddresses).
   */
  byMail(address: string): SimUser | undefined {
    const key = address.toLowerCase();
    for (const record of this.live()) if (record.user.mail?.toLowerCase() === key) return record.user;
    return undefined;
  }

  private record(idOrUpn: string): UserRecord | undefined {
    const key = idOrUpn.toLowerCase();
    const record = this.byId.get(key) ?? this.byUpn.get(key);
    return record && !record.removed ? record : undefined;
  }

  /** Live users in insertion order. */
  *live(): IterableIterator<UserRecord> {
    for (const record of this.records) if (!record.removed) yield record;
  }

  /** Records (tombstones included) in insertion order. */
  all(): readonly UserRecord[] {
    return this.records;
  }

  get size(): number {
    let n = 0;
    for (const r of this.records) if (!r.removed) n++;
    return n;
  }
}
