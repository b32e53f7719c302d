import type { Logger } from '../../util/logger.js';
import { canTransition, throwIfStrict, transitionTable, type RefusalPolicy, type TransitionTable } from '../../util/state-machine.js';

/** The states of a non-INVITE transaction, client and server alike. */
export type TransactionState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/**
 * RFC 3261 §17.1.2.2 (Figure 6, client) and §17.2.2 (Figure 8, server) draw
 * the same non-INVITE graph: a provisional response moves Trying (or
 * Proceeding again) to Proceeding, the final one to Completed, or straight to
 * Terminated over a reliable transport (Timers K and J are zero), on a timeout
 * or a transport error; Completed ends in Terminated.
 */
export const NON_INVITE_TRANSITIONS: TransitionTable<TransactionState> = transitionTable<TransactionState>({
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['proceeding', 'completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
});

/** What a refused change names in the log. */
export interface StatefulTransaction {
  readonly state: TransactionState;
  readonly method: string;
  readonly branch: string;
}

/** The refusal policy of every transaction in this process: 'log' unless a test asks for 'throw'. */
let refusals: RefusalPolicy = 'log';

/** Tests: make a refused transaction change throw (InvalidTransitionError) instead of being logged; production never calls it. */
export function setTransactionRefusals(policy: RefusalPolicy): void {
  refusals = policy;
}

/**
 * Whether `tx` may go from its state to `next`; a refused change is logged
 * at error level, or thrown under setTransactionRefusals('throw') (see
 * src/util/state-machine.ts for the policy). The caller makes the change
 * when true. A table lookup: no allocation unless refused.
 */
export function mayEnter(tx: StatefulTransaction, next: TransactionState, logger: Logger): boolean {
  if (canTransition(NON_INVITE_TRANSITIONS, tx.state, next)) return true;
  throwIfStrict(refusals, `${tx.method} transaction`, tx.state, next);
  logger.error({ method: tx.method, branch: tx.branch, from: tx.state, to: next }, 'transaction state change refused');
  return false;
}

/** The state part both non-INVITE transactions share: read through `state`, changed only through `enter`. */
export abstract class TransactionStateHolder implements StatefulTransaction {
  private current: TransactionState = 'trying';
  abstract readonly method: string;
  abstract readonly branch: string;

  get state(): TransactionState {
    return this.current;
  }

  /** Every state change goes through here, guarded by the non-INVITE graph. */
  protected enter(next: TransactionState, logger: Logger): boolean {
    if (!mayEnter(this, next, logger)) return false;
    this.current = next;
    return true;
  }
}
