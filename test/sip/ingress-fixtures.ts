/** Raw requests for the ingress tests on a fake clock (what a socket would hand the ingress). */
import type { IngressHost } from '../../src/sip/ingress.js';
import type { Endpoint } from '../../src/sip/message.js';

/**
 * A request out of any dialog (a toTag makes it in-dialog) from `source`; `extra` header lines go after
 * Event, `branch` replaces the Call-ID in the Via branch, `rport` asks for it (RFC 3581).
 */
export function rawRequest(
  method: string,
  callId: string,
  source: Pick<Endpoint, 'address' | 'port'>,
  opts: { toTag?: string; branch?: string; rport?: boolean; extra?: string[] } = {},
): Buffer {
  return Buffer.from(
    [
      `${method} sip:anna@example.com SIP/2.0`,
      `Via: SIP/2.0/UDP ${source.address}:${source.port}${opts.rport === true ? ';rport' : ''};branch=z9hG4bK${opts.branch ?? callId}`,
      'Max-Forwards: 70',
      `From: <sip:w@example.com>;tag=f${callId}`,
      `To: <sip:anna@example.com>${opts.toTag !== undefined ? `;tag=${opts.toTag}` : ''}`,
      `Call-ID: ${callId}`,
      `CSeq: 1 ${method}`,
      'Event: presence',
      ...(opts.extra ?? []),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

export function callIdOf(data: Buffer): string {
  return /\r\nCall-ID: ([^\r]+)/.exec(data.toString('latin1'))?.[1] ?? '';
}

/**
 * A host whose processing costs `costMs` of the fake clock per delivered message; it records what was
 * delivered, what was answered 503 (each must carry Retry-After) and each bound/restore of the buffers.
 */
export function fakeHost(clock: { now: number }, costMs: number) {
  const delivered: string[] = [];
  const shed: { callId: string; retryAfter: number }[] = [];
  const buffers: boolean[] = [];
  const host: IngressHost = {
    deliver(data) {
      clock.now += costMs;
      delivered.push(callIdOf(data));
    },
    send(data) {
      const text = data.toString('latin1');
      const retryAfter = /\r\nRetry-After: (\d+)\r\n/.exec(text)?.[1];
      if (!text.startsWith('SIP/2.0 503 ') || retryAfter === undefined) throw new Error(`unexpected send: ${text.slice(0, 40)}`);
      shed.push({ callId: callIdOf(data), retryAfter: Number(retryAfter) });
    },
    absorbRetransmission: () => false,
    boundReceiveBuffers: (bound) => buffers.push(bound),
  };
  return { host, delivered, shed, buffers };
}
