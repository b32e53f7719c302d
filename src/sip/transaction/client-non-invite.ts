import type { Logger } from '../../util/logger.js';
import type { Endpoint, SipRequest, SipResponse } from '../message.js';
import { Headers } from '../headers.js';
import { createRequest, createResponse, EMPTY_BODY } from '../message.js';
import { TransactionStateHolder } from './state.js';
import type { TimerHandle, TimerQueue, TimerTarget, TimerValues } from './timers.js';

/** What a client transaction needs from the layer that owns it. */
export interface ClientTransactionHost {
  readonly queue: TimerQueue;
  readonly timers: TimerValues;
  readonly logger: Logger;
  /** send the transaction's current bytes to its destination; false on immediate failure */
  transmitClient(tx: ClientNonInviteTransaction): boolean;
  /** the transport failed; true when the host moved the transaction to another transport */
  transportFailed(tx: ClientNonInviteTransaction): boolean;
  clientTerminated(tx: ClientNonInviteTransaction): void;
}

const TIMER_E = 1;
const TIMER_F = 2;
const TIMER_K = 3;

/**
 * RFC 3261 §17.1.2 non-INVITE client transaction. Resolves its promise with
 * the first final response, or with a locally made 408 (Timer F) or 503
 * (transport error), never rejects (§8.1.3.1).
 */
export class ClientNonInviteTransaction extends TransactionStateHolder implements TimerTarget {
  /** serialized request as currently sent */
  data: Buffer;
  destination: Endpoint;
  connectionId: string | undefined;
  /** the request may move from TCP back to UDP if the connection fails */
  udpFallback: boolean;
  private interval = 0;
  private timerE: TimerHandle | null = null;
  private timerF: TimerHandle | null = null;
  private timerK: TimerHandle | null = null;
  private resolveFn: ((r: SipResponse) => void) | undefined;
  private request: SipRequest | undefined;

  constructor(
    private readonly host: ClientTransactionHost,
    readonly key: string,
    readonly branch: string,
    readonly method: string,
    request: SipRequest,
    data: Buffer,
    destination: Endpoint,
    connectionId: string | undefined,
    udpFallback: boolean,
    private readonly onProvisional: ((r: SipResponse) => void) | undefined,
    resolve: (r: SipResponse) => void,
  ) {
    super();
    // Kept until the final response: whole only when it may have to be serialized again (TCP → UDP
    // fallback); otherwise just what a local 408/503 copies (§8.1.3.1), so a request a peer never
    // answers (retransmitted for 64*T1) does not hold its body and every header twice, once as bytes.
    this.request = udpFallback ? request : responseSkeleton(request);
    this.data = data;
    this.destination = destination;
    this.connectionId = connectionId;
    this.udpFallback = udpFallback;
    this.resolveFn = resolve;
  }

  get reliable(): boolean {
    return this.destination.protocol !== 'udp';
  }

  /** The request as sent (for the TU's records and for building local responses). */
  get sipRequest(): SipRequest | undefined {
    return this.request;
  }

  start(): void {
    this.timerF = this.host.queue.schedule(64 * this.host.timers.t1, this, TIMER_F);
    this.transmitAndArm();
  }

  /** (Re)send over the current transport and arm Timer E when unreliable. */
  transmitAndArm(): void {
    this.host.queue.cancel(this.timerE);
    this.timerE = null;
    if (!this.host.transmitClient(this)) {
      this.failTransport();
      return;
    }
    if (!this.reliable && this.state !== 'terminated') {
      this.interval = this.host.timers.t1;
      this.timerE = this.host.queue.schedule(this.interval, this, TIMER_E);
    }
  }

  receive(response: SipResponse): void {
    if (this.state === 'completed' || this.state === 'terminated') return; // retransmitted final: absorbed
    if (response.status < 200) {
      this.enter('proceeding', this.host.logger);
      if (this.onProvisional !== undefined) {
        try {
          this.onProvisional(response);
        } catch (err) {
          this.host.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'onProvisional handler failed');
        }
      }
      return;
    }
    this.finish(response);
  }

  /** The transport failed (connection refused or reset, send error). */
  failTransport(): void {
    if (this.state === 'completed' || this.state === 'terminated') return;
    if (this.host.transportFailed(this)) return;
    this.finish(this.localResponse(503, 'Service Unavailable'), true);
  }

  onTimer(kind: number): void {
    switch (kind) {
      case TIMER_E: {
        this.timerE = null;
        if (this.state !== 'trying' && this.state !== 'proceeding') return;
        if (!this.host.transmitClient(this)) {
          this.failTransport();
          return;
        }
        // §17.1.2.2: doubling up to T2 while Trying, T2 once Proceeding
        this.interval = this.state === 'trying' ? Math.min(2 * this.interval, this.host.timers.t2) : this.host.timers.t2;
        this.timerE = this.host.queue.schedule(this.interval, this, TIMER_E);
        return;
      }
      case TIMER_F:
        this.timerF = null;
        if (this.state === 'trying' || this.state === 'proceeding') this.finish(this.localResponse(408, 'Request Timeout'), true);
        return;
      case TIMER_K:
        this.timerK = null;
        this.terminate();
        return;
      default:
        return;
    }
  }

  /** End now, answering with a locally made response when still pending. */
  abort(status: number, reason: string): void {
    if (this.state === 'trying' || this.state === 'proceeding') this.finish(this.localResponse(status, reason), true);
    else this.terminate();
  }

  private finish(response: SipResponse, local = false): void {
    this.host.queue.cancel(this.timerE);
    this.host.queue.cancel(this.timerF);
    this.timerE = null;
    this.timerF = null;
    if (this.host.logger.isLevelEnabled('debug')) {
      this.host.logger.debug(
        { method: this.method, status: response.status, callId: response.headers.get('call-id'), branch: this.branch, local },
        'client transaction completed',
      );
    }
    const resolve = this.resolveFn;
    this.resolveFn = undefined;
    this.request = undefined;
    this.data = EMPTY_BODY;
    if (this.reliable || local) {
      // Timer K is zero over reliable transports; a local answer leaves nothing to absorb
      this.terminate();
    } else {
      this.enter('completed', this.host.logger);
      this.timerK = this.host.queue.schedule(this.host.timers.t4, this, TIMER_K);
    }
    resolve?.(response);
  }

  private localResponse(status: number, reason: string): SipResponse {
    // the request is kept until the transaction finishes, which is the only time this is called
    return createResponse(this.request ?? createRequest(this.method, ''), status, reason, { toTag: false });
  }

  terminate(): void {
    if (this.state === 'terminated' || !this.enter('terminated', this.host.logger)) return;
    this.host.queue.cancel(this.timerE);
    this.host.queue.cancel(this.timerF);
    this.host.queue.cancel(this.timerK);
    this.timerE = this.timerF = this.timerK = null;
    this.request = undefined;
    this.host.clientTerminated(this);
  }
}

/** The headers createResponse copies (Via, From, To, Call-ID, CSeq), without the body or the rest. */
function responseSkeleton(request: SipRequest): SipRequest {
  const headers = new Headers();
  for (const f of request.headers) {
    if (f.name === 'via' || f.name === 'from' || f.name === 'to' || f.name === 'call-id' || f.name === 'cseq') headers.append(f.name, f.value);
  }
  return createRequest(request.method, request.uri, headers);
}
