/**
 * The `as-feature-event` package (BroadSoft device feature key
 * synchronisation, as Polycom and Yealink phones implement it): a desk phone
 * subscribes for its own DND and forwarding keys. A SetDoNotDisturb in its
 * SUBSCRIBE sets the person's DND in core (telephony source `feature-key`),
 * which core maps to Teams DoNotDisturb through the Graph writer under the
 * same opt-in as any PBX DND; the DoNotDisturbEvent NOTIFYs follow the
 * person's view, so the phone's DND light follows Teams DND too.
 * SetForwarding is acknowledged with a ForwardingEvent reflecting it (the
 * gateway does not forward calls; the PBX does), kept in memory per person.
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
import type { TelephonyState } from '../core/person-state.js';
import type { MediaType } from '../sip/header-values.js';
import type { SipResponse } from '../sip/message.js';
import { parseNameAddr } from '../sip/uri.js';
import { chooseContentType, type BodyFormat, type EventPackage, type RenderContext } from './event-package.js';
import type { ViewSource } from './presence-package.js';
import { reply, safeReason } from './sip-util.js';
import type { InboundRequest } from './stack-port.js';

export const FEATURE_EVENT = 'as-feature-event';
const FORMAT: BodyFormat = Object.freeze({ contentType: FEATURE_EVENT_CONTENT_TYPE, variant: 'rfc' });

interface Forwarding {
  type: ForwardingType;
  on: boolean;
  to?: string;
  ringCount?: number;
}

export interface FeatureEventOptions {
  source: ViewSource;
  /** Where the phone's DND goes (the PresenceStore), as the telephony source `feature-key`. */
  sink: { setTelephony(personId: string, telephony: TelephonyState | undefined, source: string): void };
  resolve: (user: string | undefined, host: string) => string | undefined;
  extensionOf?: (personId: string) => string | undefined;
  now?: () => number;
}

const SOURCE = 'feature-key';

export class FeatureEventPackage implements EventPackage {
  readonly event = FEATURE_EVENT;
  readonly contentTypes: readonly string[] = [FEATURE_EVENT_CONTENT_TYPE];
  /** The last forwarding request per person, acknowledged in the next NOTIFY. */
  private readonly forwarding = new Map<string, Forwarding>();

  constructor(private readonly options: FeatureEventOptions) {}

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
      if (r.kind === 'dnd') this.setDnd(personId, r.on);
      else {
        const f: Forwarding = { type: r.type, on: r.on };
        if (r.to !== undefined) f.to = r.to;
        if (r.ringCount !== undefined) f.ringCount = r.ringCount;
        this.forwarding.set(personId, f);
      }
      return undefined;
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      return reply(request, err.status === 413 ? 413 : err.status === 415 ? 415 : 400, err.status === 415 ? [['accept', FEATURE_EVENT_CONTENT_TYPE]] : undefined, {
        reason: safeReason(err.status === 415 ? 'Unsupported Media Type' : 'Bad Request', err.message),
      });
    }
  }

  /** The person's DND as their phone says; line 'unknown': the key says nothing of calls, so any trunk's line state wins. */
  private setDnd(personId: string, on: boolean): void {
    const at = (this.options.now ?? Date.now)();
    this.options.sink.setTelephony(personId, on ? { line: 'unknown', dnd: true, calls: [], origin: SOURCE, at } : undefined, SOURCE);
  }

  render(resource: string, ctx: RenderContext): Buffer {
    const device = this.options.extensionOf?.(resource) ?? (/^[a-z]+:([^@;]+)@/i.exec(ctx.entity)?.[1] ?? resource);
    const f = this.forwarding.get(resource);
    if (f !== undefined) {
      // a forwarding request is answered once with its ForwardingEvent, then DND again
      this.forwarding.delete(resource);
      return Buffer.from(buildForwardingEvent(device, f.type, f.on, f.to, f.ringCount), 'utf8');
    }
    return Buffer.from(buildDoNotDisturbEvent(device, this.options.source.view(resource).dnd), 'utf8');
  }
}
