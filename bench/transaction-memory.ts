/**
 * In-process: bytes per completed server transaction (RFC 3261 §17.2.2: a
 * non-INVITE server transaction over UDP stays Completed for Timer J, 32 s,
 * to answer retransmissions). At 3,000 new subscriptions a second that is
 * ~100,000 transactions alive at any time, so their size is a large part of
 * the gateway's memory right after a load. JS heap and ArrayBuffer bytes,
 * after a full GC.
 * Run: node --expose-gc --import tsx bench/transaction-memory.ts [count]
 */
import { createResponse, type Endpoint } from '../src/sip/message.js';
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
  console.log(JSON.stringify({ count, ...measureCompletedTransactions(count) }));
}
