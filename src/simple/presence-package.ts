/**
 * The `presence` event package (RFC 3856): a person's view as PIDF (RFC 3863)
 * with RPID activities (RFC 4480). Watchers with the `cisco` output profile
 * (watcher-profile.ts), and watchers that only take application/cpim-pidf+xml,
 * get the Cisco flavor: Cisco phones light BLF only from person activities
 * (on-the-phone, ce:alerting, busy, ce:dnd) and get an empty activities
 * element when idle. Watchers that ask for application/xpidf+xml (older
 * Cisco, Polycom, Snom firmware), or have the `xpidf` profile and accept it,
 * get XPIDF as Asterisk serves it. The other profiles get the RFC flavor.
 */
import {
  XPIDF_CONTENT_TYPE,
  buildPidf,
  parsePidf,
  buildXpidf,
  type PidfActivity,
  type PidfDocument,
  type PidfPerson,
  type XpidfDocument,
} from '../bodies/index.js';
import { composeRich } from '../core/compose.js';
import type { PresenceView, RichState } from '../core/person-state.js';
import type { MediaType } from '../sip/header-values.js';
import { RevisionCache } from './body-cache.js';
import { richFromUpstreamPidf, richStateFromPidf, savedRich, telephonyFromPidf } from './body-state.js';
import { chooseContentType, type BodyFormat, type EventPackage, type NotifyRules, type PublishRules, type RenderContext } from './event-package.js';
import { defaultWatcherProfileSelector, type WatcherInfo, type WatcherProfileSelector } from './watcher-profile.js';

export const PIDF = 'application/pidf+xml';
export const CPIM_PIDF = 'application/cpim-pidf+xml';

const PIDF_FORMAT: BodyFormat = Object.freeze({ contentType: PIDF, variant: 'rfc' });
const PIDF_CISCO_FORMAT: BodyFormat = Object.freeze({ contentType: PIDF, variant: 'cisco' });
const CPIM_FORMAT: BodyFormat = Object.freeze({ contentType: CPIM_PIDF, variant: 'rfc' });
const CISCO_FORMAT: BodyFormat = Object.freeze({ contentType: CPIM_PIDF, variant: 'cisco' });
const XPIDF_FORMAT: BodyFormat = Object.freeze({ contentType: XPIDF_CONTENT_TYPE, variant: 'xpidf' });

/** Options shared by the event packages. */
export interface PackageOptions {
  /** Output profile selection by User-Agent (default: the built-in rules only). */
  profiles?: WatcherProfileSelector;
  /** A person's extension (the dialog id of the single-dialog profile); default the subscribed user part. */
  extensionOf?: (resource: string) => string | undefined;
}

/** Where the package reads a resource's current view (the PresenceHub). */
export interface ViewSource {
  view(resource: string): PresenceView;
}

/** An XML ID from a person id (ids may start with a digit or hold other characters). */
export function xmlId(prefix: string, id: string): string {
  return prefix + id.replace(/[^A-Za-z0-9._-]/g, '_');
}

const rpid = (name: string): PidfActivity => ({ name, ns: 'rpid' });
const cisco = (name: string): PidfActivity => ({ name, ns: 'cisco' });

/**
 * The PIDF document for a view; `flavor` 'cisco' swaps in ce:alerting for
 * on-the-phone while ringing and ce:dnd for busy while DND (CUCM style).
 */
export function presenceDocument(view: PresenceView, entity: string, flavor: 'rfc' | 'cisco'): PidfDocument {
  const activities: PidfActivity[] = [];
  if (flavor === 'cisco') {
    // CUCM style: ringing is ce:alerting rather than on-the-phone, DND is ce:dnd rather than busy.
    if (view.ringing) activities.push(cisco('alerting'));
    if (view.dnd) activities.push(cisco('dnd'));
    for (const a of view.activities) {
      if (view.ringing && a === 'on-the-phone') continue;
      if (view.dnd && a === 'busy') continue;
      activities.push(rpid(a));
    }
  } else {
    for (const a of view.activities) activities.push(rpid(a));
  }
  return {
    entity,
    tuples: [
      {
        id: xmlId('t-', view.personId),
        basic: view.basic,
        contact: entity,
        notes: view.note === undefined ? [] : [view.note],
        activities: [],
      },
    ],
    persons: [personOf(view, activities)],
    notes: [],
  };
}

function personOf(view: PresenceView, activities: PidfActivity[]): PidfPerson {
  const person: PidfPerson = { id: xmlId('p-', view.personId), activities, notes: [] };
  if (view.notes !== undefined) person.langNotes = view.notes;
  // whole seconds in UTC: xs:dateTime as RPID's until carries it
  if (view.activitiesUntil !== undefined && activities.length > 0) person.activitiesUntil = new Date(Math.floor(view.activitiesUntil / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return person;
}

const BUSY_ACTIVITIES: ReadonlySet<string> = new Set(['busy', 'meeting', 'performance', 'presentation']);
const AWAY_ACTIVITIES: ReadonlySet<string> = new Set(['away', 'vacation', 'holiday', 'lunch', 'travel']);

/**
 * The XPIDF document for a view. Asterisk's three states (closed/offline,
 * inuse/onthephone, open/online) as it maps hints; DND and busy activities
 * are inuse/busy and away activities open/away (MSN substatus values the
 * phones know), so nothing busy ever shows as online.
 */
export function xpidfDocument(view: PresenceView, entity: string, atomId: string): XpidfDocument {
  const doc = (status: XpidfDocument['status'], substatus: XpidfDocument['substatus']): XpidfDocument => ({
    presentity: entity,
    atomId,
    address: entity,
    status,
    substatus,
  });
  if (view.basic === 'closed') return doc('closed', 'offline');
  if (view.ringing || view.calls.length > 0 || view.activities.includes('on-the-phone')) return doc('inuse', 'onthephone');
  if (view.dnd || view.activities.some((a) => BUSY_ACTIVITIES.has(a))) return doc('inuse', 'busy');
  if (view.activities.some((a) => AWAY_ACTIVITIES.has(a))) return doc('open', 'away');
  // Unknown is not idle: no online lamp while no live telephony source speaks for the person.
  if (view.phoneUnknown === true) return doc('closed', 'offline');
  return doc('open', 'online');
}

function userPart(entity: string): string {
  const m = /^[a-z]+:([^@;]+)@/i.exec(entity);
  return m === null ? 'presence' : m[1]!;
}

/** PUBLISH of presence (RFC 3903 §4, RFC 3856): PIDF into the person's `sip` source, publications composed. */
export const PRESENCE_PUBLISH = Object.freeze<PublishRules<RichState>>({
  contentTypes: Object.freeze([PIDF, CPIM_PIDF]),
  parse: (body, ctx) =>
    richStateFromPidf(parsePidf(body, ctx.maxBytes === undefined ? undefined : { maxBytes: ctx.maxBytes }), ctx.origin, ctx.at),
  compose(sink, resource, states) {
    sink.setSip(resource, composeRich(states));
  },
  save: (state) => ({ rich: state }),
  load: (saved) => savedRich(saved['rich']),
});

/** PIDF in NOTIFYs from a PBX (Cisco CUCM, Asterisk): the line state, and the rest as rich presence. */
export const PRESENCE_UPSTREAM = Object.freeze<NotifyRules>({
  contentTypes: Object.freeze([PIDF, CPIM_PIDF]),
  read(body) {
    const doc = parsePidf(body);
    return {
      kind: 'pidf',
      telephony: (_previous, origin, at) => telephonyFromPidf(doc, origin, at),
      rich: (origin, at) => richFromUpstreamPidf(doc, origin, at),
    };
  },
});

export class PresencePackage implements EventPackage {
  readonly event = 'presence';
  /** XPIDF last: only a watcher that asks for it (and for nothing better) gets it. */
  readonly contentTypes: readonly string[] = [PIDF, CPIM_PIDF, XPIDF_CONTENT_TYPE];
  readonly publish = PRESENCE_PUBLISH;
  readonly upstream = PRESENCE_UPSTREAM;
  /** RFC 4662: presence lists, restored after a restart (each NOTIFY carries the members' full state). */
  readonly lists = Object.freeze({ restore: true });
  private readonly cache = new RevisionCache<Buffer>();
  private readonly profiles: WatcherProfileSelector;
  private readonly extensionOf: ((resource: string) => string | undefined) | undefined;

  constructor(
    private readonly source: ViewSource,
    options: PackageOptions = {},
  ) {
    this.profiles = options.profiles ?? defaultWatcherProfileSelector;
    this.extensionOf = options.extensionOf;
  }

  negotiate(accept: readonly MediaType[] | undefined, watcher?: WatcherInfo): BodyFormat | undefined {
    // RFC 3856 §6.7: without Accept the body is application/pidf+xml.
    const chosen = accept === undefined ? PIDF : chooseContentType(accept, this.contentTypes);
    if (chosen === undefined) return undefined;
    const profile = this.profiles.select(watcher);
    if (chosen === XPIDF_CONTENT_TYPE) return XPIDF_FORMAT;
    // The xpidf profile: firmware that lists PIDF too but renders only XPIDF.
    if (profile === 'xpidf' && accept !== undefined && chooseContentType(accept, [XPIDF_CONTENT_TYPE]) !== undefined) return XPIDF_FORMAT;
    if (profile !== undefined) {
      const cisco = profile === 'cisco';
      if (chosen === PIDF) return cisco ? PIDF_CISCO_FORMAT : PIDF_FORMAT;
      return cisco ? CISCO_FORMAT : CPIM_FORMAT;
    }
    if (chosen === PIDF || accept === undefined) return PIDF_FORMAT;
    // cpim-pidf preferred: the Cisco flavor only when plain pidf+xml is not acceptable at all.
    return chooseContentType(accept, [PIDF]) === undefined ? CISCO_FORMAT : CPIM_FORMAT;
  }

  render(resource: string, ctx: RenderContext): Buffer {
    const view = this.source.view(resource);
    if (ctx.format.variant === 'xpidf') {
      return this.cache.get(resource, view.revision, `xpidf\n${ctx.entity}`, () =>
        Buffer.from(buildXpidf(xpidfDocument(view, ctx.entity, this.extensionOf?.(resource) ?? userPart(ctx.entity))), 'utf8'),
      );
    }
    const flavor = ctx.format.variant === 'cisco' ? 'cisco' : 'rfc';
    return this.cache.get(resource, view.revision, `${flavor}\n${ctx.entity}`, () =>
      Buffer.from(buildPidf(presenceDocument(view, ctx.entity, flavor), { flavor }), 'utf8'),
    );
  }

  release(resource: string): void {
    this.cache.release(resource);
  }
}
