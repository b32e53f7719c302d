import type { Logger } from '../../util/logger.js';
import type { Endpoint, SipResponse } from '../message.js';
import { serializeMessage, serializeMessageInto, type ByteSpace } from '../serializer.js';
import { TransactionStateHolder } from './state.js';
import type { TimerHandle, TimerQueue, TimerTarget, TimerValues } from './timers.js';

/** What a server transaction needs from the layer that owns it. */
export interface ServerTransactionHost {
  readonly queue: TimerQueue;
  readonly timers: TimerValues;
  readonly logger: Logger;
  /** Where a final response is kept for Timer J (shared slabs, see response-arena.ts). */
  readonly responses: ByteSpace;
  /** send bytes; returns the stream connection used (undefined for UDP), null on failure */
  transmit(data: Buffer, destination: Endpoint, connectionId: string | undefined): string | undefined | null;
  serverTerminated(tx: ServerNonInviteTransaction): void;
}

/**
 * The parser's method is a fresh string per request (32 B each); a completed
 * transaction keeps it for Timer J, so the known ones are kept shared.
 */
const SHARED_METHODS = new Map(['SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'MESSAGE', 'OPTIONS', 'INFO', 'REFER', 'REGISTER', 'BYE', 'CANCEL', 'UPDATE'].map((m) => [m, m]));

/** `method` as the shared string when it is a known one. */
export function sharedMethod(method: string): string {
  return SHARED_METHODS.get(method) ?? method;
}

const TIMER_J = 4;
/** not an RFC timer: a TU that never answers must not leak the transaction */
const TIMER_TU = 5;

/**
 * RFC 3261 §17.2.2 non-INVITE server transaction. It keeps no request, only
 * where responses go and the last response sent (for retransmissions): a
 * provisional one as its own buffer, the final one (kept for Timer J) as a
 * range of a shared slab of the host's ResponseArena.
 */
export class ServerNonInviteTransaction extends TransactionStateHolder implements TimerTarget {
  /** §8.2.2.2 merge key, when the request had no To tag */
  mergeKey: string | undefined;
  /** the connection the request came on (referenced while the transaction lives) */
  readonly requestConnectionId: string | undefined;
  /** the last provisional response (Proceeding) */
  private lastResponse: Buffer | undefined;
  /** the final response (Completed): bytes [finalStart, finalEnd) of finalSlab */
  private finalSlab: Buffer | undefined;
  private finalStart = 0;
  private finalEnd = 0;
  private timer: TimerHandle | null = null;

  constructor(
    private readonly host: ServerTransactionHost,
    readonly key: string,
    readonly method: string,
    readonly destination: Endpoint,
    public connectionId: string | undefined,
  ) {
    super();
    this.requestConnectionId = connectionId;
    // the client gives up after Timer F (64*T1); a final response later than that is useless
    this.timer = host.queue.schedule(64 * host.timers.t1, this, TIMER_TU);
  }

  /** Via branch (for logs); derived from the key so that no slice of the request text is kept */
  get branch(): string {
    const end = this.key.indexOf('\u0000');
    return end > 0 && !this.key.startsWith('\u0001') ? this.key.slice(0, end) : '';
  }

  get reliable(): boolean {
    return this.destination.protocol !== 'udp';
  }

  /** A retransmission of the request arrived: repeat the last response, if any. */
  retransmission(): void {
    if (this.state === 'completed' && this.finalSlab !== undefined) {
      this.send(this.finalSlab.subarray(this.finalStart, this.finalEnd));
    } else if (this.state === 'proceeding' && this.lastResponse !== undefined) {
      this.send(this.lastResponse);
    }
  }

  /** The bytes a retransmission of the request is answered with now (tests, diagnostics). */
  get answerBytes(): Buffer | undefined {
    if (this.state === 'completed' && this.finalSlab !== undefined) return this.finalSlab.subarray(this.finalStart, this.finalEnd);
    return this.state === 'proceeding' ? this.lastResponse : undefined;
  }

  /** Send a response; false when the transaction already sent its final one. */
  respond(response: SipResponse): boolean {
    if (this.state === 'completed' || this.state === 'terminated') {
      this.host.logger.debug({ method: this.method, status: response.status, branch: this.branch }, 'response after final response ignored');
      return false;
    }
    if (response.status < 200) {
      const data = serializeMessage(response);
      this.send(data);
      this.enter('proceeding', this.host.logger);
      this.lastResponse = data;
      return true;
    }
    if (this.reliable) this.send(serializeMessage(response));
    else {
      // kept for Timer J: written straight into the arena's slab, not a buffer of its own copied there
      const kept = serializeMessageInto(response, this.host.responses);
      this.finalSlab = kept.buffer;
      this.finalStart = kept.start;
      this.finalEnd = kept.end;
      this.send(kept.buffer.subarray(kept.start, kept.end));
    }
    if (this.host.logger.isLevelEnabled('debug')) {
      this.host.logger.debug(
        { method: this.method, status: response.status, callId: response.headers.get('call-id'), branch: this.branch },
        'server transaction completed',
      );
    }
    this.host.queue.cancel(this.timer);
    this.timer = null;
    if (this.reliable) {
      // Timer J is zero over reliable transports
      this.terminate();
    } else {
      this.enter('completed', this.host.logger);
      this.lastResponse = undefined;
      this.timer = this.host.queue.schedule(64 * this.host.timers.t1, this, TIMER_J);
    }
    return true;
  }

  onTimer(kind: number): void {
    this.timer = null;
    if (kind === TIMER_TU && this.state !== 'completed') {
      this.host.logger.debug({ method: this.method, branch: this.branch }, 'no final response from the TU in time; transaction dropped');
    }
    this.terminate();
  }

  terminate(): void {
    if (this.state === 'terminated' || !this.enter('terminated', this.host.logger)) return;
    this.host.queue.cancel(this.timer);
    this.timer = null;
    this.lastResponse = undefined;
    this.finalSlab = undefined;
    this.host.serverTerminated(this);
  }

  private send(data: Buffer): void {
    const used = this.host.transmit(data, this.destination, this.connectionId);
    if (typeof used === 'string') this.connectionId = used;
  }
}
