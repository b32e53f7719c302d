/**
 * The composition root: builds the directory, the canonical state, the SIP
 * stack and the SIMPLE server from a validated config, and stops them again.
 */
import type { GatewayConfig, UserConfig } from './config/schema.js';
import { Directory, normalizeAor, type Person } from './core/directory.js';
import { PresenceStore } from './core/presence-store.js';
import { SimpleServer } from './simple/sip-app.js';
import { SipStack } from './sip/stack.js';
import { parseUri } from './sip/uri.js';
import type { Logger } from './util/logger.js';

export interface Gateway {
  readonly stack: SipStack;
  readonly directory: Directory;
  readonly store: PresenceStore;
  readonly simple: SimpleServer;
  stop(): Promise<void>;
}

/** A configured user as a person: AoRs normalized, sip:<id>@<domain> when none are given. */
export function personFromConfig(user: UserConfig, domain: string): Person {
  const aors = (user.sip ?? [`sip:${user.id}@${domain}`]).map((text) => {
    const uri = parseUri(text);
    if (uri === null) throw new Error(`users[${user.id}].sip: "${text}" is not a SIP URI`);
    return normalizeAor(uri.scheme, uri.user, uri.host);
  });
  const person: Person = { id: user.id, displayName: user.displayName, sipAors: aors };
  if (user.extension !== undefined) person.extension = user.extension;
  return person;
}

export async function startGateway(config: GatewayConfig, logger: Logger): Promise<Gateway> {
  const directory = new Directory(
    config.users.map((u) => personFromConfig(u, config.sip.domain)),
    { domains: [config.sip.domain, ...config.sip.aliases] },
  );
  const store = new PresenceStore(directory);
  const stack = await SipStack.start({
    listen: config.sip.listen.map((l) => ({ protocol: l.transport, address: l.address, port: l.port })),
    logger,
    maxMessageSize: config.sip.maxMessageSize,
    maxConnections: config.sip.maxConnections,
    udpBufferBytes: config.sip.udpBufferBytes,
    userAgent: config.sip.userAgent,
  });
  for (const l of config.sip.listen) {
    const bound = stack.localEndpoint(l.transport);
    logger.info({ transport: l.transport, address: bound?.address ?? l.address, port: bound?.port ?? l.port }, 'sip listening');
  }
  const simple = new SimpleServer({
    stack,
    directory,
    store,
    config: { domain: config.sip.domain, subscriptions: config.subscriptions, publications: config.publications },
    logger,
  });
  return {
    stack,
    directory,
    store,
    simple,
    async stop() {
      // A stop ends nothing towards watchers: no terminating NOTIFYs (they resubscribe or, later, we resume).
      simple.close();
      await stack.close();
    },
  };
}
