/**
 * Event packages plug into the notifier (RFC 6665 §7). The notifier knows
 * subscriptions, dialogs and timers; a package knows its bodies: which
 * formats it makes, and how to render a resource's full state in one.
 */
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
