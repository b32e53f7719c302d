/**
 * Event packages are the unit of extension (RFC 6665 §7; as Kamailio's
 * pres_ev): the notifier knows subscriptions, dialogs and timers, the
 * publication store entity-tags and expiry, the upstream watcher its
 * dialogs; a package knows its bodies: the formats it makes and how it
 * renders a resource's full state for each watcher profile, and, when it
 * takes state from SIP, how it reads a PUBLISH body and composes several
 * publications (publish), what of a publication it persists, and how it
 * reads an upstream NOTIFY body (upstream). Packages are registered in one
 * PackageRegistry (package-registry.ts) that all three dispatch by.
 */
import type { Call, RichState, TelephonyState } from '../core/person-state.js';
import type { MediaType } from '../sip/header-values.js';
import type { SipResponse } from '../sip/message.js';
import type { InboundRequest } from './stack-port.js';
import type { WatcherInfo } from './watcher-profile.js';

/** A body format a subscription was granted; packages hand out shared instances. */
export interface BodyFormat {
  readonly contentType: string;
  /**
   * Package-specific rendering variant, named for the output profile it
   * renders for ('rfc', 'cisco' in presence; 'rfc', 'polycom', 'asterisk' in
   * dialog; see watcher-profile.ts). Rendering caches key by it.
   */
  readonly variant: string;
}

export interface RenderContext {
  /** The URI the watcher subscribed to (the document's entity). */
  readonly entity: string;
  readonly format: BodyFormat;
  /** 0 for the first NOTIFY of the subscription, +1 for each one after. */
  readonly version: number;
  /** The subscription rendered for, as an opaque key (packages keeping per-subscription state use a WeakMap). */
  readonly owner?: object;
}

/** Where state read from SIP bodies goes (core's PresenceHub). */
export interface PublishSink {
  /** `source`: the hub source (PresenceHub's default 'publish' when absent; `publish@<node>` in a cluster). */
  setSip(personId: string, rich: RichState | undefined, source?: string): void;
  setTelephony(personId: string, telephony: TelephonyState | undefined, source?: string): void;
}

/** What a package's PUBLISH body parser is told. */
export interface PublishContext {
  /** The origin stamped on the state (`publish:<address>`). */
  readonly origin: string;
  /** ms epoch */
  readonly at: number;
  /** Largest body accepted (default: the body codecs' limit). */
  readonly maxBytes?: number;
}

/**
 * How a package takes PUBLISH (RFC 3903). `S` is one publication's state.
 * A package without it is not publishable: PUBLISH for it gets 489.
 */
export interface PublishRules<S> {
  /** Content types PUBLISH may carry (anything else 415, these in Accept). */
  readonly contentTypes: readonly string[];
  /**
   * One publication's state from its body; `previous` is its state before
   * (a partial body updates it). Throws BodyError for a bad body.
   */
  parse(body: Buffer, ctx: PublishContext, previous: S | undefined): S;
  /** RFC 3903 §2 compositor: a resource's live publications into `sink` (none: the source cleared). */
  compose(sink: PublishSink, resource: string, states: readonly S[]): void;
  /** The state as the saved record's JSON-able `state` object. */
  save(state: S): Record<string, unknown>;
  /** A saved `state` object back, undefined when it does not look like one (the publication is dropped). */
  load(saved: Record<string, unknown>): S | undefined;
}

/** A NOTIFY body from upstream (a PBX or presence server), read; the upstream watcher turns it into core state. */
export interface NotifyReading {
  /** The body format's name ('pidf', 'dialog'), for logs. */
  readonly kind: string;
  /** A versioned document (RFC 4235 §4.1): older ones are ignored, a partial one needs the one before it. */
  readonly sequence?: { readonly version: number; readonly partial: boolean };
  /** The line state; `previous` is the calls the subscription had (a partial document updates them). */
  telephony(previous: readonly Call[] | undefined, origin: string, at: number): TelephonyState;
  /** Rich presence beside the line (activities, note), when the format carries it. */
  rich?(origin: string, at: number): RichState;
}

/** How a package reads upstream NOTIFY bodies. */
export interface NotifyRules {
  /** Content types it reads (the union over packages goes in a 415's Accept). */
  readonly contentTypes: readonly string[];
  /** Read a body of one of `contentTypes`. Throws BodyError for a bad body. */
  read(body: Buffer, contentType: string): NotifyReading;
}

export interface EventPackage {
  /** Event package name, lower-case (the Event header token). */
  readonly event: string;
  /** Content types it can produce, preferred first; the first is the default without Accept. */
  readonly contentTypes: readonly string[];
  /**
   * The format for a watcher's Accept list, undefined when it names nothing we make (406).
   * `accept` is undefined when the SUBSCRIBE had no Accept header (use the default, RFC 6665 §7.2).
   * `watcher` (User-Agent, a profile the caller decided) selects the output profile.
   */
  negotiate(accept: readonly MediaType[] | undefined, watcher?: WatcherInfo): BodyFormat | undefined;
  /** Full state of `resource` (RFC 6665 §4.2.2: every NOTIFY carries it). */
  render(resource: string, ctx: RenderContext): Buffer;
  /** The notifier no longer has any subscription to `resource` (drop caches). */
  release?(resource: string): void;
  /**
   * The notifier resource a subscription to person `resource` is kept under,
   * when the package's state is not the person's view (watcherinfo): its
   * changes then reach the package's watchers only. Default: `resource`.
   */
  resourceOf?(resource: string): string;
  /** Whether `req` may subscribe to `resource` in this package: a refusal (403), or undefined. */
  authorize?(req: InboundRequest, resource: string): SipResponse | undefined;
  /**
   * A SUBSCRIBE (initial or refresh) to person `resource` carries a body
   * (RFC 6665 §7.2.1 lets packages define one, e.g. a feature key request):
   * act on it and return undefined, or return the refusal. Without this, bodies are ignored.
   */
  subscribeBody?(req: InboundRequest, resource: string): SipResponse | undefined;
  /** PUBLISH for this event (RFC 3903); without it, 489. */
  readonly publish?: PublishRules<unknown>;
  /** NOTIFY bodies from upstream subscriptions and unsolicited NOTIFYs; without it, not read. */
  readonly upstream?: NotifyRules;
  /**
   * Served as resource lists too (RFC 4662). `restore`: a saved list
   * subscription can be made live after a restart (false when its members'
   * body versions would have to be kept, as dialog-info's).
   */
  readonly lists?: { readonly restore: boolean };
  /** The notifier is closing: drop listeners the package holds (winfo hears of subscriptions). */
  close?(): void;
}

function specificity(range: MediaType, type: string, subtype: string): number {
  const rt = range.type.toLowerCase();
  const rs = range.subtype.toLowerCase();
  if (rt === '*' && rs === '*') return 1;
  if (rt !== type) return 0;
  if (rs === '*') return 2;
  return rs === subtype ? 3 : 0;
}

/**
 * The offered content type a watcher prefers: highest q (the most specific
 * matching range decides a type's q), ties broken by our order. Undefined
 * when every offered type is unmatched or refused with q=0.
 */
export function chooseContentType(accept: readonly MediaType[], offered: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestQ = 0;
  for (const candidate of offered) {
    const slash = candidate.indexOf('/');
    const type = candidate.slice(0, slash);
    const subtype = candidate.slice(slash + 1);
    let spec = 0;
    let q = 0;
    for (const range of accept) {
      const s = specificity(range, type, subtype);
      if (s > spec) {
        spec = s;
        q = range.q;
      }
    }
    if (spec > 0 && q > bestQ) {
      best = candidate;
      bestQ = q;
    }
  }
  return best;
}
