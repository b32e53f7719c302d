/**
 * Composition of the trunk side (part of the composition root): the trunk
 * registry with its OPTIONS pings, access control for inbound requests, the
 * upstream watcher (SUBSCRIBE at the PBX per carried person, into core's
 * telephony state) and the upstream publisher (Teams presence PUBLISHed to
 * presence servers). SIP and core meet here only through the PresenceStore.
 */
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { GatewayConfig } from './config/schema.js';
import { effectiveAccessMode } from './trunks/config.js';
import type { Directory, Person } from './core/directory.js';
import type { PresenceView } from './core/person-state.js';
import type { PresenceStore } from './core/presence-store.js';
import type { AccessVerdict, TrunkTraits } from './simple/sip-app.js';
import type { InboundRequest, RequestSender } from './simple/stack-port.js';
import type { Endpoint } from './sip/message.js';
import type { TlsClientOptions } from './sip/stack.js';
import { hostForSip } from './sip/transport/address.js';
import { clientContext } from './sip/transport/tls.js';
import type { TrunkConfig } from './trunks/config.js';
import type { TrunkTlsSettings } from './trunks/trunk.js';
import { UpstreamPublisher, type PublishTarget } from './simple/upstream-publisher.js';
import type { PackageRegistry } from './simple/package-registry.js';
import { UpstreamWatcher, type UpstreamTarget } from './simple/upstream-watcher.js';
import { AccessControl, TrunkRegistry, type Trunk, type TrunkStatus } from './trunks/index.js';
import type { SecurityLog } from './sip/security-log.js';
import { CidrSet } from './trunks/cidr.js';
import type { Logger } from './util/logger.js';
import type { TimerWheel } from './util/timer-wheel.js';

export interface TrunkSide {
  readonly registry: TrunkRegistry;
  readonly access: AccessControl;
  /** The SIMPLE server's access hook. */
  verdict(req: InboundRequest): AccessVerdict;
  statuses(): TrunkStatus[];
}

export interface UpstreamSide {
  readonly watcher: UpstreamWatcher;
  readonly publisher: UpstreamPublisher;
  /**
   * Stop: publications removed and upstream subscriptions ended, unless persistence took them over
   * first (persistence-wiring.ts keepUpstream: they are then reused at the next start).
   */
  close(): Promise<void>;
}

/** The gateway's identity towards trunks (From of pings, SUBSCRIBEs, PUBLISHes). */
export function gatewayIdentity(config: GatewayConfig): string {
  return `sip:presence-gateway@${config.sip.domain}`;
}

function traitsOf(trunk: Trunk): TrunkTraits {
  return {
    name: trunk.name,
    inbound: trunk.has('inbound'),
    unsolicitedNotify: trunk.traits.unsolicitedNotify,
    inboundPublish: trunk.traits.inboundPublish,
    output: trunk.traits.output,
  };
}

/** The stack as the trunk side uses it: requests, and TLS client options per destination (SipStack fits). */
export interface TrunkStack extends RequestSender {
  setTlsClientOptions?(destination: string, options: TlsClientOptions | undefined): void;
  /** connection hygiene: a request on this connection was let in */
  trustConnection?(connectionId: string): void;
  /** connection hygiene: sources exempt from the per-source cap and stranger rules */
  setConnectionExempt?(exempt: (address: string) => boolean): void;
  setRateLimitExemption?(exempt: ((source: Endpoint) => boolean) | undefined): void;
}

/** Read a PEM file named in trunks[i].tls, with an error naming the trunk, the key and the fix. */
function readTrunkPem(trunk: string, key: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`trunks[${trunk}].tls.${key}: cannot read ${file} (${code}); give the path of a readable PEM file`);
  }
}

/** The PEM text of every trunk's tls section, read once at start (an unreadable file fails the start). */
export function trunkTlsPems(trunks: readonly TrunkConfig[]): Map<string, { ca?: string; cert?: string; key?: string }> {
  const out = new Map<string, { ca?: string; cert?: string; key?: string }>();
  for (const t of trunks) {
    const tls = t.tls;
    if (tls === undefined) continue;
    const pems: { ca?: string; cert?: string; key?: string } = {};
    if (tls.caPath !== undefined) pems.ca = readTrunkPem(t.name, 'caPath', tls.caPath);
    if (tls.certPath !== undefined && tls.keyPath !== undefined) {
      pems.cert = readTrunkPem(t.name, 'certPath', tls.certPath);
      pems.key = readTrunkPem(t.name, 'keyPath', tls.keyPath);
    }
    out.set(t.name, pems);
  }
  return out;
}

/** TLS client options for a trunk's settings and its PEMs. */
export function trunkTlsOptions(settings: TrunkTlsSettings, pems: { ca?: string; cert?: string; key?: string } | undefined): TlsClientOptions {
  const o: TlsClientOptions = { rejectUnauthorized: settings.verify };
  if (pems?.ca !== undefined) o.ca = pems.ca;
  if (pems?.cert !== undefined && pems.key !== undefined) {
    o.cert = pems.cert;
    o.key = pems.key;
  }
  if (settings.servername !== undefined) o.servername = settings.servername;
  return o;
}

/** "address:port" as SipStack.setTlsClientOptions takes it (IPv6 in brackets). */
function destinationKey(endpoint: Endpoint): string {
  return `${hostForSip(endpoint.address)}:${endpoint.port}`;
}

/**
 * One TLS handshake to `endpoint` with `options`, to say why connections fail:
 * the error message (untrusted certificate, name mismatch, refused, ...), or
 * undefined when it connects.
 */
export function probeTlsConnection(endpoint: Endpoint, options: TlsClientOptions, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const o = clientContext(endpoint.address, endpoint.port, options);
    let done = false;
    const finish = (why: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const socket = tlsConnect(o);
    const timer = setTimeout(() => finish('the TLS handshake timed out'), timeoutMs);
    timer.unref();
    socket.once('secureConnect', () => {
      // TLS 1.3: a server refusing our certificate says so only after the handshake
      socket.once('data', () => finish(undefined));
      setTimeout(() => finish(undefined), 200).unref();
    });
    socket.once('error', (err) => finish(explainTlsError(err)));
    socket.once('close', () => finish(done ? undefined : 'the peer closed the connection during the TLS handshake'));
  });
}

/** A TLS failure in words an administrator can act on (OpenSSL's alert text trimmed, the setting to check named). */
export function explainTlsError(err: Error): string {
  const alert = /alert ([a-z ]+?)(?::|$)/i.exec(err.message)?.[1]?.trim();
  if (alert !== undefined) {
    if (alert === 'certificate required') return 'the peer requires a client certificate (TLS alert "certificate required"); set tls.certPath and tls.keyPath';
    if (alert === 'unknown ca' || alert === 'bad certificate' || alert === 'certificate unknown') {
      return `the peer refused our client certificate (TLS alert "${alert}"); check tls.certPath and the CA the peer trusts`;
    }
    return `the peer ended the handshake (TLS alert "${alert}")`;
  }
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(code)) {
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'check tls.servername' : 'check tls.caPath (or verify: false)';
    return `${err.message}; ${hint}`;
  }
  return err.message;
}

/** The registry and access control: built before the SIMPLE server, which asks them about every request. */
export function createTrunkSide(
  config: GatewayConfig,
  stack: TrunkStack,
  logger: Logger,
  wheel: TimerWheel,
  security?: SecurityLog,
): TrunkSide {
  const pems = trunkTlsPems(config.trunks);
  /** client options per TLS destination of a trunk, for the failure probe */
  const tlsByDestination = new Map<string, TlsClientOptions>();
  const trunkLogger = logger.child({ component: 'trunks' });
  const registry = new TrunkRegistry({
    trunks: config.trunks,
    sender: stack,
    fromUri: gatewayIdentity(config),
    logger: trunkLogger,
    wheel,
    onTlsTarget: (endpoint, settings) => {
      const key = destinationKey(endpoint);
      const options = trunkTlsOptions(settings, pems.get(settings.trunk));
      const before = tlsByDestination.get(key);
      tlsByDestination.set(key, options);
      stack.setTlsClientOptions?.(key, options);
      if (before === undefined) {
        trunkLogger.debug(
          { trunk: settings.trunk, destination: key, servername: options.servername, mutual: options.cert !== undefined, verify: settings.verify },
          'tls client options for trunk destination',
        );
      }
    },
    probeTls: (endpoint) => probeTlsConnection(endpoint, tlsByDestination.get(destinationKey(endpoint)) ?? {}),
  });
  const mode = effectiveAccessMode(config.sip.access, config.trunks);
  const access = new AccessControl({
    registry,
    config: config.sip.access,
    mode,
    defaultRealm: config.sip.domain,
    logger: logger.child({ component: 'access' }),
    ...(security !== undefined ? { security } : {}),
  });
  // trunks and trusted networks may hold many connections and idle on them
  const trusted = new CidrSet(config.sip.access.trusted);
  stack.setConnectionExempt?.((address) => trusted.has(address) || registry.fromSource({ protocol: 'tcp', address, port: 0 }) !== undefined);
  // Open access on loopback only (the demo, tests) is harmless; on a reachable address it is worth a warning.
  const loopbackOnly = config.sip.listen.every((l) => l.address.startsWith('127.') || l.address === '::1');
  if (mode === 'open' && !loopbackOnly) {
    logger.warn('sip.access is open: requests are accepted from any address (set sip.access.mode: restricted)');
  }
  stack.setRateLimitExemption?.((source) => access.exemptFromRateLimit(source));
  const traits = new Map<Trunk, TrunkTraits>();
  return {
    registry,
    access,
    verdict(req) {
      const d = access.check(req);
      if (!d.allow) return d.delayMs !== undefined ? { allow: false, response: d.response, delayMs: d.delayMs } : { allow: false, response: d.response };
      // OPTIONS, ACK and CANCEL pass unchallenged, so they make no one trusted
      const m = req.request.method;
      if (req.connectionId !== undefined && m !== 'OPTIONS' && m !== 'ACK' && m !== 'CANCEL') stack.trustConnection?.(req.connectionId);
      if (d.trunk === undefined) {
        if (access.isAdmin(d.username)) return { allow: true, privileged: 'admin' };
        return access.isTrusted(req.source.address) ? { allow: true, privileged: 'trusted' } : { allow: true };
      }
      let t = traits.get(d.trunk);
      if (t === undefined) traits.set(d.trunk, (t = traitsOf(d.trunk)));
      return { allow: true, trunk: t };
    },
    statuses: () => registry.statuses(),
  };
}

/** What a publication says, to skip PUBLISHes that would change nothing. */
function publishKey(view: PresenceView | undefined): string {
  if (view === undefined) return '';
  return `${view.basic}|${view.activities.join(',')}|${view.dnd ? 1 : 0}|${view.note ?? ''}`;
}

export interface UpstreamOptions {
  config: GatewayConfig;
  sender: RequestSender;
  trunks: TrunkSide;
  directory: Directory;
  store: PresenceStore;
  wheel: TimerWheel;
  logger: Logger;
  /** The event packages (the SIMPLE server's): upstream NOTIFY bodies are read by them. */
  packages: PackageRegistry;
}

/** Start watching and publishing on every trunk configured for it. */
export function startUpstream(options: UpstreamOptions): UpstreamSide {
  const { config, sender, trunks, directory, store, wheel } = options;
  const logger = options.logger.child({ component: 'upstream' });
  const registry = trunks.registry;
  const fromUri = gatewayIdentity(config);
  const itemNote = (kind: 'subscription' | 'publication') => (trunk: string, personId: string, up: boolean, error?: string) => {
    const t = registry.get(trunk);
    if (t === undefined) return;
    t.noteItem(kind, personId, up);
    if (error !== undefined) t.noteError(error);
    // unknown is not idle: a person whose subscription at the trunk is down has no live line state from it
    if (kind === 'subscription') store.setFeederReachableFor(personId, `trunk:${trunk}`, up);
  };
  const onAuth = (trunk: string, ok: boolean) => registry.get(trunk)?.noteAuth(ok);

  const watcher = new UpstreamWatcher({ sender, wheel, sink: store, packages: options.packages, logger, onItem: itemNote('subscription'), onAuth });
  const publisher = new UpstreamPublisher({ sender, wheel, logger, onItem: itemNote('publication'), onAuth });

  const watching = registry.all().filter((t) => t.has('watch'));
  const publishing = registry.all().filter((t) => t.has('publish'));
  const persons = directory.all();

  for (const trunk of watching) {
    let n = 0;
    for (const person of persons) {
      if (!trunk.carries(person)) continue;
      const target: UpstreamTarget = {
        trunk: trunk.name,
        personId: person.id,
        uri: trunk.userUri(person),
        event: trunk.traits.watchEvent,
        accept: trunk.traits.watchAccept,
        expires: trunk.config.watch.expires,
        fromUri,
        destination: () => trunk.destination(),
        // an explicit transport; else the one resolution (SRV) chose for the initial SUBSCRIBE
        ...(trunk.nextHop.explicitTransport || trunk.nextHop.port !== undefined ? { transport: trunk.nextHop.protocol } : {}),
        ratePerSec: trunk.config.watch.ratePerSec,
        // An outbound proxy that does not Record-Route still has to carry the in-dialog refreshes.
        ...(trunk.config.outboundProxy !== undefined ? { stickyDestination: true } : {}),
        ...(trunk.credentials !== undefined ? { credentials: trunk.credentials } : {}),
      };
      watcher.add(target);
      store.expectTelephony(person.id, `trunk:${trunk.name}`);
      n++;
    }
    logger.info({ trunk: trunk.name, users: n, event: trunk.traits.watchEvent }, 'watching users at trunk');
  }

  // Publishing: what Teams says about each carried person, re-sent when it changes.
  const published = new Map<string, string>();
  const publishTargets = new Map<string, PublishTarget[]>();
  for (const trunk of publishing) {
    for (const person of persons) {
      if (!trunk.carries(person)) continue;
      const target: PublishTarget = {
        trunk: trunk.name,
        personId: person.id,
        uri: trunk.userUri(person),
        expires: trunk.config.publish.expires,
        fromUri,
        flavor: trunk.traits.publishFlavor,
        destination: () => trunk.destination(),
        ratePerSec: trunk.config.watch.ratePerSec,
        ...(trunk.credentials !== undefined ? { credentials: trunk.credentials } : {}),
      };
      const list = publishTargets.get(person.id);
      if (list === undefined) publishTargets.set(person.id, [target]);
      else list.push(target);
    }
  }
  const publishPerson = (person: Pick<Person, 'id'>): void => {
    const targets = publishTargets.get(person.id);
    if (targets === undefined) return;
    const part = store.teamsPart(person.id);
    const key = publishKey(part);
    if (published.get(person.id) === key) return;
    published.set(person.id, key);
    for (const target of targets) publisher.publish(target, part);
  };
  for (const person of persons) publishPerson(person);
  const unsubscribeStore = publishTargets.size > 0 ? store.onChange((personId) => publishPerson({ id: personId })) : () => undefined;

  // A trunk that comes back (OPTIONS answered again, e.g. after a restart) may have lost our
  // subscriptions and publications: refresh them all (a 481 or 412 makes new ones).
  const wasReachable = new Map<string, boolean | undefined>();
  const unsubscribeStatus = registry.onStatus((s) => {
    const before = wasReachable.get(s.name);
    wasReachable.set(s.name, s.reachable);
    if (registry.get(s.name)?.has('watch') === true) store.setFeederReachable(`trunk:${s.name}`, s.reachable !== false);
    if (before === false && s.reachable === true) {
      logger.info({ trunk: s.name }, 'trunk reachable again: refreshing subscriptions and publications');
      const t = registry.get(s.name);
      if (t?.has('watch') === true) watcher.refreshAll(s.name);
      if (t?.has('publish') === true) publisher.refreshAll(s.name);
    }
  });

  return {
    watcher,
    publisher,
    async close() {
      unsubscribeStore();
      unsubscribeStatus();
      await Promise.all([watcher.close(true), publisher.close()]);
    },
  };
}
