import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { measureCompletedTransactions } from '../../bench/transaction-memory.js';

// the measure collects garbage between steps
setFlagsFromString('--expose-gc');
(globalThis as { gc?: () => void }).gc ??= runInNewContext('gc') as () => void;

t.test('a completed server transaction held for Timer J costs at most 530 bytes of heap besides its response', async (t) => {
  // at 30,000: 549 B with a method string of its own per transaction (the parser's slice), 512 B with the shared one
  const m = measureCompletedTransactions(30_000);
  t.equal(m.transactions, 30_000);
  t.ok(m.heapBytesPerTransaction <= 530, `${m.heapBytesPerTransaction} B of heap per transaction`);
  t.ok(m.arrayBufferBytesPerTransaction <= m.responseBytes + 16, `the response kept in a shared slab (${m.arrayBufferBytesPerTransaction} B for a ${m.responseBytes} B response)`);
});
