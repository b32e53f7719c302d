/**
 * The `presence` event package (RFC 3856): a person's view as PIDF (RFC 3863)
 * with RPID activities (RFC 4480), in the Cisco flavor for watchers that only
 * take application/cpim-pidf+xml (Cisco phones light BLF from person activities:
 * on-the-phone, ce:alerting, ce:dnd, an empty activities element when idle).
 */
import { buildPidf, type PidfActivity, type PidfDocument } from '../bodies/index.js';
import type { PresenceView } from '../core/person-state.js';
import type { MediaType } from '../sip/header-values.js';
import { RevisionCache } from './body-cache.js';
import { chooseContentType, type BodyFormat, type EventPackage, type RenderContext } from './event-package.js';

export const PIDF = 'application/pidf+xml';
export const CPIM_PIDF = 'application/cpim-pidf+xml';

const PIDF_FORMAT: BodyFormat = Object.freeze({ contentType: PIDF, variant: 'rfc' });
const CPIM_FORMAT: BodyFormat = Object.freeze({ contentType: CPIM_PIDF, variant: 'rfc' });
const CISCO_FORMAT: BodyFormat = Object.freeze({ contentType: CPIM_PIDF, variant: 'cisco' });

/** Where the package reads a resource's current view (the PresenceStore). */
export interface ViewSource {
  view(resource: string): PresenceView;
}

/** An XML ID from a person id (ids may start with a digit or hold other characters). */
export function xmlId(prefix: string, id: string): string {
  return prefix + id.replace(/[^A-Za-z0-9._-]/g, '_');
}

const rpid = (name: string): PidfActivity => ({ name, ns: 'rpid' });
const cisco = (name: string): PidfActivity => ({ name, ns: 'cisco' });

/** The PIDF document for a view; `flavor` 'cisco' swaps in ce:alerting / ce:dnd. */
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
    persons: [{ id: xmlId('p-', view.personId), activities, notes: [] }],
    notes: [],
  };
}

export class PresencePackage implements EventPackage {
  readonly event = 'presence';
  readonly contentTypes: readonly string[] = [PIDF, CPIM_PIDF];
  private readonly cache = new RevisionCache<Buffer>();

  constructor(private readonly source: ViewSource) {}

  negotiate(accept: readonly MediaType[] | undefined): BodyFormat | undefined {
    // RFC 3856 §6.7: without Accept the body is application/pidf+xml.
    if (accept === undefined) return PIDF_FORMAT;
    const chosen = chooseContentType(accept, this.contentTypes);
    if (chosen === PIDF) return PIDF_FORMAT;
    if (chosen === undefined) return undefined;
    // cpim-pidf preferred: the Cisco flavor only when plain pidf+xml is not acceptable at all.
    return chooseContentType(accept, [PIDF]) === undefined ? CISCO_FORMAT : CPIM_FORMAT;
  }

  render(resource: string, ctx: RenderContext): Buffer {
    const view = this.source.view(resource);
    const flavor = ctx.format.variant === 'cisco' ? 'cisco' : 'rfc';
    return this.cache.get(resource, view.revision, `${flavor}\n${ctx.entity}`, () =>
      Buffer.from(buildPidf(presenceDocument(view, ctx.entity, flavor), { flavor }), 'utf8'),
    );
  }

  release(resource: string): void {
    this.cache.release(resource);
  }
}
