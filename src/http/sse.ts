/**
 * Server-sent events (WHATWG HTML "Server-sent events") for the admin API:
 * a `user` event with the new row whenever a user's view changes, a
 * `connectors` event when connector status changes, and a heartbeat comment.
 * Changes within one tick are coalesced per user; each row is serialized
 * once for all clients. One shared timer serves every client, and it runs
 * only while someone listens; so does the store subscription.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface EventStreamOptions {
  /** Subscribe to view changes; returns the unsubscribe. */
  subscribe(listener: (personId: string) => void): () => void;
  /** The row for a person (undefined: no longer known). */
  row(personId: string): unknown;
  /** The connector status object pushed as `connectors`. */
  status(): unknown;
  heartbeatMs: number;
  statusMs: number;
  /** A client whose unsent output exceeds this is dropped (it reconnects and reloads); default 1 MiB. */
  maxBufferedBytes?: number;
}

interface Client {
  res: ServerResponse;
}

export class EventStream {
  private readonly clients = new Set<Client>();
  private readonly pending = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private lastStatus = '';
  private sinceHeartbeat = 0;
  private readonly maxBuffered: number;
  private closed = false;

  constructor(private readonly o: EventStreamOptions) {
    this.maxBuffered = o.maxBufferedBytes ?? 1 << 20;
  }

  get size(): number {
    return this.clients.size;
  }

  add(req: IncomingMessage, res: ServerResponse): void {
    if (this.closed) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"closing"}');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const client: Client = { res };
    this.clients.add(client);
    const status = JSON.stringify(this.o.status());
    res.write(`retry: 3000\n\nevent: connectors\ndata: ${status}\n\n`);
    const drop = (): void => this.remove(client);
    req.once('close', drop);
    res.once('close', drop);
    res.once('error', drop);
    if (this.clients.size === 1) this.start();
  }

  private start(): void {
    this.unsubscribe ??= this.o.subscribe((id) => this.changed(id));
    if (this.timer === undefined) {
      const tick = Math.max(10, Math.min(this.o.heartbeatMs, this.o.statusMs));
      this.timer = setInterval(() => this.tick(tick), tick);
      this.timer.unref();
    }
  }

  private stopIfIdle(): void {
    if (this.clients.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.lastStatus = '';
  }

  private remove(client: Client): void {
    if (!this.clients.delete(client)) return;
    if (!client.res.writableEnded) client.res.end();
    this.stopIfIdle();
  }

  private changed(personId: string): void {
    this.pending.add(personId);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private broadcast(chunk: string): void {
    for (const c of this.clients) {
      if (c.res.writableLength > this.maxBuffered) {
        this.remove(c);
        continue;
      }
      c.res.write(chunk);
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.clients.size === 0) {
      this.pending.clear();
      return;
    }
    let chunk = '';
    for (const id of this.pending) {
      let row: unknown;
      try {
        row = this.o.row(id);
      } catch {
        row = undefined;
      }
      if (row !== undefined) chunk += `event: user\ndata: ${JSON.stringify(row)}\n\n`;
    }
    this.pending.clear();
    if (chunk.length > 0) this.broadcast(chunk);
  }

  private tick(elapsedMs: number): void {
    let status: string;
    try {
      status = JSON.stringify(this.o.status());
    } catch {
      status = this.lastStatus;
    }
    this.sinceHeartbeat += elapsedMs;
    let chunk = '';
    // connector ages move every tick; push when something other than the clock changed
    const comparable = status.replace(/"now":\d+,?/, '');
    if (comparable !== this.lastStatus) {
      this.lastStatus = comparable;
      chunk += `event: connectors\ndata: ${status}\n\n`;
    }
    if (this.sinceHeartbeat >= this.o.heartbeatMs) {
      this.sinceHeartbeat = 0;
      chunk += `: heartbeat ${Date.now()}\n\n`;
    }
    if (chunk.length > 0) this.broadcast(chunk);
  }

  /** End every stream (server shutdown). */
  close(): void {
    this.closed = true;
    for (const c of [...this.clients]) this.remove(c);
    this.stopIfIdle();
  }
}
