/**
 * The event packages served here, by Event name: what the notifier
 * (SUBSCRIBE), the publication store (PUBLISH) and the upstream watcher
 * (NOTIFY bodies) dispatch by. Adding a package is one register() call.
 */
import { BodyError } from '../bodies/index.js';
import { parseMediaType } from '../sip/header-values.js';
import type { SipRequest } from '../sip/message.js';
import type { EventPackage, NotifyReading } from './event-package.js';
import { safeReason } from './sip-util.js';

/** An upstream NOTIFY without a body (state unchanged). */
export interface NoBody {
  readonly kind: 'none';
}

export type NotifyBody = NoBody | NotifyReading;

export type NotifyBodyOutcome =
  | { ok: true; body: NotifyBody }
  | { ok: false; status: 400 | 413 | 415; reason: string };

const NONE: NoBody = Object.freeze({ kind: 'none' });

/** Whether a NOTIFY body was read into state (not an empty body). */
export function isReading(body: NotifyBody): body is NotifyReading {
  return body.kind !== 'none';
}

export class PackageRegistry {
  private readonly byEvent = new Map<string, EventPackage>();
  /** upstream NOTIFY content type → the package reading it (the first registered wins) */
  private readonly notifyReaders = new Map<string, EventPackage>();

  register(pkg: EventPackage): void {
    const event = pkg.event.toLowerCase();
    this.byEvent.set(event, pkg);
    for (const ct of pkg.upstream?.contentTypes ?? []) if (!this.notifyReaders.has(ct)) this.notifyReaders.set(ct, pkg);
  }

  get(event: string): EventPackage | undefined {
    return this.byEvent.get(event);
  }

  /** Registered event names, in registration order (for Allow-Events). */
  get events(): string[] {
    return [...this.byEvent.keys()];
  }

  all(): IterableIterator<EventPackage> {
    return this.byEvent.values();
  }

  /** Content types the packages render (for Accept in OPTIONS answers). */
  get contentTypes(): string[] {
    const out = new Set<string>();
    for (const p of this.byEvent.values()) for (const c of p.contentTypes) out.add(c);
    return [...out];
  }

  /** Events that take PUBLISH (RFC 3903). */
  get publishEvents(): string[] {
    return this.eventsWith((p) => p.publish !== undefined);
  }

  /** Content types PUBLISH may carry, over every package (RFC 3261 §11.2 Accept). */
  get publishContentTypes(): string[] {
    const out = new Set<string>();
    for (const p of this.byEvent.values()) for (const c of p.publish?.contentTypes ?? []) out.add(c);
    return [...out];
  }

  /** Events whose NOTIFY bodies are read from upstream. */
  get upstreamEvents(): string[] {
    return this.eventsWith((p) => p.upstream !== undefined);
  }

  /** Content types upstream NOTIFYs may carry (Accept in a 415). */
  get upstreamContentTypes(): string[] {
    return [...this.notifyReaders.keys()];
  }

  /** Events served as resource lists (RFC 4662). */
  get listEvents(): string[] {
    return this.eventsWith((p) => p.lists !== undefined);
  }

  /**
   * An upstream NOTIFY's body read by the package whose format its
   * Content-Type names. Never throws.
   */
  readNotifyBody(request: SipRequest): NotifyBodyOutcome {
    if (request.body.length === 0) return { ok: true, body: NONE };
    const ct = request.headers.get('content-type');
    const media = ct === undefined ? null : parseMediaType(ct);
    if (media === null) return { ok: false, status: 400, reason: 'Bad Request - missing or invalid Content-Type' };
    const type = `${media.type}/${media.subtype}`;
    const reader = this.notifyReaders.get(type)?.upstream;
    if (reader === undefined) return { ok: false, status: 415, reason: 'Unsupported Media Type' };
    try {
      return { ok: true, body: reader.read(request.body, type) };
    } catch (error) {
      const status = error instanceof BodyError && error.status === 413 ? 413 : 400;
      const detail = error instanceof Error ? error.message : 'unreadable body';
      return { ok: false, status, reason: safeReason(status === 413 ? 'Request Entity Too Large' : 'Bad Request', detail) };
    }
  }

  private eventsWith(test: (p: EventPackage) => boolean): string[] {
    const out: string[] = [];
    for (const [event, p] of this.byEvent) if (test(p)) out.push(event);
    return out;
  }
}
