/**
 * Free local ports for tests and benchmarks: a port that is free for both UDP
 * and TCP on 127.0.0.1 (SIP listeners use the same number for both).
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** Ports handed out by this process, so two callers never get the same one. */
const handedOut = new Set<number>();

function bindTcp(host: string, port: number): Promise<{ port: number; close(): Promise<void> } | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        resolve(undefined);
        return;
      }
      resolve({
        port: address.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

function bindUdp(host: string, port: number): Promise<{ close(): Promise<void> } | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    socket.once('error', () => {
      socket.close();
      resolve(undefined);
    });
    socket.bind({ address: host, port, exclusive: true }, () => {
      resolve({ close: () => new Promise<void>((done) => socket.close(() => done())) });
    });
  });
}

/**
 * A port free for both UDP and TCP on `host` right now. The sockets used to
 * probe it are closed before returning, so there is a small window in which
 * another process could take it; callers that bind it should be ready to retry.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const tcp = await bindTcp(host, 0);
    if (tcp === undefined) continue;
    const port = tcp.port;
    if (handedOut.has(port)) {
      await tcp.close();
      continue;
    }
    const udp = await bindUdp(host, port);
    await tcp.close();
    if (udp === undefined) continue;
    await udp.close();
    handedOut.add(port);
    return port;
  }
  throw new Error(`no port free for both UDP and TCP on ${host} after 100 attempts`);
}

/** `count` distinct ports, each free for both UDP and TCP. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(await freePort(host));
  return out;
}
