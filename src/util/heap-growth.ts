import { setFlagsFromString } from 'node:v8';

/**
 * The old-generation growth factor the gateway runs with: the next full GC
 * starts once the heap is 1 + HEAP_GROWING_PERCENT / 100 times what the last
 * one left alive.
 *
 * Left to itself, V8 lets the old generation grow up to 4x the live heap
 * between full collections when it can afford the throughput. The gateway's
 * old-generation garbage is mostly transactions that outlive a few young
 * collections and then end (completed server transactions hold for Timer J,
 * 32 s; NOTIFY transactions for Timer K), thousands a second under load, so
 * the heap would sit at several times what is live: 100,000 subscriptions
 * measured ~80 MB live in a 330 MB heap (issue 10). 1.3x keeps the process
 * near its live size for more frequent (concurrent) marking.
 */
export const HEAP_GROWING_PERCENT = 30;

/**
 * Apply the factor unless one was given on the command line or in
 * NODE_OPTIONS (that one wins). Call at process start. Returns the flag set,
 * or undefined when the operator's choice was kept.
 */
export function limitHeapGrowth(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? ''): string | undefined {
  const given = [...execArgv, nodeOptions].some((a) => /heap[-_]growing[-_]percent/.test(a));
  if (given) return undefined;
  const flag = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
  setFlagsFromString(flag);
  return flag;
}
