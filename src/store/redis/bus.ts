/**
 * The change bus on Redis pub/sub: publish() is PUBLISH {p}bus <JSON> on the
 * node's normal connection; a dedicated connection SUBSCRIBEs (a subscribed
 * connection can do nothing else). Redis delivers one publisher's messages
 * to each subscriber in the order it published them, so listeners get every
 * other node's messages in that node's order; this node's own come back and
 * are dropped here.
 *
 * Pub/sub is at most once: what is published while either side is
 * disconnected is lost for the others. publish() then drops the message
 * (counted in `dropped`, never buffered, never thrown), and onReconnect
 * tells the wiring when the bus works again so it republishes the latest
 * state it wrote meanwhile (CLUSTER.md). A malformed message is logged and
 * dropped.
 */
import type { Redis } from 'ioredis';
import type { HubInput, HubInputKind } from '../../core/hub-input.js';
import type { Logger } from '../../util/logger.js';
import type { BusMessage, ChangeBus } from '../cluster.js';
import type { KeyLayout } from './keys.js';

export interface RedisBusOptions {
  /** The normal connection (PUBLISH). */
  client: Redis;
  /** A connection of its own for SUBSCRIBE. */
  subscriber: Redis;
  keys: KeyLayout;
  nodeId: string;
  logger: Logger;
  /**
   * Whether Redis answers (the membership's heartbeats): an open connection
   * that gets no answers drops messages too, and its healing counts as a
   * reconnect.
   */
  reachability?: { reachable(): boolean; onReachable(listener: (reachable: boolean) => void): () => void };
  /** Publishes waiting for Redis at most (more are dropped); default 10,000. */
  maxPending?: number;
}

export class RedisBus implements ChangeBus {
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private readonly nodeId: string;
  private readonly logger: Logger;
  private readonly listeners = new Set<(message: BusMessage) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private subscribed = false;
  /** A connection dropped since the bus last worked: the next subscribe is a reconnect. */
  private interrupted = false;
  private closed = false;
  private droppedCount = 0;
  private pending = 0;
  private readonly maxPending: number;
  private readonly reachable: () => boolean;
  private readonly offReachable: () => void;
  private malformedCount = 0;
  private readonly onSubscriberMessage = (channel: string, text: string): void => this.receive(channel, text);
  private readonly onReady = (): void => void this.refresh();
  private readonly onSubscriberDown = (): void => {
    this.subscribed = false;
    this.interrupted = true;
  };
  private readonly onClientDown = (): void => {
    this.interrupted = true;
  };

  constructor(options: RedisBusOptions) {
    this.client = options.client;
    this.subscriber = options.subscriber;
    this.channel = options.keys.bus;
    this.nodeId = options.nodeId;
    this.logger = options.logger.child({ component: 'bus', nodeId: options.nodeId });
    this.maxPending = options.maxPending ?? 10_000;
    const reachability = options.reachability;
    this.reachable = reachability === undefined ? () => true : () => reachability.reachable();
    this.offReachable =
      reachability === undefined
        ? () => undefined
        : reachability.onReachable((up) => {
            if (up) void this.refresh();
            else this.interrupted = true;
          });
    this.subscriber.on('message', this.onSubscriberMessage);
    this.subscriber.on('ready', this.onReady);
    this.subscriber.on('close', this.onSubscriberDown);
    this.client.on('ready', this.onReady);
    this.client.on('close', this.onClientDown);
  }

  /** Subscribe now if the subscriber connection is up (later at its 'ready' otherwise). */
  async start(): Promise<void> {
    await this.refresh();
  }

  /** Messages dropped by publish() because Redis was not reachable. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Messages received that were not a BusMessage. */
  get malformed(): number {
    return this.malformedCount;
  }

  /** Whether both connections are up, Redis answers and the channel is subscribed. */
  get working(): boolean {
    return this.subscribed && this.client.status === 'ready' && this.reachable();
  }

  publish(message: BusMessage): void {
    if (this.closed || this.client.status !== 'ready' || !this.reachable()) {
      this.drop(message, 'not connected');
      return;
    }
    if (this.pending >= this.maxPending) {
      this.drop(message, 'too many waiting for Redis');
      return;
    }
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch (err) {
      this.logger.error({ type: message.type, err: String(err) }, 'bus message is not JSON-able: dropped');
      return;
    }
    this.pending++;
    this.client
      .publish(this.channel, text)
      .catch((err: unknown) => this.drop(message, String(err)))
      .finally(() => this.pending--);
  }

  onMessage(listener: (message: BusMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The bus works again after Redis was unreachable (both connections up, channel subscribed again). */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.offReachable();
    this.subscriber.off('message', this.onSubscriberMessage);
    this.subscriber.off('ready', this.onReady);
    this.subscriber.off('close', this.onSubscriberDown);
    this.client.off('ready', this.onReady);
    this.client.off('close', this.onClientDown);
    if (this.subscribed) await this.subscriber.unsubscribe(this.channel).catch(() => undefined);
    this.subscribed = false;
  }

  /** Subscribe when the subscriber connection is up and not subscribed; tell onReconnect when the bus works again. */
  private async refresh(): Promise<void> {
    if (this.closed) return;
    if (!this.subscribed && this.subscriber.status === 'ready') {
      try {
        await this.subscriber.subscribe(this.channel);
      } catch (err) {
        this.logger.debug({ err: String(err) }, 'bus subscribe failed: retried when the connection is ready again');
        return;
      }
      if (this.closed) return;
      this.subscribed = true;
    }
    if (this.subscribed && this.interrupted && this.client.status === 'ready' && this.reachable()) {
      this.interrupted = false;
      this.logger.info({ dropped: this.droppedCount }, 'bus reconnected');
      for (const l of this.reconnectListeners) {
        try {
          l();
        } catch (err) {
          this.logger.error({ err: String(err) }, 'bus reconnect listener threw');
        }
      }
    }
  }

  private drop(message: BusMessage, why: string): void {
    this.droppedCount++;
    this.interrupted = true;
    this.logger.debug({ type: message.type, why, dropped: this.droppedCount }, 'bus message dropped: Redis not reachable');
  }

  private receive(channel: string, text: string): void {
    if (channel !== this.channel) return;
    const message = parseBusMessage(text);
    if (message === undefined) {
      this.malformedCount++;
      this.logger.warn({ length: text.length, start: text.slice(0, 80) }, 'malformed bus message dropped');
      return;
    }
    if (message.from === this.nodeId) return;
    for (const l of this.listeners) {
      try {
        l(message);
      } catch (err) {
        this.logger.error({ type: message.type, from: message.from, err: String(err) }, 'bus listener threw');
      }
    }
  }
}

const INPUT_FIELDS: Record<HubInputKind, Record<string, 'string' | 'boolean'>> = {
  sip: { personId: 'string', source: 'string' },
  telephony: { personId: 'string', source: 'string' },
  'expect-telephony': { personId: 'string', feeder: 'string' },
  'feeder-reachable': { feeder: 'string', reachable: 'boolean' },
  'feeder-reachable-for': { personId: 'string', feeder: 'string', reachable: 'boolean' },
  'feature-key-dnd': { personId: 'string', on: 'boolean' },
  teams: { personId: 'string' },
  calendar: { personId: 'string' },
};

/** A BusMessage from its JSON, or undefined when it is not one (the shape is checked to the input's kind and identity fields). */
export function parseBusMessage(text: string): BusMessage | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v) || typeof v['from'] !== 'string') return undefined;
  if (v['type'] === 'input') {
    const input = v['input'];
    if (!isObject(input) || typeof input['kind'] !== 'string' || !Object.hasOwn(INPUT_FIELDS, input['kind'])) return undefined;
    const fields = INPUT_FIELDS[input['kind'] as HubInputKind];
    for (const [name, type] of Object.entries(fields)) if (typeof input[name] !== type) return undefined;
    return { type: 'input', from: v['from'], input: input as unknown as HubInput };
  }
  if (v['type'] === 'moved') {
    const what = v['what'];
    if ((what !== 'subscription' && what !== 'publication') || typeof v['id'] !== 'string' || typeof v['to'] !== 'string') return undefined;
    return { type: 'moved', from: v['from'], what, id: v['id'], to: v['to'] };
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
