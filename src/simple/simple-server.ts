/**
 * The SIMPLE server: routes requests from the SIP stack to the notifier
 * (SUBSCRIBE), the publication store (PUBLISH) and small answers (OPTIONS,
 * stray NOTIFY, methods we do not serve), and feeds view changes from the
 * PresenceHub to the notifier.
 */
import type { Directory } from '../core/directory.js';
import type { PresenceHub } from '../core/presence-hub.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { TimerWheel } from '../util/timer-wheel.js';
import { DialogPackage } from './dialog-package.js';
import { Notifier, type HostLookup, type NotifierOptions, type NotifyObserver, type RestoredResourceKind } from './notifier.js';
import { PresencePackage } from './presence-package.js';
import { WatcherInfoPackage, winfoPersonOf } from './winfo-package.js';
import { FEATURE_EVENT, FeatureEventPackage } from './feature-package.js';
import type { PackageRegistry } from './package-registry.js';
import { Publications, type PublicationSnapshot, type PublishObserver } from './publications.js';
import type { SubscriptionSnapshot } from './subscription.js';
import { reply, type ExpiryBounds } from './sip-util.js';
import type { InboundRequest, SimpleStack } from './stack-port.js';
import { WatcherProfileSelector, type WatcherProfile, type WatcherProfileRule } from './watcher-profile.js';
import type { SipResponse } from '../sip/message.js';
import { parseNameAddr, parseUri } from '../sip/uri.js';
import { unsupportedRequirements } from '../sip/option-tags.js';

export interface SimpleServerConfig {
  /** Our SIP domain (informational here; the directory decides what is local). */
  domain?: string;
  /** Host for our Contact when the listener is bound to 0.0.0.0 or behind NAT. */
  contactHost?: string;
  subscriptions: ExpiryBounds;
  publications: ExpiryBounds;
  /** Output profile rules by User-Agent, tried before the built-in ones. */
  watcherProfiles?: readonly WatcherProfileRule[];
  /** Serve the presence.winfo package (RFC 3857); default false. */
  watcherInfo?: boolean;
  /** Serve as-feature-event (desk phone DND key sync); default false. */
  featureKeys?: boolean;
}

/** What the access check says about a request (the trunks layer decides; see app.ts). */
export type AccessVerdict =
  | { allow: true; trunk?: TrunkTraits; privileged?: 'trusted' | 'admin' }
  | { allow: false; response: SipResponse; /** answer only after this many ms (a throttled challenge) */ delayMs?: number };

/** The parts of a trunk that change how its requests are served. */
export interface TrunkTraits {
  name: string;
  /** The trunk may SUBSCRIBE/PUBLISH/NOTIFY to us ('inbound' direction). */
  inbound: boolean;
  /** NOTIFY outside any of our subscriptions is accepted (Cisco "unsolicited notification"). */
  unsolicitedNotify: boolean;
  /** PUBLISH is accepted (Asterisk outbound_publish). */
  inboundPublish: boolean;
  /** The body flavour its SUBSCRIBEs get (wins over User-Agent rules). */
  output?: WatcherProfile;
}

/** The upstream watcher's entry points (src/simple/upstream-watcher.ts). */
export interface UpstreamNotifyHandler {
  /** True when the NOTIFY belonged to one of our subscriptions (and was answered). */
  handleNotify(req: InboundRequest): boolean;
  handleUnsolicited(req: InboundRequest, trunk: string, personId: string): void;
}

export interface SimpleServerOptions {
  stack: SimpleStack;
  directory: Directory;
  store: PresenceHub;
  config: SimpleServerConfig;
  logger: Logger;
  /** The clock (tests drive it by hand); default systemClock. */
  clock?: Pick<Clock, 'now'>;
  /** Timer wheel for expiries (tests inject one with a manual clock); made here otherwise. */
  wheel?: TimerWheel;
  /** Host name resolution for watcher Contacts (default dns.lookup). */
  lookup?: HostLookup;
  /** Who may send what (default: everyone). */
  access?: (req: InboundRequest) => AccessVerdict;
  /** NOTIFYs for the gateway's own upstream subscriptions. */
  upstream?: UpstreamNotifyHandler;
  /** The registry the packages are registered in (shared with the upstream watcher, built before this server); a new one otherwise. */
  packages?: PackageRegistry;
  /** Told NOTIFY and PUBLISH outcomes (the metrics side, built before this server). */
  observers?: SimpleObservers;
  /** This server as one node of several (a cluster); absent: a single node, as before. */
  cluster?: SimpleClusterOptions;
}

/**
 * What makes the SIMPLE server one node of several sharing one store
 * (src/store/cluster.ts): where its publications go in the hub, and where
 * a request for a dialog or entity-tag another node holds is looked up.
 */
export interface SimpleClusterOptions {
  /** The hub source this node's publications compose under: publishSourceOf(nodeId) (src/core/publish-source.ts). */
  publishSource?: string;
  /** A publication by entity-tag held elsewhere, claimed for this node (Ownership.claimPublication). */
  resolvePublication?: (etag: string) => Promise<PublicationSnapshot | undefined>;
  /** A watcher subscription by our To tag held elsewhere, claimed for this node (Ownership.claimSubscription); see NotifierOptions.resolveUnknown. */
  resolveSubscription?: (id: string, callId: string) => Promise<SubscriptionSnapshot | undefined>;
  /**
   * What a subscription resolveSubscription found is to; default: a person
   * of the directory or their watcher information, nothing else (a list
   * subscription found elsewhere is not taken: 481, its watcher subscribes again).
   */
  kindOf?: (resource: string) => RestoredResourceKind;
}

/** What the metrics side watches of the SIMPLE server. */
export interface SimpleObservers {
  notify?: NotifyObserver;
  publish?: PublishObserver;
}

/** Methods served here (Allow). */
export const ALLOWED_METHODS: readonly string[] = ['SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'OPTIONS'];

/** SIP methods we know but do not serve: 405 (anything else is 501, RFC 3261 §8.2.1). */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'INVITE',
  'BYE',
  'CANCEL',
  'REGISTER',
  'INFO',
  'PRACK',
  'UPDATE',
  'MESSAGE',
  'REFER',
]);

const NO_EXTENSIONS: ReadonlySet<string> = new Set();
const EVENTLIST_ONLY: ReadonlySet<string> = new Set(['eventlist']);

export class SimpleServer {
  readonly notifier: Notifier;
  readonly publications: Publications;
  private readonly wheel: TimerWheel;
  private readonly logger: Logger;
  private readonly unsubscribeStore: () => void;
  private readonly acceptList: string;
  private readonly access: ((req: InboundRequest) => AccessVerdict) | undefined;
  private readonly directory: Directory;
  private readonly upstream: UpstreamNotifyHandler | undefined;
  /** The as-feature-event package, when served (its forwarding settings are kept by persistence-wiring.ts). */
  readonly features: FeatureEventPackage | undefined;
  private closed = false;
  private listTagsSeen: readonly string[] | undefined = undefined;
  private subscribeTags: ReadonlySet<string> = EVENTLIST_ONLY;

  constructor(options: SimpleServerOptions) {
    const { directory, store, config, logger } = options;
    this.logger = logger;
    this.directory = directory;
    this.access = options.access;
    this.upstream = options.upstream;
    const clock = options.clock ?? systemClock;
    const now = (): number => clock.now();
    this.wheel =
      options.wheel ??
      new TimerWheel({ clock: { now }, onError: (err: unknown) => logger.error({ err }, 'expiry callback failed') });
    const resolveResource = (user: string | undefined, host: string): string | undefined =>
      directory.findBySip(user, host)?.id;

    const notifierOptions: NotifierOptions = {
      sender: options.stack,
      wheel: this.wheel,
      logger,
      expires: config.subscriptions,
      resolveResource,
      clock,
    };
    if (options.lookup !== undefined) notifierOptions.lookup = options.lookup;
    if (config.contactHost !== undefined) notifierOptions.contactHost = config.contactHost;
    if (options.packages !== undefined) notifierOptions.packages = options.packages;
    if (options.observers?.notify !== undefined) notifierOptions.observer = options.observers.notify;
    const exists = (id: string): boolean => directory.get(id) !== undefined;
    const cluster = options.cluster;
    if (cluster?.resolveSubscription !== undefined) {
      notifierOptions.resolveUnknown = cluster.resolveSubscription;
      notifierOptions.kindOf =
        cluster.kindOf ??
        ((resource) => {
          const watched = winfoPersonOf(resource);
          return exists(resource) || (watched !== undefined && exists(watched)) ? 'resource' : undefined;
        });
    }
    this.notifier = new Notifier(notifierOptions);
    const packageOptions = {
      profiles: new WatcherProfileSelector(config.watcherProfiles ?? []),
      // The single-dialog (Asterisk-style) profile names the dialog after the extension.
      extensionOf: (resource: string) => directory.get(resource)?.extension,
    };
    // The event packages (event-package.ts): one registration each; notifier, publications and upstream dispatch by them.
    this.notifier.register(new PresencePackage(store, packageOptions));
    this.notifier.register(new DialogPackage(store, packageOptions));
    if (config.featureKeys === true) {
      this.features = new FeatureEventPackage({
        source: store,
        sink: store,
        resolve: resolveResource,
        extensionOf: packageOptions.extensionOf,
        changed: (personId) => this.notifier.resourceChanged(personId, FEATURE_EVENT),
        clock,
      });
      this.notifier.register(this.features);
    }
    if (config.watcherInfo === true) this.notifier.register(new WatcherInfoPackage({ notifier: this.notifier, resolve: resolveResource, clock }));

    this.publications = new Publications({
      sink: store,
      packages: this.notifier.packages,
      wheel: this.wheel,
      logger,
      expires: config.publications,
      resolveResource,
      resourceExists: exists,
      clock,
      ...(options.observers?.publish !== undefined ? { observer: options.observers.publish } : {}),
      ...(cluster?.publishSource !== undefined ? { source: cluster.publishSource } : {}),
      ...(cluster?.resolvePublication !== undefined ? { resolveUnknown: cluster.resolvePublication } : {}),
    });
    // RFC 3261 §11.2: Accept lists the bodies we take in requests (PUBLISH); what NOTIFYs carry is negotiated per SUBSCRIBE.
    this.acceptList = this.notifier.packages.publishContentTypes.join(', ');

    this.unsubscribeStore = store.onChange((personId) => this.notifier.resourceChanged(personId));
    options.stack.onRequest((req) => this.handleRequest(req));
  }

  /** Subscriptions by event package, and publications, for tests and metrics. */
  counts(): { subscriptions: Record<string, number>; publications: number } {
    return { subscriptions: this.notifier.counts(), publications: this.publications.size };
  }

  handleRequest(req: InboundRequest): void {
    if (this.closed) return;
    const { request } = req;
    try {
      if (request.method === 'ACK') return;
      // Our own upstream subscriptions' NOTIFYs come from the trunks we subscribed at.
      if (request.method === 'NOTIFY' && this.upstream?.handleNotify(req) === true) return;
      let trunk: TrunkTraits | undefined;
      if (this.access !== undefined) {
        const verdict = this.access(req);
        if (!verdict.allow) {
          const { response, delayMs } = verdict;
          if (delayMs !== undefined && delayMs > 0) setTimeout(() => this.closed || req.respond(response), delayMs).unref();
          else req.respond(response);
          return;
        }
        trunk = verdict.trunk;
        if (trunk?.output !== undefined) req.watcherProfile = trunk.output;
        if (verdict.privileged !== undefined) req.privileged = verdict.privileged;
        if (trunk !== undefined && !trunk.inbound && request.method !== 'OPTIONS') {
          req.respond(reply(request, 403, undefined, { reason: 'Forbidden - trunk not configured for inbound requests' }));
          return;
        }
      }
      if (this.refuseExtensions(req)) return;
      switch (request.method) {
        case 'SUBSCRIBE':
          this.notifier.handleSubscribe(req);
          return;
        case 'PUBLISH':
          if (trunk !== undefined && !trunk.inboundPublish) {
            req.respond(reply(request, 403, undefined, { reason: 'Forbidden - PUBLISH not accepted from this trunk' }));
            return;
          }
          this.publications.handlePublish(req);
          return;
        case 'OPTIONS': {
          const headers: Array<[string, string]> = [
            ['allow', ALLOWED_METHODS.join(', ')],
            ['accept', this.acceptList],
            ['allow-events', this.notifier.events.join(', ')],
          ];
          // RFC 3261 §11.2: the answer to OPTIONS lists the extensions we support.
          const supported = [...this.supportedFor('SUBSCRIBE')];
          if (supported.length > 0) headers.push(['supported', supported.join(', ')]);
          req.respond(reply(request, 200, headers));
          return;
        }
        case 'NOTIFY':
          this.handleStrayNotify(req, trunk);
          return;
        default:
          if (KNOWN_METHODS.has(request.method)) {
            req.respond(reply(request, 405, [['allow', ALLOWED_METHODS.join(', ')]]));
          } else {
            req.respond(reply(request, 501));
          }
      }
    } catch (error) {
      this.logger.error({ err: error, method: request.method, callId: request.headers.get('call-id') }, 'request handling failed');
      try {
        req.respond(reply(request, 500));
      } catch {
        // the transaction may already be answered
      }
    }
  }

  /** Option tags a request of `method` may Require here. */
  supportedFor(method: string): ReadonlySet<string> {
    if (method !== 'SUBSCRIBE' || !this.notifier.servesLists) return NO_EXTENSIONS;
    // RFC 4662 §4.1: eventlist applies to SUBSCRIBE where resource lists are served; the list server may add more.
    const extra = this.notifier.listOptionTags;
    if (extra !== this.listTagsSeen) {
      this.listTagsSeen = extra;
      this.subscribeTags = new Set(['eventlist', ...extra]);
    }
    return this.subscribeTags;
  }

  /**
   * RFC 3261 §8.2.2.3: a Require naming an extension we do not support gets
   * 420 Bad Extension listing it in Unsupported. Methods we do not serve
   * were answered 405/501 before (§8.2.1 comes first).
   */
  private refuseExtensions(req: InboundRequest): boolean {
    const { request } = req;
    if (!ALLOWED_METHODS.includes(request.method)) return false;
    const unsupported = unsupportedRequirements(request.headers, this.supportedFor(request.method));
    if (unsupported.length === 0) return false;
    req.respond(reply(request, 420, [['unsupported', unsupported.join(', ')]]));
    return true;
  }

  /** A NOTIFY that matched none of our subscriptions: unsolicited state from a trunk allowed to push, else 481. */
  private handleStrayNotify(req: InboundRequest, trunk: TrunkTraits | undefined): void {
    const { request } = req;
    if (trunk?.unsolicitedNotify === true && this.upstream !== undefined && request.headers.has('to')) {
      const to = parseNameAddr(request.headers.get('to') ?? '');
      const target = parseUri(request.uri);
      // The person is named by the Request-URI, or by To when the Request-URI is the gateway itself.
      const person =
        (target?.user !== undefined ? this.directory.findBySip(target.user, target.host) : undefined) ??
        (to?.uri.user !== undefined ? this.directory.findBySip(to.uri.user, to.uri.host) : undefined);
      if (person === undefined) {
        req.respond(reply(request, 404, undefined, { reason: 'Not Found - no such user' }));
        return;
      }
      this.upstream.handleUnsolicited(req, trunk.name, person.id);
      return;
    }
    // No dialog of ours matches (RFC 6665 §4.1.3).
    req.respond(reply(request, 481, undefined, { reason: 'Subscription Does Not Exist' }));
  }

  /** Stop expiries and notifications. No terminating NOTIFYs: subscriptions are to survive a restart. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribeStore();
    this.notifier.close();
    this.publications.close();
    this.wheel.close();
  }
}
