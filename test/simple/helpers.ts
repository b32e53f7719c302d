/** Fixtures for the SIMPLE tests: a fake stack, a manual clock, request builders. */
import { Directory } from '../../src/core/directory.js';
import { PresenceHub } from '../../src/core/presence-hub.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type Endpoint, type SipRequest, type SipResponse, type TransportProtocol } from '../../src/sip/message.js';
import { SimpleServer, type SimpleClusterOptions, type SimpleObservers, type SimpleServerConfig } from '../../src/simple/simple-server.js';
import type { InboundRequest, OutboundOptions, SimpleStack } from '../../src/simple/stack-port.js';
import { silentLogger } from '../../src/util/logger.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';

export interface SentRequest {
  request: SipRequest;
  options: OutboundOptions;
  answer(status: number): void;
  answered: boolean;
}

/** Records every response and request; NOTIFYs stay pending until answered. */
export class FakeStack implements SimpleStack {
  handler: ((req: InboundRequest) => void) | undefined;
  readonly sent: SentRequest[] = [];
  /** 'response <status>' and 'request <method>' in the order they happened */
  readonly log: string[] = [];

  onRequest(handler: (req: InboundRequest) => void): void {
    this.handler = handler;
  }

  sendRequest(request: SipRequest, options: OutboundOptions): Promise<SipResponse> {
    this.log.push(`request ${request.method}`);
    return new Promise((resolve) => {
      const entry: SentRequest = {
        request,
        options,
        answered: false,
        answer: (status: number) => {
          if (entry.answered) throw new Error('answered twice');
          entry.answered = true;
          resolve({ kind: 'response', status, reason: 'x', headers: new Headers(), body: Buffer.alloc(0) });
        },
      };
      this.sent.push(entry);
    });
  }

  localEndpoint(protocol: TransportProtocol): Endpoint | undefined {
    return { protocol, address: '192.0.2.10', port: protocol === 'udp' ? 5060 : 5070 };
  }

  /** Deliver a request to the server; returns the responses it produced. */
  deliver(
    request: SipRequest,
    via: { protocol?: TransportProtocol; connectionId?: string; source?: Endpoint } = {},
  ): SipResponse[] {
    const responses: SipResponse[] = [];
    const protocol = via.protocol ?? 'udp';
    const inbound: InboundRequest = {
      request,
      source: via.source ?? { protocol, address: '198.51.100.7', port: 5062 },
      local: { protocol, address: '192.0.2.10', port: protocol === 'udp' ? 5060 : 5070 },
      ...(via.connectionId !== undefined ? { connectionId: via.connectionId } : {}),
      respond: (response: SipResponse) => {
        this.log.push(`response ${response.status}`);
        responses.push(response);
      },
    };
    if (this.handler === undefined) throw new Error('no handler');
    this.handler(inbound);
    return responses;
  }

  /** NOTIFYs not answered yet. */
  pending(): SentRequest[] {
    return this.sent.filter((s) => !s.answered);
  }

  notifies(): SentRequest[] {
    return this.sent.filter((s) => s.request.method === 'NOTIFY');
  }
}

/** Let promise callbacks (NOTIFY responses) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

export const CONFIG: SimpleServerConfig = {
  domain: 'example.com',
  subscriptions: { minExpires: 60, maxExpires: 3600, defaultExpires: 1800 },
  publications: { minExpires: 60, maxExpires: 3600, defaultExpires: 600 },
};

export function makeDirectory(): Directory {
  return new Directory(
    [
      { id: 'alice', displayName: 'Alice', extension: '1001', sipAors: ['sip:alice@example.com'] },
      { id: 'bob', displayName: 'Bob', extension: '1002', sipAors: ['sip:bob@example.com'] },
    ],
    { domains: ['example.com'] },
  );
}

export function makeServer(
  options: {
    lookup?: (host: string) => Promise<string>;
    /** The observers the server is built with, made from its store (the metrics side is built before the server). */
    observers?: (store: PresenceHub) => SimpleObservers;
    /** The server as one node of a cluster (its source and lookups). */
    cluster?: SimpleClusterOptions;
  } = {},
) {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const directory = makeDirectory();
  const store = new PresenceHub(directory, { clock: { now: clock } });
  const stack = new FakeStack();
  const wheel = new TimerWheel({ clock: { now: clock }, autoStart: false });
  const server = new SimpleServer({
    stack,
    directory,
    store,
    config: CONFIG,
    logger: silentLogger(),
    clock: { now: clock },
    wheel,
    ...(options.lookup !== undefined ? { lookup: options.lookup } : {}),
    ...(options.observers !== undefined ? { observers: options.observers(store) } : {}),
    ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
  });
  return {
    stack,
    store,
    server,
    wheel,
    now: clock,
    /** Move the clock and fire due expiries. */
    advance(ms: number): void {
      now += ms;
      wheel.advance();
    },
  };
}

let counter = 0;

export interface SubscribeSpec {
  user?: string;
  host?: string;
  event?: string | null;
  accept?: string[];
  expires?: number | string;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  cseq?: number;
  contact?: string | null;
  recordRoute?: string[];
  body?: string;
}

export function subscribe(spec: SubscribeSpec = {}): SipRequest {
  const n = ++counter;
  const user = spec.user ?? 'alice';
  const host = spec.host ?? 'example.com';
  const h = new Headers();
  h.append('via', `SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKsub${n};rport`);
  h.append('max-forwards', '70');
  h.append('from', `"Console" <sip:console@example.com>;tag=${spec.fromTag ?? `ft${n}`}`);
  h.append('to', `<sip:${user}@${host}>${spec.toTag !== undefined ? `;tag=${spec.toTag}` : ''}`);
  h.append('call-id', spec.callId ?? `call-${n}@198.51.100.7`);
  h.append('cseq', `${spec.cseq ?? 1} SUBSCRIBE`);
  if (spec.event !== null) h.append('event', spec.event ?? 'presence');
  for (const a of spec.accept ?? []) h.append('accept', a);
  if (spec.expires !== undefined) h.append('expires', String(spec.expires));
  if (spec.contact !== null) h.append('contact', spec.contact ?? '<sip:console@198.51.100.7:5062>');
  for (const rr of spec.recordRoute ?? []) h.append('record-route', rr);
  const body = spec.body === undefined ? undefined : Buffer.from(spec.body);
  if (body !== undefined) h.append('content-type', 'text/plain');
  return createRequest('SUBSCRIBE', `sip:${user}@${host}`, h, body);
}

/** An in-dialog SUBSCRIBE for an accepted one (`accepted` = its 200). */
export function resubscribe(first: SipRequest, accepted: SipResponse, spec: { expires?: number; cseq?: number; contact?: string } = {}): SipRequest {
  const h = first.headers.clone();
  h.set('to', accepted.headers.get('to')!);
  const seq = spec.cseq ?? Number(first.headers.get('cseq')!.split(' ')[0]) + 1;
  h.set('cseq', `${seq} SUBSCRIBE`);
  h.set('via', `SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKre${++counter};rport`);
  if (spec.expires !== undefined) h.set('expires', String(spec.expires));
  if (spec.contact !== undefined) h.set('contact', spec.contact);
  return createRequest('SUBSCRIBE', first.uri, h);
}

export function publish(spec: {
  user?: string;
  event?: string;
  contentType?: string;
  body?: string;
  expires?: number;
  ifMatch?: string;
}): SipRequest {
  const n = ++counter;
  const h = new Headers();
  h.append('via', `SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bKpub${n}`);
  h.append('from', `<sip:${spec.user ?? 'alice'}@example.com>;tag=p${n}`);
  h.append('to', `<sip:${spec.user ?? 'alice'}@example.com>`);
  h.append('call-id', `pub-${n}`);
  h.append('cseq', '1 PUBLISH');
  h.append('event', spec.event ?? 'presence');
  if (spec.expires !== undefined) h.append('expires', String(spec.expires));
  if (spec.ifMatch !== undefined) h.append('sip-if-match', spec.ifMatch);
  const body = spec.body === undefined ? undefined : Buffer.from(spec.body, 'utf8');
  if (body !== undefined) h.append('content-type', spec.contentType ?? 'application/pidf+xml');
  return createRequest('PUBLISH', `sip:${spec.user ?? 'alice'}@example.com`, h, body);
}

export function pidfBody(options: { activities?: string; note?: string; basic?: string; cisco?: string } = {}): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" ' +
    'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:ce="urn:cisco:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">' +
    `<tuple id="t1"><status><basic>${options.basic ?? 'open'}</basic></status></tuple>` +
    `<dm:person id="p1"><rpid:activities>${options.activities ?? ''}${options.cisco ?? ''}</rpid:activities>` +
    (options.note !== undefined ? `<dm:note>${options.note}</dm:note>` : '') +
    '</dm:person></presence>'
  );
}

export function dialogInfoBody(dialogs: string, state: 'full' | 'partial' = 'full', version = 0): string {
  return (
    '<?xml version="1.0"?>' +
    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${version}" state="${state}" entity="sip:alice@example.com">` +
    dialogs +
    '</dialog-info>'
  );
}
