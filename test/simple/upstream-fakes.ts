/** Fakes for the upstream watcher/publisher tests: a scripted RequestSender, a recording sink, NOTIFY builders. */
import type { RichState, TelephonyState } from '../../src/core/person-state.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type Endpoint, type SipRequest, type SipResponse, type TransportProtocol } from '../../src/sip/message.js';
import type { InboundRequest, OutboundOptions, RequestSender } from '../../src/simple/stack-port.js';
import type { PublishTarget } from '../../src/simple/upstream-publisher.js';
import type { UpstreamSink } from '../../src/simple/upstream-watcher.js';
import { TimerWheel } from '../../src/util/timer-wheel.js';

export interface Sent {
  request: SipRequest;
  options: OutboundOptions;
  answered: boolean;
  /** Answer with a response made from the request; `headers` appended, `toTag` added to To. */
  answer(status: number, extra?: { headers?: Array<[string, string]>; toTag?: string; reason?: string }): SipResponse;
}

export class ScriptedSender implements RequestSender {
  readonly sent: Sent[] = [];

  sendRequest(request: SipRequest, options: OutboundOptions): Promise<SipResponse> {
    return new Promise((resolve) => {
      const entry: Sent = {
        request,
        options,
        answered: false,
        answer: (status, extra = {}) => {
          if (entry.answered) throw new Error('answered twice');
          entry.answered = true;
          const opts: { toTag?: string } = {};
          if (extra.toTag !== undefined) opts.toTag = extra.toTag;
          const res = createResponse(request, status, extra.reason, opts);
          for (const [n, v] of extra.headers ?? []) res.headers.append(n, v);
          resolve(res);
          return res;
        },
      };
      this.sent.push(entry);
    });
  }

  localEndpoint(protocol: TransportProtocol): Endpoint | undefined {
    return { protocol, address: '0.0.0.0', port: 5060 };
  }

  advertisedEndpoint(protocol: TransportProtocol): Endpoint | undefined {
    return { protocol, address: '192.0.2.1', port: protocol === 'udp' ? 5060 : 5070 };
  }

  pending(): Sent[] {
    return this.sent.filter((s) => !s.answered);
  }

  last(): Sent {
    const s = this.sent[this.sent.length - 1];
    if (s === undefined) throw new Error('nothing sent');
    return s;
  }
}

export interface SinkCall {
  kind: 'telephony' | 'sip';
  personId: string;
  value: TelephonyState | RichState | undefined;
  source: string;
}

export class RecordingSink implements UpstreamSink {
  readonly calls: SinkCall[] = [];
  setTelephony(personId: string, t: TelephonyState | undefined, source: string): void {
    this.calls.push({ kind: 'telephony', personId, value: t, source });
  }
  setSip(personId: string, r: RichState | undefined, source: string): void {
    this.calls.push({ kind: 'sip', personId, value: r, source });
  }
  lastTelephony(): TelephonyState | undefined {
    for (let i = this.calls.length - 1; i >= 0; i--) {
      const c = this.calls[i]!;
      if (c.kind === 'telephony') return c.value as TelephonyState | undefined;
    }
    return undefined;
  }
}

/** A manual clock and a wheel it drives (100 ms resolution). */
export function manualClock(start = 1_700_000_000_000) {
  let now = start;
  const clock = (): number => now;
  const wheel = new TimerWheel({ clock: { now: clock }, autoStart: false, resolutionMs: 100 });
  return {
    now: clock,
    wheel,
    advance(ms: number): void {
      // step through so every tick's callbacks run in order
      const end = now + ms;
      while (now < end) {
        now = Math.min(end, now + 100);
        wheel.advance();
      }
    },
  };
}

/** Let promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

export const PBX: Endpoint = { protocol: 'udp', address: '198.51.100.5', port: 5060 };

let n = 0;

/** A NOTIFY in the dialog of `subscribe` (the SUBSCRIBE we sent). */
export function notifyFor(
  subscribe: SipRequest,
  spec: {
    remoteTag?: string;
    cseq?: number;
    state?: string;
    event?: string;
    contentType?: string;
    body?: string;
    contact?: string;
    recordRoute?: string[];
  } = {},
): SipRequest {
  const h = new Headers();
  h.append('via', `SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bKn${++n}`);
  h.append('from', `${subscribe.headers.get('to')!};tag=${spec.remoteTag ?? 'pbx-tag'}`);
  h.append('to', subscribe.headers.get('from')!);
  h.append('call-id', subscribe.headers.get('call-id')!);
  h.append('cseq', `${spec.cseq ?? 1} NOTIFY`);
  h.append('event', spec.event ?? subscribe.headers.get('event')!);
  h.append('subscription-state', spec.state ?? 'active;expires=3600');
  h.append('contact', spec.contact ?? '<sip:198.51.100.5:5060>');
  for (const rr of spec.recordRoute ?? []) h.append('record-route', rr);
  let body: Buffer | undefined;
  if (spec.body !== undefined) {
    body = Buffer.from(spec.body, 'utf8');
    h.append('content-type', spec.contentType ?? 'application/dialog-info+xml');
  }
  return createRequest('NOTIFY', 'sip:192.0.2.1:5060', h, body);
}

/** Deliver a request as an InboundRequest; returns the responses given. */
export function inbound(request: SipRequest): { req: InboundRequest; responses: SipResponse[] } {
  const responses: SipResponse[] = [];
  const req: InboundRequest = {
    request,
    source: PBX,
    local: { protocol: 'udp', address: '192.0.2.1', port: 5060 },
    respond: (r) => responses.push(r),
  };
  return { req, responses };
}

export function dialogInfo(dialogs: string, opts: { version?: number; state?: 'full' | 'partial' } = {}): string {
  return (
    '<?xml version="1.0"?>' +
    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${opts.version ?? 0}" state="${opts.state ?? 'full'}" entity="sip:1001@pbx.example.com">` +
    dialogs +
    '</dialog-info>'
  );
}

export function dialog(id: string, state: string, direction?: 'initiator' | 'recipient'): string {
  return `<dialog id="${id}"${direction !== undefined ? ` direction="${direction}"` : ''}><state>${state}</state></dialog>`;
}

/** A PIDF as CUCM sends it: status:rpid and Cisco namespaces, tuple ids like cmp-<ext>-<n>. */
export function cucmPidf(opts: { basic?: 'open' | 'closed'; activities?: string; person?: boolean; note?: string } = {}): string {
  const person =
    opts.person === false
      ? ''
      : `<dm:person id="p1"><rpid:activities>${opts.activities ?? ''}</rpid:activities>${opts.note !== undefined ? `<dm:note>${opts.note}</dm:note>` : ''}</dm:person>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" ' +
    'xmlns:rpid="urn:ietf:params:xml:ns:pidf:status:rpid" xmlns:ce="urn:cisco:params:xml:ns:pidf:rpid" entity="sip:1001@cucm.example.com">' +
    `<tuple id="cmp-1001-162"><status><basic>${opts.basic ?? 'open'}</basic></status></tuple>` +
    person +
    '</presence>'
  );
}

/** A publication of alice at the presence server (trunk kam), `over` changed. */
export function publishTarget(over: Partial<PublishTarget> = {}): PublishTarget {
  return {
    trunk: 'kam',
    personId: 'alice',
    uri: 'sip:alice@presence.example.com',
    expires: 3600,
    fromUri: 'sip:gateway@gw.example.com',
    flavor: 'rfc',
    destination: () => Promise.resolve(PBX),
    ...over,
  };
}
