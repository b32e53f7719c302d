/**
 * Desk phones' forwarding settings (as-feature-event SetForwarding), kept per
 * person in the store's meta table as one JSON document. Structurally the
 * ForwardingSetting of src/simple/feature-package.ts, so the store needs no
 * import of simple. Each saved entry is checked on load: a bad one is
 * skipped, never half-restored.
 */
import type { GatewayStore } from './store.js';

export const PHONE_FORWARDING_META_KEY = 'phones.forwarding';

export type PhoneForwardingType = 'forwardImmediate' | 'forwardBusy' | 'forwardNoAns';
const TYPES: ReadonlySet<string> = new Set<PhoneForwardingType>(['forwardImmediate', 'forwardBusy', 'forwardNoAns']);

export interface PhoneForwardingRecord {
  type: PhoneForwardingType;
  on: boolean;
  to?: string;
  ringCount?: number;
  /** ms epoch of the phone's SetForwarding */
  at: number;
}

export interface PhoneForwardingState {
  /** Every person's saved settings. */
  load(): Map<string, PhoneForwardingRecord[]>;
  /** Replace one person's settings (none: forget the person). */
  save(personId: string, settings: readonly PhoneForwardingRecord[]): void;
}

function parse(text: string | undefined): Map<string, PhoneForwardingRecord[]> {
  const out = new Map<string, PhoneForwardingRecord[]>();
  if (text === undefined) return out;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return out;
  }
  if (typeof doc !== 'object' || doc === null) return out;
  for (const [personId, list] of Object.entries(doc as Record<string, unknown>)) {
    if (!Array.isArray(list)) continue;
    const settings: PhoneForwardingRecord[] = [];
    for (const f of list as Array<Record<string, unknown>>) {
      if (typeof f !== 'object' || f === null || typeof f.type !== 'string' || !TYPES.has(f.type) || typeof f.on !== 'boolean') continue;
      const s: PhoneForwardingRecord = { type: f.type as PhoneForwardingType, on: f.on, at: typeof f.at === 'number' ? f.at : 0 };
      if (typeof f.to === 'string') s.to = f.to;
      if (typeof f.ringCount === 'number' && Number.isInteger(f.ringCount) && f.ringCount > 0) s.ringCount = f.ringCount;
      settings.push(s);
    }
    if (settings.length > 0) out.set(personId, settings);
  }
  return out;
}

export function phoneForwardingState(store: GatewayStore): PhoneForwardingState {
  let held: Map<string, PhoneForwardingRecord[]> | undefined;
  return {
    load() {
      held = parse(store.meta.get(PHONE_FORWARDING_META_KEY));
      return new Map(held);
    },
    save(personId, settings) {
      held ??= parse(store.meta.get(PHONE_FORWARDING_META_KEY));
      if (settings.length === 0) held.delete(personId);
      else held.set(personId, [...settings]);
      store.meta.set(PHONE_FORWARDING_META_KEY, JSON.stringify(Object.fromEntries(held)));
    },
  };
}
