/**
 * What the Graph side reports as it works (the gateway's metrics listen):
 * request statuses, Teams readings that changed someone's state, and PBX
 * states Graph accepted. Structural, so src/graph imports no metrics code.
 */
export interface GraphObserver {
  /** A Graph request attempt ended (retries count one each): its HTTP status, 0 when no answer came. */
  graphRequest?(status: number): void;
  /**
   * A Teams reading changed the state of `personId`; `elapsedMs` is how long
   * ago the change became known (the notification arrived, or the poll began).
   */
  teamsApplied?(personId: string, elapsedMs: number): void;
  /** Graph accepted a presence write; `seconds` since the state that asked for it arose. */
  sipToTeams?(seconds: number): void;
  /**
   * A notification was dropped (still answered 202): wrong or missing
   * clientState, another tenant, a validation token, data signature or
   * decryption that failed.
   */
  notificationDropped?(reason: 'clientState' | 'tenant' | 'validationToken' | 'signature' | 'decryption'): void;
}

/** The observer of one Graph runtime, replaceable while it runs. */
export type ObserverRef = () => GraphObserver | undefined;
