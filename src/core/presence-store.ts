import type { Directory } from './directory.js';
import { isEcho, sameTarget, teamsTargetOf, type TeamsToSipTable } from './mapping.js';
import type { PersonState, PresenceView, RichState, TeamsState, TeamsTarget, TelephonyState } from './person-state.js';
import { deriveView, sameContent, type ViewOptions } from './view.js';

export type ChangeListener = (personId: string, view: PresenceView) => void;
export type TeamsTargetListener = (personId: string, target: TeamsTarget) => void;

export interface PresenceStoreOptions {
  now?: () => number;
  teamsToSip?: TeamsToSipTable;
  /** Which source names the state first when Teams and the PBX disagree (default the PBX line). */
  prefer?: 'telephony' | 'teams';
  /**
   * How long after the gateway cleared its Teams session a Teams reading equal
   * to what it had set is still taken for its own echo (Graph delivers
   * presence within a minute at most).
   */
  echoWindowMs?: number;
}

interface Entry {
  state: PersonState;
  view: PresenceView;
  target: TeamsTarget;
  /** The last 'set' target and when it stopped being the target (echo suppression). */
  lastSet?: TeamsTarget;
  lastSetEndedAt?: number;
}

const CLEAR: TeamsTarget = { kind: 'clear' };

/**
 * The canonical state of every person, with each person's derived view and
 * Teams target kept current. Writers set one source at a time; listeners hear
 * of a change only when what they care about differs, once, synchronously
 * and in order.
 */
export class PresenceStore {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly targetListeners = new Set<TeamsTargetListener>();
  private readonly now: () => number;
  private readonly echoWindowMs: number;
  private readonly viewOptions: ViewOptions;

  constructor(
    private readonly directory: Directory,
    options: PresenceStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.echoWindowMs = options.echoWindowMs ?? 60_000;
    this.viewOptions = {};
    if (options.teamsToSip !== undefined) this.viewOptions.teamsToSip = options.teamsToSip;
    if (options.prefer !== undefined) this.viewOptions.prefer = options.prefer;
  }

  private entry(personId: string): Entry {
    let e = this.entries.get(personId);
    if (e === undefined) {
      if (this.directory.get(personId) === undefined) throw new Error(`unknown person "${personId}"`);
      const state: PersonState = {};
      e = {
        state,
        view: { personId, revision: 0, changedAt: this.now(), ...deriveView(personId, state, this.viewOptions) },
        target: CLEAR,
      };
      this.entries.set(personId, e);
    }
    return e;
  }

  view(personId: string): PresenceView {
    return this.entry(personId).view;
  }

  state(personId: string): PersonState {
    return this.entry(personId).state;
  }

  teamsTarget(personId: string): TeamsTarget {
    return this.entry(personId).target;
  }

  setSip(personId: string, rich: RichState | undefined): void {
    this.update(personId, (s) => {
      if (rich === undefined) delete s.sip;
      else s.sip = rich;
    });
  }

  setTelephony(personId: string, telephony: TelephonyState | undefined): void {
    this.update(personId, (s) => {
      if (telephony === undefined) delete s.telephony;
      else s.telephony = telephony;
    });
  }

  setTeams(personId: string, teams: TeamsState | undefined): void {
    this.update(personId, (s) => {
      if (teams === undefined) delete s.teams;
      else s.teams = teams;
    });
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onTeamsTarget(listener: TeamsTargetListener): () => void {
    this.targetListeners.add(listener);
    return () => this.targetListeners.delete(listener);
  }

  /** Whether the Teams reading is the gateway's own session read back. */
  private teamsIsEcho(e: Entry): boolean {
    const teams = e.state.teams;
    if (teams === undefined) return false;
    if (isEcho(teams, e.target)) return true;
    return (
      e.lastSet !== undefined &&
      e.lastSetEndedAt !== undefined &&
      this.now() - e.lastSetEndedAt < this.echoWindowMs &&
      isEcho(teams, e.lastSet)
    );
  }

  private update(personId: string, mutate: (s: PersonState) => void): void {
    const e = this.entry(personId);
    mutate(e.state);

    const target = teamsTargetOf(e.state);
    const targetChanged = !sameTarget(target, e.target);
    if (targetChanged) {
      if (e.target.kind === 'set') {
        e.lastSet = e.target;
        e.lastSetEndedAt = this.now();
      }
      e.target = target;
    }

    const content = deriveView(personId, e.state, { ...this.viewOptions, teamsIsEcho: this.teamsIsEcho(e) });
    const { personId: _p, revision, changedAt: _c, ...previous } = e.view;
    if (!sameContent(previous, content)) {
      e.view = { personId, revision: revision + 1, changedAt: this.now(), ...content };
      for (const l of this.listeners) l(personId, e.view);
    }
    if (targetChanged) for (const l of this.targetListeners) l(personId, target);
  }
}
