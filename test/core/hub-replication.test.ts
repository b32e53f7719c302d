/**
 * Several nodes form one service by applying each other's hub inputs
 * (src/core/hub-input.ts): a local writer's call is told to onInput as data,
 * apply() does the same without telling onInput, dropSource() removes a dead
 * node's PUBLISH source. Two hubs fed the same inputs in the same order
 * derive the same views and Teams targets.
 */
import t from 'tap';
import { Directory } from '../../src/core/directory.js';
import type { HubInput, HubInputKind } from '../../src/core/hub-input.js';
import type { CalendarBusy, LineState, PresenceView, RichState, TeamsState, TeamsTarget, TelephonyState } from '../../src/core/person-state.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { isPublishSource, publishSourceOf } from '../../src/core/publish-source.js';

const PEOPLE = ['anna', 'ben', 'cleo', 'dara'];

function directory(ids: readonly string[] = PEOPLE): Directory {
  return new Directory(
    ids.map((id, i) => ({ id, displayName: id, extension: String(1001 + i), sipAors: [`sip:${id}@example.com`] })),
    { domains: ['example.com'] },
  );
}

const GROUPS = new Map<string, readonly string[]>([
  ['ben', ['publish', 'trunk:pbx1', 'teams']],
  ['cleo', ['teams', 'telephony']],
]);

interface Node {
  hub: PresenceHub;
  changes: Array<[string, PresenceView]>;
  targets: Array<[string, TeamsTarget]>;
  inputs: HubInput[];
}

function node(clock: { now: () => number }, ids: readonly string[] = PEOPLE): Node {
  const hub = new PresenceHub(directory(ids), {
    clock,
    sourcePriority: (id) => GROUPS.get(id),
    callEchoes: [{ availability: 'DoNotDisturb', activity: 'DoNotDisturb' }],
    echoWindowMs: 5_000,
  });
  const n: Node = { hub, changes: [], targets: [], inputs: [] };
  hub.onChange((id, v) => n.changes.push([id, v]));
  hub.onTeamsTarget((id, target) => n.targets.push([id, target]));
  hub.onInput((input) => n.inputs.push(input));
  return n;
}

/** A small seeded generator (mulberry32): a failing sequence is reproduced by its seed. */
function random(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

const SIP_SOURCES = ['publish', publishSourceOf('a'), publishSourceOf('b'), 'trunk:pbx1'];
const TEL_SOURCES = ['publish', publishSourceOf('a'), publishSourceOf('b'), 'trunk:pbx1', 'trunk:pbx2'];
const FEEDERS = ['trunk:pbx1', 'trunk:pbx2'];
const TEAMS_PAIRS: ReadonlyArray<[string, string]> = [
  ['Available', 'Available'],
  ['Busy', 'InACall'],
  ['Busy', 'InAMeeting'],
  ['Busy', 'Busy'],
  ['DoNotDisturb', 'Presenting'],
  ['DoNotDisturb', 'DoNotDisturb'],
  ['Away', 'Away'],
  ['BeRightBack', 'BeRightBack'],
  ['Offline', 'OffWork'],
];
const LINES: readonly LineState[] = ['idle', 'ringing', 'in-call', 'on-hold', 'unknown'];
const ACTIVITIES: ReadonlyArray<string[]> = [[], ['away'], ['on-the-phone'], ['dnd'], ['busy'], ['meeting']];
const CALENDAR: readonly CalendarBusy[] = ['busy', 'tentative', 'oof', 'workingElsewhere'];

/** One writer's call, as the writer would make it (the real input kinds, with and without a value). */
function randomInput(r: ReturnType<typeof random>, now: number): HubInput {
  const personId = r.pick(PEOPLE);
  switch (r.int(8)) {
    case 0: {
      const source = r.pick(SIP_SOURCES);
      if (r.chance(0.25)) return { kind: 'sip', personId, source };
      const rich: RichState = { basic: r.chance(0.8) ? 'open' : 'closed', activities: r.pick(ACTIVITIES), origin: isPublishSource(source) ? 'publish:192.0.2.7' : source, at: now - r.int(1000) };
      if (r.chance(0.5)) rich.note = r.pick(['Back at 3', 'Lunch', 'In the lab']);
      return { kind: 'sip', personId, source, rich };
    }
    case 1: {
      const source = r.pick(TEL_SOURCES);
      if (r.chance(0.25)) return { kind: 'telephony', personId, source };
      const line = r.pick(LINES);
      const calls: TelephonyState['calls'] =
        line === 'idle' || line === 'unknown' ? [] : [{ id: `c${r.int(3)}`, phase: line === 'ringing' ? 'early' : 'confirmed', direction: r.pick(['initiator', 'recipient'] as const), held: line === 'on-hold' }];
      const telephony: TelephonyState = { line, dnd: r.chance(0.2), calls, origin: isPublishSource(source) ? 'publish:192.0.2.8' : source, at: now - r.int(1000) };
      return { kind: 'telephony', personId, source, telephony };
    }
    case 2:
      return { kind: 'expect-telephony', personId, feeder: r.pick(FEEDERS) };
    case 3:
      return { kind: 'feeder-reachable', feeder: r.pick(FEEDERS), reachable: r.chance(0.6) };
    case 4:
      return { kind: 'feeder-reachable-for', personId, feeder: r.pick(FEEDERS), reachable: r.chance(0.6) };
    case 5:
      return { kind: 'feature-key-dnd', personId, on: r.chance(0.5) };
    case 6: {
      if (r.chance(0.15)) return { kind: 'teams', personId };
      const [availability, activity] = r.pick(TEAMS_PAIRS);
      const teams: TeamsState = { availability, activity, at: now };
      if (r.chance(0.3)) teams.statusMessage = r.pick(['Working from home', 'Call me']);
      if (r.chance(0.1)) {
        teams.outOfOffice = true;
        teams.outOfOfficeMessage = 'Back Monday';
      }
      return { kind: 'teams', personId, teams };
    }
    default: {
      if (r.chance(0.3)) return { kind: 'calendar', personId };
      const from = now - r.int(60_000);
      return { kind: 'calendar', personId, calendar: { status: r.pick(CALENDAR), from, until: now + 1 + r.int(120_000), at: now } };
    }
  }
}

type Writers = { [K in HubInputKind]: (hub: PresenceHub, input: Extract<HubInput, { kind: K }>) => void };

/** Each input kind's writer method, called as a local writer would call it. */
const WRITERS: Writers = {
  sip: (hub, i) => hub.setSip(i.personId, i.rich, i.source),
  telephony: (hub, i) => hub.setTelephony(i.personId, i.telephony, i.source),
  'expect-telephony': (hub, i) => hub.expectTelephony(i.personId, i.feeder),
  'feeder-reachable': (hub, i) => hub.setFeederReachable(i.feeder, i.reachable),
  'feeder-reachable-for': (hub, i) => hub.setFeederReachableFor(i.personId, i.feeder, i.reachable),
  'feature-key-dnd': (hub, i) => hub.setFeatureKeyDnd(i.personId, i.on),
  teams: (hub, i) => hub.setTeams(i.personId, i.teams),
  calendar: (hub, i) => hub.setCalendar(i.personId, i.calendar),
};

function call(hub: PresenceHub, input: HubInput): void {
  (WRITERS[input.kind] as (hub: PresenceHub, input: HubInput) => void)(hub, input);
}

function snapshot(hub: PresenceHub): Array<{ view: PresenceView; target: TeamsTarget }> {
  return PEOPLE.map((id) => ({ view: hub.view(id), target: hub.teamsTarget(id) }));
}

t.test('two hubs fed the same inputs in the same order: identical views, Teams targets and change events', async (t) => {
  const SEQUENCES = 300;
  const STEPS = 40;
  let failures = 0;
  let inputsSeen = 0;
  for (let seed = 1; seed <= SEQUENCES && failures === 0; seed++) {
    const r = random(seed);
    let now = 1_700_000_000_000;
    const clock = { now: () => now };
    // a: the node whose writers make the calls; b: another node, applying what a's onInput tells (the bus)
    const a = node(clock);
    const b = node(clock);
    a.hub.onInput((input) => b.hub.apply(JSON.parse(JSON.stringify(input)) as HubInput));
    const timeline: Array<{ at: number; input: HubInput }> = [];
    a.hub.onInput((input) => timeline.push({ at: now, input }));
    for (let step = 0; step < STEPS; step++) {
      now += r.int(4_000);
      const before = a.inputs.length;
      if (r.chance(0.05)) {
        // a dead node's PUBLISH source goes: removals told to onInput, one a person and kind that had it
        a.hub.dropSource(r.pick([publishSourceOf('a'), publishSourceOf('b')]));
        for (const input of a.inputs.slice(before)) {
          if ((input.kind !== 'sip' && input.kind !== 'telephony') || 'rich' in input || 'telephony' in input) {
            failures++;
            t.fail(`seed ${seed}: dropSource told ${JSON.stringify(input)}`);
          }
        }
      } else {
        const input = randomInput(r, now);
        call(a.hub, input);
        if (a.inputs.length !== before + 1 || JSON.stringify(a.inputs[before]) !== JSON.stringify(input)) {
          failures++;
          t.fail(`seed ${seed} step ${step}: onInput told ${JSON.stringify(a.inputs.slice(before))} for ${JSON.stringify(input)}`);
        }
      }
      if (JSON.stringify(snapshot(a.hub)) !== JSON.stringify(snapshot(b.hub))) {
        failures++;
        t.same(snapshot(b.hub), snapshot(a.hub), `seed ${seed} step ${step}: b differs from a`);
        break;
      }
    }
    if (b.inputs.length !== 0) {
      failures++;
      t.fail(`seed ${seed}: apply told onInput ${b.inputs.length} times`);
    }
    if (JSON.stringify(a.changes) !== JSON.stringify(b.changes) || JSON.stringify(a.targets) !== JSON.stringify(b.targets)) {
      failures++;
      t.same(b.changes, a.changes, `seed ${seed}: the same change events, in order`);
      t.same(b.targets, a.targets, `seed ${seed}: the same Teams targets, in order`);
    }
    // c: a node starting later, applying the recorded inputs in order (SharedPersonState.loadInputs)
    let replayAt = 0;
    const c = node({ now: () => replayAt });
    for (const { at, input } of timeline) {
      replayAt = at;
      c.hub.apply(input);
    }
    replayAt = now;
    // changedAt is when this node saw the change (a view read before any input stamps its creation)
    const content = (hub: PresenceHub) => snapshot(hub).map(({ view: { changedAt: _c, ...view }, target }) => ({ view, target }));
    if (JSON.stringify(content(c.hub)) !== JSON.stringify(content(a.hub))) {
      failures++;
      t.same(content(c.hub), content(a.hub), `seed ${seed}: a replay of the inputs gives a's state`);
    }
    inputsSeen += a.inputs.length;
  }
  t.equal(failures, 0, `${SEQUENCES} random sequences of ${STEPS} inputs (${inputsSeen} inputs) agree`);
});

t.test('onInput hears every local writer call once, as data, even a call that changes nothing', async (t) => {
  const a = node({ now: () => 5_000 });
  a.hub.setSip('anna', { basic: 'open', activities: ['away'], origin: 'publish:192.0.2.1', at: 1 });
  a.hub.setFeederReachable('trunk:pbx1', false);
  a.hub.setFeederReachable('trunk:pbx1', false);
  a.hub.setTeams('ben', undefined);
  a.hub.setCalendar('ben', undefined);
  a.hub.setTelephony('cleo', undefined, 'trunk:pbx2');
  t.same(a.inputs, [
    { kind: 'sip', personId: 'anna', source: 'publish', rich: { basic: 'open', activities: ['away'], origin: 'publish:192.0.2.1', at: 1 } },
    { kind: 'feeder-reachable', feeder: 'trunk:pbx1', reachable: false },
    { kind: 'feeder-reachable', feeder: 'trunk:pbx1', reachable: false },
    { kind: 'teams', personId: 'ben' },
    { kind: 'calendar', personId: 'ben' },
    { kind: 'telephony', personId: 'cleo', source: 'trunk:pbx2' },
  ]);
  for (const input of a.inputs) t.notOk(Object.values(input).includes(undefined), 'no undefined values: JSON-able as is');
});

t.test('a local call for an unknown person throws and tells nothing; apply ignores it', async (t) => {
  const a = node({ now: () => 5_000 });
  t.throws(() => a.hub.setTeams('zed', { availability: 'Busy', activity: 'Busy', at: 1 }), /unknown person "zed"/);
  t.throws(() => a.hub.expectTelephony('zed', 'trunk:pbx1'));
  t.same(a.inputs, []);

  // b's directory lacks cleo (directories differ for a while between nodes): her inputs are ignored
  const b = node({ now: () => 5_000 }, ['anna', 'ben']);
  for (const input of [
    { kind: 'teams', personId: 'cleo', teams: { availability: 'Busy', activity: 'InACall', at: 1 } },
    { kind: 'sip', personId: 'cleo', source: 'publish@a', rich: { basic: 'open', activities: ['away'], origin: 'publish:x', at: 1 } },
    { kind: 'telephony', personId: 'cleo', source: 'trunk:pbx1' },
    { kind: 'expect-telephony', personId: 'cleo', feeder: 'trunk:pbx1' },
    { kind: 'feeder-reachable-for', personId: 'cleo', feeder: 'trunk:pbx1', reachable: false },
    { kind: 'feature-key-dnd', personId: 'cleo', on: true },
    { kind: 'calendar', personId: 'cleo' },
  ] satisfies HubInput[]) {
    t.doesNotThrow(() => b.hub.apply(input), input.kind);
  }
  // ... and leave nothing behind: a feeder going down later touches only known people
  t.doesNotThrow(() => b.hub.apply({ kind: 'feeder-reachable', feeder: 'trunk:pbx1', reachable: false }));
  t.doesNotThrow(() => b.hub.apply({ kind: 'frobnicate', personId: 'anna' } as unknown as HubInput), 'a kind this version does not know');
  t.same(b.changes, []);
  t.same(b.inputs, [], 'apply never tells onInput');
});

t.test('apply does what the method does, and never tells onInput', async (t) => {
  const a = node({ now: () => 5_000 });
  const b = node({ now: () => 5_000 });
  const inputs: HubInput[] = [
    { kind: 'expect-telephony', personId: 'anna', feeder: 'trunk:pbx1' },
    { kind: 'telephony', personId: 'anna', source: 'trunk:pbx1', telephony: { line: 'in-call', dnd: false, calls: [{ id: 'c1', phase: 'confirmed' }], origin: 'trunk:pbx1', at: 4_000 } },
    { kind: 'feature-key-dnd', personId: 'ben', on: true },
    { kind: 'teams', personId: 'ben', teams: { availability: 'DoNotDisturb', activity: 'Presenting', at: 4_500 } },
    { kind: 'feeder-reachable', feeder: 'trunk:pbx1', reachable: false },
  ];
  for (const input of inputs) {
    call(a.hub, input);
    b.hub.apply(input);
  }
  t.same(snapshot(b.hub), snapshot(a.hub));
  t.equal(a.inputs.length, inputs.length);
  t.same(b.inputs, []);
  t.equal(b.hub.view('anna').phoneUnknown, true, 'the trunk down: anna unknown on both');
  t.same(b.hub.teamsTarget('ben'), a.hub.teamsTarget('ben'));
});

t.test('dropSource removes a dead node\'s source from everyone, told as removals', async (t) => {
  let now = 10_000;
  const clock = { now: () => now };
  const a = node(clock);
  const b = node(clock);
  a.hub.onInput((input) => b.hub.apply(input));
  const rich = (activities: string[]): RichState => ({ basic: 'open', activities, origin: 'publish:192.0.2.9', at: now });
  // node x published for anna and ben (their state reached a and b as inputs); node y for anna too
  for (const n of [a, b]) {
    n.hub.apply({ kind: 'sip', personId: 'anna', source: publishSourceOf('x'), rich: rich(['dnd']) });
    n.hub.apply({ kind: 'sip', personId: 'anna', source: publishSourceOf('y'), rich: rich(['away']) });
    n.hub.apply({ kind: 'telephony', personId: 'ben', source: publishSourceOf('x'), telephony: { line: 'ringing', dnd: false, calls: [{ id: 'r', phase: 'early' }], origin: 'publish:192.0.2.9', at: now } });
  }
  t.equal(a.hub.view('anna').dnd, true, "node x's DND composes with y's away");
  t.equal(a.hub.view('ben').ringing, true);
  now += 100;
  a.hub.dropSource(publishSourceOf('x'));
  t.same(a.inputs, [
    { kind: 'sip', personId: 'anna', source: 'publish@x' },
    { kind: 'telephony', personId: 'ben', source: 'publish@x' },
  ]);
  t.equal(a.hub.view('anna').dnd, false, "x's DND gone");
  t.same(a.hub.view('anna').activities, ['away'], "y's publication stays");
  t.equal(a.hub.view('ben').ringing, false);
  t.same(snapshot(b.hub), snapshot(a.hub), 'b, applying the removals, agrees');
  const told = a.inputs.length;
  b.hub.dropSource(publishSourceOf('x'));
  a.hub.dropSource(publishSourceOf('x'));
  t.equal(a.inputs.length, told, 'a second drop (every node drops it) changes and tells nothing');
  t.same(b.inputs, [], "b's own drop found nothing left to remove");
});

t.test('a publish@<node> source ranks as publish in a group order', async (t) => {
  const a = node({ now: () => 5_000 });
  // ben's group: publish, trunk:pbx1, teams
  a.hub.setTelephony('ben', { line: 'in-call', dnd: false, calls: [{ id: 'c', phase: 'confirmed' }], origin: 'trunk:pbx1', at: 1 }, 'trunk:pbx1');
  a.hub.setSip('ben', { basic: 'open', activities: ['away'], note: 'Back at 3', origin: 'publish:192.0.2.4', at: 2 }, publishSourceOf('a'));
  t.equal(a.hub.view('ben').source, 'sip', 'a PUBLISH on node a speaks first for ben');
  t.equal(a.hub.view('ben').note, 'Back at 3');
  a.hub.setSip('ben', { basic: 'open', activities: ['away'], note: 'Gone', origin: 'publish@b', at: 3 }, publishSourceOf('b'));
  t.equal(a.hub.view('ben').source, 'sip');
  t.ok(isPublishSource('publish') && isPublishSource('publish@n1') && isPublishSource('publish:10.0.0.1'));
  t.notOk(isPublishSource('publisher') || isPublishSource('trunk:publish') || isPublishSource('teams'));
});
