/**
 * One input to the canonical person state, as plain data: what a writer of
 * PresenceHub asked for (setSip, setTelephony, setTeams, ...). Several
 * gateway nodes form one service by applying the same inputs to their own
 * hub (src/store/cluster.ts carries them); a hub's state is a function of the
 * inputs it applied, so every node derives the same views and Teams targets.
 * JSON-able: no Maps, no class instances, no undefined inside arrays.
 */
import type { CalendarState, RichState, TeamsState, TelephonyState } from './person-state.js';

export type HubInput =
  | { kind: 'sip'; personId: string; source: string; rich?: RichState }
  | { kind: 'telephony'; personId: string; source: string; telephony?: TelephonyState }
  | { kind: 'expect-telephony'; personId: string; feeder: string }
  | { kind: 'feeder-reachable'; feeder: string; reachable: boolean }
  | { kind: 'feeder-reachable-for'; personId: string; feeder: string; reachable: boolean }
  | { kind: 'feature-key-dnd'; personId: string; on: boolean }
  | { kind: 'teams'; personId: string; teams?: TeamsState }
  | { kind: 'calendar'; personId: string; calendar?: CalendarState };

export type HubInputKind = HubInput['kind'];

/**
 * The slot an input fills: a later input with the same slot replaces an
 * earlier one entirely (what a shared store keeps per person, one value a
 * slot). E.g. "telephony\ntrunk:pbx1", "teams", "feeder-reachable\ntrunk:pbx1".
 */
export function inputSlot(input: HubInput): string {
  switch (input.kind) {
    case 'sip':
    case 'telephony':
      return `${input.kind}\n${input.source}`;
    case 'expect-telephony':
    case 'feeder-reachable-for':
      return `${input.kind}\n${input.feeder}`;
    case 'feeder-reachable':
      return `${input.kind}\n${input.feeder}`;
    case 'feature-key-dnd':
    case 'teams':
    case 'calendar':
      return input.kind;
  }
}
