import type { Directory } from './directory.js';
import { composeRich, composeTelephony } from './compose.js';
import { FeederLiveness } from './feeder-liveness.js';
import type { HubInput } from './hub-input.js';
import { isEcho, sameTarget, sipMeaningOf, teamsTargetOf, type TeamsToSipTable } from './mapping.js';
import type { CalendarState, PersonState, PresenceView, RichState, TeamsState, TeamsTarget, TelephonyState } from './person-state.js';
import { PUBLISH_SOURCE } from './publish-source.js';
import { deriveView, sameContent, type ViewOptions } from './view.js';
import { systemClock, type Clock } from '../util/clock.js';

export type ChangeListener = (personId: string, view: PresenceView) => void;
export type TeamsTargetListener = (personId: string, target: TeamsTarget) => void;
/** A local writer's call, as data (hub-input.ts). */
export type InputListener = (input: HubInput) => void;

export interface PresenceHubOptions {
  clock?: Pick<Clock, 'now'>;
  teamsToSip?: TeamsToSipTable;
  /** Which source names the state first when Teams and the PBX disagree (default the PBX line). */
  prefer?: 'telephony' | 'teams';
  /**
   * How long after the gateway cleared its Teams session a Teams reading equal
   * to what it had set is still taken for its own echo (Graph delivers
   * presence within a minute at most).
   */
  echoWindowMs?: number;
  /**
   * Teams pairs the gateway itself brings about while a call target is set,
   * besides the session pair: DoNotDisturb/DoNotDisturb when the Graph writer
   * holds the preferred presence for the call (busy-on-busy). Read back, they
   * are its own echo too, not the person's DND.
   */
  callEchoes?: ReadonlyArray<{ availability: string; activity: string }>;
  /** The source priority of a person's group (config mapping.groups), undefined: the global rule. */
  sourcePriority?: (personId: string) => readonly string[] | undefined;
  /** IANA zone meeting end times are shown in (graph.calendar.timeZone); default UTC. */
  timeZone?: string;
}

interface Entry {
  state: PersonState;
  view: PresenceView;
  target: TeamsTarget;
  /** The last 'set' target and when it stopped being the target (echo suppression). */
  lastSet?: TeamsTarget;
  lastSetEndedAt?: number;
  /** Telephony and rich state by feeder (publications, each trunk), composed into state. */
  telephonySources?: Map<string, TelephonyState>;
  sipSources?: Map<string, RichState>;
  /** The Teams DND reading a phone's DND off overruled (shown without DND until Teams says something else). */
  teamsDndOverruled?: { availability: string; activity: string };
  /** Set for one update: Teams DND went off by the person's own choice (see setTeams). */
  personChoseTeams?: true;
}

/** The telephony feeder of a desk phone's own DND key (as-feature-event). */
export const FEATURE_KEY_SOURCE = 'feature-key';

/** The feeder a caller names when it names none (the PUBLISH compositor of a single node). */
export const DEFAULT_SOURCE = PUBLISH_SOURCE;

function putSource<T>(map: Map<string, T> | undefined, source: string, value: T | undefined): Map<string, T> | undefined {
  if (value === undefined) {
    map?.delete(source);
    return map;
  }
  const m = map ?? new Map<string, T>();
  m.set(source, value);
  return m;
}

const CLEAR: TeamsTarget = { kind: 'clear' };

/**
 * The canonical state of every person, with each person's derived view and
 * Teams target kept current. Writers set one source at a time; listeners hear
 * of a change only when what they care about differs, once, synchronously
 * and in order.
 */
export class PresenceHub {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly targetListeners = new Set<TeamsTargetListener>();
  private readonly inputListeners = new Set<InputListener>();
  private readonly clock: Pick<Clock, 'now'>;
  private readonly echoWindowMs: number;
  private readonly callEchoes: ReadonlyArray<{ availability: string; activity: string }>;
  private readonly viewOptions: ViewOptions;
  private readonly liveness = new FeederLiveness();
  private readonly priorityOf: ((personId: string) => readonly string[] | undefined) | undefined;

  constructor(
    private readonly directory: Directory,
    options: PresenceHubOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.echoWindowMs = options.echoWindowMs ?? 60_000;
    this.callEchoes = options.callEchoes ?? [];
    this.viewOptions = {};
    if (options.teamsToSip !== undefined) this.viewOptions.teamsToSip = options.teamsToSip;
    if (options.prefer !== undefined) this.viewOptions.prefer = options.prefer;
    this.priorityOf = options.sourcePriority;
    if (options.timeZone !== undefined) this.viewOptions.timeZone = options.timeZone;
  }

  /** The source order that decides a person's view: their group's, else the global one (diagnostics). */
  sourcePriority(personId: string): readonly string[] {
    return this.priorityOf?.(personId) ?? (this.viewOptions.prefer === 'teams' ? ['teams', 'telephony', 'publish'] : ['telephony', 'teams', 'publish']);
  }

  private optionsFor(personId: string): ViewOptions {
    const order = this.priorityOf?.(personId);
    const lang = this.directory.get(personId)?.language;
    const o: ViewOptions = { ...this.viewOptions, now: this.clock.now() };
    if (order !== undefined) o.order = order;
    if (lang !== undefined) o.lang = lang;
    return o;
  }

  private entry(personId: string): Entry {
    let e = this.entries.get(personId);
    if (e === undefined) {
      if (this.directory.get(personId) === undefined) throw new Error(`unknown person "${personId}"`);
      const state: PersonState = {};
      e = {
        state,
        view: { personId, revision: 0, changedAt: this.clock.now(), ...deriveView(personId, state, this.optionsFor(personId)) },
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

  /**
   * Rich SIP presence from one feeder (`source`: 'publish' for the PUBLISH
   * compositor, `trunk:<name>` for an upstream subscription); the feeders of
   * a person are composed (compose.ts).
   */
  setSip(personId: string, rich: RichState | undefined, source: string = DEFAULT_SOURCE): void {
    this.write(rich === undefined ? { kind: 'sip', personId, source } : { kind: 'sip', personId, source, rich });
  }

  private sip(personId: string, rich: RichState | undefined, source: string): void {
    this.update(personId, (s, e) => {
      e.sipSources = putSource(e.sipSources, source, rich);
      const composed = e.sipSources === undefined ? undefined : composeRich([...e.sipSources.values()]);
      if (composed === undefined) delete s.sip;
      else s.sip = composed;
    });
  }

  /** Telephony from one feeder, composed with the person's other feeders (several PBXs, phones' PUBLISH). */
  setTelephony(personId: string, telephony: TelephonyState | undefined, source: string = DEFAULT_SOURCE): void {
    this.write(telephony === undefined ? { kind: 'telephony', personId, source } : { kind: 'telephony', personId, source, telephony });
  }

  private telephony(personId: string, telephony: TelephonyState | undefined, source: string): void {
    this.update(personId, (s, e) => {
      e.telephonySources = putSource(e.telephonySources, source, telephony);
      this.composeTelephonyOf(personId, s, e);
    });
  }

  /** `feeder` (e.g. 'trunk:pbx1') is where the person's telephony is expected from: its being down makes them unknown. */
  expectTelephony(personId: string, feeder: string): void {
    this.write({ kind: 'expect-telephony', personId, feeder });
  }

  private expect(personId: string, feeder: string): void {
    this.entry(personId); // an unknown person throws before the liveness side knows of them
    this.liveness.expect(personId, feeder);
    this.update(personId, (s, e) => this.composeTelephonyOf(personId, s, e));
  }

  /** A feeder went down or came back for everyone (a trunk's reachability). */
  setFeederReachable(feeder: string, reachable: boolean): void {
    this.write({ kind: 'feeder-reachable', feeder, reachable });
  }

  private feederReachable(feeder: string, reachable: boolean): void {
    if (!this.liveness.setReachable(feeder, reachable)) return;
    const touched = new Set(this.liveness.expecting(feeder));
    for (const [personId, e] of this.entries) if (e.telephonySources?.has(feeder) === true) touched.add(personId);
    for (const personId of touched) this.update(personId, (s, e) => this.composeTelephonyOf(personId, s, e));
  }

  /** A feeder went down or came back for one person (their upstream subscription). */
  setFeederReachableFor(personId: string, feeder: string, reachable: boolean): void {
    this.write({ kind: 'feeder-reachable-for', personId, feeder, reachable });
  }

  private feederReachableFor(personId: string, feeder: string, reachable: boolean): void {
    if (!this.liveness.setReachableFor(personId, feeder, reachable)) return;
    this.update(personId, (s, e) => this.composeTelephonyOf(personId, s, e));
  }

  /** Telephony from the current feeders; 'unknown' when none is live and none other says anything. */
  private composeTelephonyOf(personId: string, s: PersonState, e: Entry): void {
    const current: TelephonyState[] = [];
    if (e.telephonySources !== undefined) {
      for (const [feeder, t] of e.telephonySources) if (this.liveness.isCurrent(feeder)) current.push(t);
    }
    let composed = composeTelephony(current);
    if (composed === undefined && this.liveness.noneLive(personId)) {
      composed = { line: 'unknown', dnd: false, calls: [], origin: this.liveness.firstExpected(personId) ?? 'unknown', at: this.clock.now() };
    }
    if (composed === undefined) delete s.telephony;
    else s.telephony = composed;
  }

  /**
   * Who owns DND when the desk phone and Teams both set it: the last writer
   * wins, with echo suppression.
   *  - Phone DND on (its feature key): the `feature-key` telephony source says
   *    DND, the Teams target becomes DoNotDisturb and the Graph writer sets it
   *    under its opt-in (graph.writer.dnd); Teams reading it back is our echo.
   *  - Phone DND off: that source goes, the target clears and the writer takes
   *    its DND back. A DND the person set in Teams themselves (a reading that
   *    is not our echo) is overruled for SIP watchers, the phone's light
   *    included, until Teams says something else: the gateway cannot take back
   *    a choice made in Teams (it owns only its own session and, with
   *    writer.dnd 'preferred', the DND preferred presence it set).
   *  - Teams DND off (a reading that follows a DND reading, is not DND and is
   *    not our own echo, e.g. the person picked Available in Teams): the
   *    phone-set DND is cleared, so the phone's light goes out and the writer
   *    clears what it set. A reading that only lags (Teams not DND yet right
   *    after the phone's press) is no transition and clears nothing; a call
   *    session the gateway set (Busy/InACall) read back is an echo and clears
   *    nothing either. A PBX's own DND (a trunk's dialog or PIDF state) is the
   *    PBX's and is left alone: the gateway cannot switch it off there.
   */
  setFeatureKeyDnd(personId: string, on: boolean): void {
    this.write({ kind: 'feature-key-dnd', personId, on });
  }

  private featureKeyDnd(personId: string, on: boolean): void {
    this.update(personId, (s, e) => {
      const teams = s.teams;
      if (on) delete e.teamsDndOverruled;
      else if (teams !== undefined && this.teamsSaysDnd(teams) && !this.teamsIsEcho(e)) {
        e.teamsDndOverruled = { availability: teams.availability.toLowerCase(), activity: teams.activity.toLowerCase() };
      }
      e.telephonySources = putSource(
        e.telephonySources,
        FEATURE_KEY_SOURCE,
        // line 'unknown': the key says nothing of calls, so any trunk's line state wins
        on ? { line: 'unknown', dnd: true, calls: [], origin: FEATURE_KEY_SOURCE, at: this.clock.now() } : undefined,
      );
      this.composeTelephonyOf(personId, s, e);
    });
  }

  /**
   * Whether a Teams reading is DND: availability DoNotDisturb (the gateway's
   * own DoNotDisturb/Presenting session included) or an activity the mapping
   * table shows as DND.
   */
  private teamsSaysDnd(teams: TeamsState): boolean {
    return teams.availability.toLowerCase() === 'donotdisturb' || sipMeaningOf(teams, this.viewOptions.teamsToSip).dnd === true;
  }

  setTeams(personId: string, teams: TeamsState | undefined): void {
    this.write(teams === undefined ? { kind: 'teams', personId } : { kind: 'teams', personId, teams });
  }

  private teams(personId: string, teams: TeamsState | undefined): void {
    this.update(personId, (s, e) => {
      const before = s.teams;
      if (teams === undefined) delete s.teams;
      else s.teams = teams;
      const o = e.teamsDndOverruled;
      if (o !== undefined && (teams === undefined || teams.availability.toLowerCase() !== o.availability || teams.activity.toLowerCase() !== o.activity)) {
        delete e.teamsDndOverruled;
      }
      // Teams DND went off (see setFeatureKeyDnd): the phone-set DND goes with it.
      if (
        teams !== undefined &&
        before !== undefined &&
        e.telephonySources?.has(FEATURE_KEY_SOURCE) === true &&
        this.teamsSaysDnd(before) &&
        !this.teamsSaysDnd(teams) &&
        !this.teamsIsEcho(e)
      ) {
        e.telephonySources.delete(FEATURE_KEY_SOURCE);
        e.personChoseTeams = true;
        this.composeTelephonyOf(personId, s, e);
      }
    });
  }

  /**
   * The calendar block the person is in now (the calendar reader keeps it
   * current at block ends); undefined: free, or no calendar.
   */
  setCalendar(personId: string, calendar: CalendarState | undefined): void {
    this.write(calendar === undefined ? { kind: 'calendar', personId } : { kind: 'calendar', personId, calendar });
  }

  private calendar(personId: string, calendar: CalendarState | undefined): void {
    this.update(personId, (s) => {
      if (calendar === undefined) delete s.calendar;
      else s.calendar = calendar;
    });
  }

  /**
   * Remove source `source` (sip and telephony) from every person: a dead
   * node's PUBLISH compositor (`publish@<node>`, publish-source.ts), whose
   * publications another node has adopted under its own source. Each
   * removal is a local write (onInput hears `{ kind: 'sip' | 'telephony',
   * source }` without a value, once per person and kind that had it), so the
   * shared person state forgets the dead node's slots too and a node that
   * starts later does not load them back. Every node may call it for the
   * same node: the inputs are idempotent removals.
   */
  dropSource(source: string): void {
    for (const [personId, e] of this.entries) {
      if (e.sipSources?.has(source) === true) this.write({ kind: 'sip', personId, source });
      if (e.telephonySources?.has(source) === true) this.write({ kind: 'telephony', personId, source });
    }
  }

  /**
   * Hear of every local writer's call (setSip, setTelephony, ...,
   * dropSource's removals), as data, after it was applied here; never of
   * apply(). Several nodes stay alike by applying each other's inputs.
   */
  onInput(listener: InputListener): () => void {
    this.inputListeners.add(listener);
    return () => this.inputListeners.delete(listener);
  }

  /**
   * Do what the writer method `input` stands for would, without telling
   * onInput (another node's input: no echo). An input naming a person this
   * node's directory does not know is ignored (the nodes' directories may
   * differ for a while), as is a kind this version does not know.
   */
  apply(input: HubInput): void {
    if ('personId' in input && !this.entries.has(input.personId) && this.directory.get(input.personId) === undefined) return;
    this.perform(input);
  }

  /** A local writer's call: applied, then told to onInput. */
  private write(input: HubInput): void {
    this.perform(input);
    if (this.inputListeners.size > 0) for (const l of this.inputListeners) l(input);
  }

  private perform(input: HubInput): void {
    switch (input.kind) {
      case 'sip':
        return this.sip(input.personId, input.rich, input.source);
      case 'telephony':
        return this.telephony(input.personId, input.telephony, input.source);
      case 'expect-telephony':
        return this.expect(input.personId, input.feeder);
      case 'feeder-reachable':
        return this.feederReachable(input.feeder, input.reachable);
      case 'feeder-reachable-for':
        return this.feederReachableFor(input.personId, input.feeder, input.reachable);
      case 'feature-key-dnd':
        return this.featureKeyDnd(input.personId, input.on);
      case 'teams':
        return this.teams(input.personId, input.teams);
      case 'calendar':
        return this.calendar(input.personId, input.calendar);
      default:
        // a newer node's kind (bus messages are data): nothing to do here
        return;
    }
  }

  /**
   * What Teams alone says about a person, as a view (for publishing Teams
   * presence to a SIP presence server): undefined while Teams has said
   * nothing; the gateway's own session read back says "available".
   */
  teamsPart(personId: string): PresenceView | undefined {
    const e = this.entry(personId);
    const teams = e.state.teams;
    if (teams === undefined) return undefined;
    const alone = e.state.calendar === undefined ? { teams } : { teams, calendar: e.state.calendar };
    const content = deriveView(personId, alone, { ...this.viewOptions, now: this.clock.now(), teamsIsEcho: this.teamsIsEcho(e), prefer: 'teams' });
    return { personId, revision: e.view.revision, changedAt: teams.at, ...content };
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
    if (this.isOwn(teams, e.target)) return true;
    return (
      e.lastSet !== undefined &&
      e.lastSetEndedAt !== undefined &&
      this.clock.now() - e.lastSetEndedAt < this.echoWindowMs &&
      this.isOwn(teams, e.lastSet)
    );
  }

  private isOwn(teams: TeamsState, target: TeamsTarget): boolean {
    if (isEcho(teams, target)) return true;
    if (target.kind !== 'set' || (target.activity !== 'InACall' && target.activity !== 'InAConferenceCall')) return false;
    const a = teams.availability.toLowerCase();
    const b = teams.activity.toLowerCase();
    return this.callEchoes.some((p) => p.availability.toLowerCase() === a && p.activity.toLowerCase() === b);
  }

  private update(personId: string, mutate: (s: PersonState, e: Entry) => void): void {
    const e = this.entry(personId);
    mutate(e.state, e);

    const derived = teamsTargetOf(e.state);
    // the writer must not clear a preferred presence the person has just chosen themselves
    const target: TeamsTarget = derived.kind === 'clear' && e.personChoseTeams === true ? { kind: 'clear', personChose: true } : derived;
    delete e.personChoseTeams;
    const targetChanged = !sameTarget(target, e.target);
    if (targetChanged) {
      if (e.target.kind === 'set') {
        e.lastSet = e.target;
        e.lastSetEndedAt = this.clock.now();
      }
      e.target = target;
    }

    const content = deriveView(personId, e.state, {
      ...this.optionsFor(personId),
      teamsIsEcho: this.teamsIsEcho(e),
      ...(e.teamsDndOverruled !== undefined ? { teamsDndOverruled: true } : {}),
    });
    const { personId: _p, revision, changedAt: _c, ...previous } = e.view;
    if (!sameContent(previous, content)) {
      e.view = { personId, revision: revision + 1, changedAt: this.clock.now(), ...content };
      for (const l of this.listeners) l(personId, e.view);
    }
    if (targetChanged) for (const l of this.targetListeners) l(personId, target);
  }
}
