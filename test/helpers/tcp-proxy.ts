/**
 * A TCP proxy in front of a real peer (Redis) that a test can partition:
 * pause() stops forwarding in both directions without closing anything
 * (the bytes wait, as TCP retransmits them through a partition), resume()
 * delivers what waited, in order, and forwards again. cut() closes every
 * connection (a reset); new connections are still accepted and forwarded.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  readonly host: string;
  /** redis://host:port/0 when the target is a Redis. */
  readonly url: string;
  pause(): void;
  resume(): void;
  cut(): void;
  close(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

export async function startTcpProxy(t: Teardown, target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let paused = false;
  /** Bytes held back while paused, in arrival order, with where they go. */
  const held: { to: Socket; data: Buffer }[] = [];
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (data: Buffer) => {
      if (paused) held.push({ to, data });
      else to.write(data);
    });
  };
  const server = createServer((client) => {
    const upstream = connect(target);
    const pair = { client, upstream };
    pairs.add(pair);
    forward(client, upstream);
    forward(upstream, client);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  const proxy: TcpProxy = {
    port: address.port,
    host: '127.0.0.1',
    url: `redis://127.0.0.1:${address.port}/0`,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      for (const { to, data } of held.splice(0)) if (!to.destroyed) to.write(data);
    },
    cut: () => {
      held.length = 0;
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
    },
    close: async () => {
      proxy.cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  t.teardown(() => proxy.close());
  return proxy;
}
