/**
 * In-process: bytes per completed server transaction (RFC 3261 §17.2.2: a
 * non-INVITE server transaction over UDP stays Completed for Timer J, 32 s,
 * to answer retransmissions). At 3,000 new subscriptions a second that is
 * ~100,000 transactions alive at any time, so their size is a large part of
 * the gateway's memory right after a load. JS heap and ArrayBuffer bytes,
 * after a full GC.
 * Also: a client transaction still waiting for its answer.
 * Run: node --expose-gc --import tsx bench/transaction-memory.ts [count]
 */
import { Headers } from '../src/sip/headers.js';
import { createRequest, createResponse, type Endpoint } from '../src/sip/message.js';
import { parseMessage } from '../src/sip/parser.js';
import { TransactionLayer, type TransactionTransport } from '../src/sip/transaction/transaction-layer.js';
import { RFC3261_TIMERS } from '../src/sip/transaction/timers.js';
import { silentLogger } from '../src/util/logger.js';
import { wire } from './subscription-memory.js';

export interface TransactionMemory {
  transactions: number;
  heapBytesPerTransaction: number;
  arrayBufferBytesPerTransaction: number;
  /** Sizes of the final responses kept (for scale). */
  responseBytes: number;
}

export function measureCompletedTransactions(count: number): TransactionMemory {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  let responseBytes = 0;
  const transport: TransactionTransport = {
    send: (data) => {
      responseBytes = data.length;
      return undefined;
    },
    isOpen: () => false,
    ref: () => undefined,
    unref: () => undefined,
    sentBy: () => ({ host: '192.0.2.1', port: 5060 }),
  };
  const layer = new TransactionLayer({ transport, logger: silentLogger(), timers: { ...RFC3261_TIMERS }, allow: ['SUBSCRIBE', 'NOTIFY'] });
  let tag = 0;
  layer.onRequest = ({ request, transaction }) => {
    const response = createResponse(request, 200, undefined, { toTag: `gw${++tag}x7f3a9` });
    response.headers.append('expires', '3600');
    response.headers.append('contact', '<sip:192.0.2.1:5060;transport=udp>');
    transaction.respond(response);
  };
  const local: Endpoint = { protocol: 'udp', address: '192.0.2.1', port: 5060 };
  const source: Endpoint = { protocol: 'udp', address: '198.51.100.7', port: 5062 };
  for (let i = 0; i < 3; i++) gc();
  const before = process.memoryUsage();
  for (let i = 0; i < count; i++) {
    const parsed = parseMessage(wire(i, '2000'));
    if (!parsed.ok || parsed.message.kind !== 'request') throw new Error('bad request');
    layer.receiveRequest(parsed.message, source, local, undefined);
  }
  for (let i = 0; i < 3; i++) gc();
  const after = process.memoryUsage();
  const transactions = layer.serverCount;
  layer.close();
  return {
    transactions,
    heapBytesPerTransaction: Math.round((after.heapUsed - before.heapUsed) / Math.max(1, transactions)),
    arrayBufferBytesPerTransaction: Math.round((after.arrayBuffers - before.arrayBuffers) / Math.max(1, transactions)),
    responseBytes,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 100_000);
  console.log(JSON.stringify({ count, completedServer: measureCompletedTransactions(count) }));
  measurePendingClientTransactions(count)
    .then((r) => console.log(JSON.stringify({ count, pendingClient: r })))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}

/**
 * Bytes per client transaction waiting for its answer (a NOTIFY to a
 * watcher that does not answer: it is retransmitted until Timer F, 32 s),
 * e.g. after a restart whose watchers are gone. JS heap and ArrayBuffers.
 */
export async function measurePendingClientTransactions(count: number): Promise<{ transactions: number; heapBytesPerTransaction: number; arrayBufferBytesPerTransaction: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  const transport: TransactionTransport = {
    send: () => undefined,
    isOpen: () => false,
    ref: () => undefined,
    unref: () => undefined,
    sentBy: () => ({ host: '192.0.2.1', port: 5060 }),
  };
  const layer = new TransactionLayer({ transport, logger: silentLogger(), timers: { ...RFC3261_TIMERS }, allow: ['SUBSCRIBE', 'NOTIFY'] });
  const body = Buffer.from('<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:2000@192.0.2.1"><tuple id="t"><status><basic>open</basic></status></tuple></presence>');
  const destination: Endpoint = { protocol: 'udp', address: '198.51.100.7', port: 5062 };
  for (let i = 0; i < 3; i++) gc();
  const before = process.memoryUsage();
  for (let i = 0; i < count; i++) {
    const h = new Headers();
    h.append('from', `<sip:2000@192.0.2.1>;tag=gw${i}x7f3a9`);
    h.append('to', `"SIPp watcher ${i}" <sip:watcher-${i}@198.51.100.7>;tag=4242W${i}`);
    h.append('call-id', `${i}-4242@198.51.100.7`);
    h.append('cseq', '2 NOTIFY');
    h.append('event', 'presence');
    h.append('subscription-state', 'active;expires=3599');
    h.append('contact', '<sip:192.0.2.1:5060;transport=udp>');
    h.append('content-type', 'application/pidf+xml');
    void layer.sendRequest(createRequest('NOTIFY', `sip:watcher-${i}@198.51.100.7:5062;transport=UDP`, h, body), { destination });
  }
  for (let i = 0; i < 3; i++) gc();
  const after = process.memoryUsage();
  const transactions = layer.clientCount;
  layer.close();
  await new Promise((r) => setImmediate(r));
  return {
    transactions,
    heapBytesPerTransaction: Math.round((after.heapUsed - before.heapUsed) / Math.max(1, transactions)),
    arrayBufferBytesPerTransaction: Math.round((after.arrayBuffers - before.arrayBuffers) / Math.max(1, transactions)),
  };
}
