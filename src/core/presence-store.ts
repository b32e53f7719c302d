import type { Directory } from './directory.js';
import type { PersonState, PresenceView, RichState, TelephonyState } from './person-state.js';
import { deriveView, sameContent } from './view.js';

export type ChangeListener = (personId: string, view: PresenceView) => void;

interface Entry {
  state: PersonState;
  view: PresenceView;
}

/**
 * The canonical state of every person, with each person's derived view kept
 * current. Writers set one source at a time; listeners hear of a change only
 * when the derived view differs, once, synchronously and in order.
 */
export class PresenceStore {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly now: () => number;

  constructor(
    private readonly directory: Directory,
    options: { now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  private entry(personId: string): Entry {
    let e = this.entries.get(personId);
    if (e === undefined) {
      if (this.directory.get(personId) === undefined) throw new Error(`unknown person "${personId}"`);
      const state: PersonState = {};
      e = { state, view: { personId, revision: 0, changedAt: this.now(), ...deriveView(personId, state) } };
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

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private update(personId: string, mutate: (s: PersonState) => void): void {
    const e = this.entry(personId);
    mutate(e.state);
    const content = deriveView(personId, e.state);
    const { personId: _p, revision, changedAt: _c, ...previous } = e.view;
    if (sameContent(previous, content)) return;
    e.view = { personId, revision: revision + 1, changedAt: this.now(), ...content };
    for (const l of this.listeners) l(personId, e.view);
  }
}
