/**
 * The `as-feature-event` package (BroadSoft device feature key
 * synchronisation, as Polycom and Yealink phones implement it): a desk phone
 * subscribes for its own DND and forwarding keys. A SetDoNotDisturb in its
 * SUBSCRIBE sets the person's DND in core (PresenceHub.setFeatureKeyDnd,
 * which also says who owns DND when Teams sets it too), which core maps to
 * Teams DoNotDisturb through the Graph writer under the same opt-in as any
 * PBX DND; the DoNotDisturbEvent NOTIFYs follow the person's view, so the
 * phone's DND light follows Teams DND too.
 *
 * Forwarding is kept per person and per forwarding type (always, busy, no
 * answer), saved through onPersist so it survives a restart, and sent as a
 * ForwardingEvent to every feature-event subscription of the person: all
 * their phones show the same forwarding keys, and a phone that subscribes
 * (or a subscription restored after a restart) gets DND first, then each
 * forwarding type known, one document per NOTIFY (as Kamailio presence_dfks
 * and Asterisk send them). The gateway does not forward calls (the PBX
 * does), and Teams forwarding is not synced: Microsoft Graph has no API for
 * a user's call forwarding (presence has none, and userSettings holds content
 * discovery, Windows, shift and work-hours settings only:
 * https://learn.microsoft.com/en-us/graph/api/resources/usersettings); Teams
 * forwarding is set with Teams PowerShell (Set-CsUserCallingSettings,
 * https://learn.microsoft.com/en-us/powershell/module/teams/set-csusercallingsettings).
 *
 * Only the person themselves (From is one of their AoRs), an admin user or a
 * trusted network may subscribe: the body changes their state.
 */
import {
  BodyError,
  FEATURE_EVENT_CONTENT_TYPE,
  buildDoNotDisturbEvent,
  buildForwardingEvent,
  parseFeatureRequest,
  type ForwardingType,
} from '../bodies/index.js';
import type { MediaType } from '../sip/header-values.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { SipResponse } from '../sip/message.js';
import { parseNameAddr } from '../sip/uri.js';
import { chooseContentType, type BodyFormat, type EventPackage, type RenderContext } from './event-package.js';
import type { ViewSource } from './presence-package.js';
import { reply, safeReason } from './sip-util.js';
import type { InboundRequest } from './stack-port.js';

export const FEATURE_EVENT = 'as-feature-event';
const FORMAT: BodyFormat = Object.freeze({ contentType: FEATURE_EVENT_CONTENT_TYPE, variant: 'rfc' });

/** A person's forwarding of one type, as their phone last set it. */
export interface ForwardingSetting {
  type: ForwardingType;
  on: boolean;
  to?: string;
  ringCount?: number;
  /** ms epoch of the phone's SetForwarding */
  at: number;
}

/** Where the forwarding settings are kept (persistence-wiring.ts); called synchronously, must be cheap. */
export type ForwardingPersistence = (personId: string, settings: readonly ForwardingSetting[]) => void;

interface Held extends ForwardingSetting {
  /** +1 on every change of any setting: what each subscription was sent is compared with it */
  rev: number;
}

export interface FeatureEventOptions {
  source: ViewSource;
  /** Where the phone's DND goes: core's PresenceHub.setFeatureKeyDnd, which says who owns DND when Teams sets it too. */
  sink: { setFeatureKeyDnd(personId: string, on: boolean): void };
  resolve: (user: string | undefined, host: string) => string | undefined;
  extensionOf?: (personId: string) => string | undefined;
  /** The person's feature-event subscriptions need a NOTIFY (notifier.resourceChanged for this package). */
  changed?: (personId: string) => void;
  clock?: Pick<Clock, 'now'>;
}


export class FeatureEventPackage implements EventPackage {
  readonly event = FEATURE_EVENT;
  readonly contentTypes: readonly string[] = [FEATURE_EVENT_CONTENT_TYPE];
  /** Forwarding per person and type, in the order first set. */
  private readonly forwarding = new Map<string, Map<ForwardingType, Held>>();
  private rev = 0;
  /** Per subscription: the revision of each forwarding type it was sent. */
  private readonly sent = new WeakMap<object, Map<ForwardingType, number>>();
  private persist: ForwardingPersistence | undefined;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(private readonly options: FeatureEventOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** The person's forwarding settings (diagnostics), in the order first set. */
  forwardingOf(personId: string): ForwardingSetting[] {
    return [...(this.forwarding.get(personId)?.values() ?? [])].map(({ rev: _r, ...f }) => ({ ...f }));
  }

  /** Settings saved before a restart; phones subscribing (or restored) get them. */
  restoreForwarding(saved: Iterable<[string, readonly ForwardingSetting[]]>): number {
    let n = 0;
    for (const [personId, settings] of saved) {
      for (const f of settings) {
        this.hold(personId, f);
        n++;
      }
    }
    return n;
  }

  /** Report changed settings to `persist` (undefined: stop). */
  // A setter on purpose: attached after restoreForwarding, so restoring does not write the settings back.
  onPersist(persist: ForwardingPersistence | undefined): void {
    this.persist = persist;
  }

  private hold(personId: string, f: ForwardingSetting): void {
    let byType = this.forwarding.get(personId);
    if (byType === undefined) this.forwarding.set(personId, (byType = new Map()));
    byType.set(f.type, { ...f, rev: ++this.rev });
  }

  authorize(req: InboundRequest, personId: string): SipResponse | undefined {
    if (req.privileged !== undefined) return undefined;
    const from = parseNameAddr(req.request.headers.get('from') ?? '');
    if (from !== null && this.options.resolve(from.uri.user, from.uri.host) === personId) return undefined;
    return reply(req.request, 403, undefined, { reason: "Forbidden - feature keys only for the person's own phone" });
  }

  negotiate(accept: readonly MediaType[] | undefined): BodyFormat | undefined {
    if (accept !== undefined && chooseContentType(accept, this.contentTypes) === undefined) return undefined;
    return FORMAT;
  }

  subscribeBody(req: InboundRequest, personId: string): SipResponse | undefined {
    const { request } = req;
    const ct = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (ct !== FEATURE_EVENT_CONTENT_TYPE) return reply(request, 415, [['accept', FEATURE_EVENT_CONTENT_TYPE]]);
    try {
      const r = parseFeatureRequest(request.body);
      if (r.kind === 'dnd') this.options.sink.setFeatureKeyDnd(personId, r.on);
      else {
        const f: ForwardingSetting = { type: r.type, on: r.on, at: this.clock.now() };
        if (r.to !== undefined) f.to = r.to;
        if (r.ringCount !== undefined) f.ringCount = r.ringCount;
        this.hold(personId, f);
        this.persist?.(personId, this.forwardingOf(personId));
        // every phone of the person hears of it (this one after its 200)
        this.options.changed?.(personId);
      }
      return undefined;
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      return reply(request, err.status === 413 ? 413 : err.status === 415 ? 415 : 400, err.status === 415 ? [['accept', FEATURE_EVENT_CONTENT_TYPE]] : undefined, {
        reason: safeReason(err.status === 415 ? 'Unsupported Media Type' : 'Bad Request', err.message),
      });
    }
  }


  render(resource: string, ctx: RenderContext): Buffer {
    const device = this.options.extensionOf?.(resource) ?? (/^[a-z]+:([^@;]+)@/i.exec(ctx.entity)?.[1] ?? resource);
    const held = this.forwarding.get(resource);
    const dnd = (): Buffer => Buffer.from(buildDoNotDisturbEvent(device, this.options.source.view(resource).dnd), 'utf8');
    if (ctx.owner === undefined) return dnd();
    let sent = this.sent.get(ctx.owner);
    if (sent === undefined) {
      // a new (or restored) subscription: DND first, each forwarding type in the NOTIFYs after
      this.sent.set(ctx.owner, new Map());
      if (held !== undefined && held.size > 0) this.options.changed?.(resource);
      return dnd();
    }
    if (held !== undefined) {
      let next: Held | undefined;
      let more = false;
      for (const f of held.values()) {
        if (sent.get(f.type) === f.rev) continue;
        if (next === undefined) next = f;
        else more = true;
      }
      if (next !== undefined) {
        sent.set(next.type, next.rev);
        if (more) this.options.changed?.(resource);
        return Buffer.from(buildForwardingEvent(device, next.type, next.on, next.to, next.ringCount), 'utf8');
      }
    }
    return dnd();
  }
}
