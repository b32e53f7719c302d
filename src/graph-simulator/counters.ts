/** What the control API reports: requests by route and status, notification outcomes. */
export interface SimCounters {
  /** "METHOD /route/pattern STATUS" → count */
  requests: Record<string, number>;
  notifications: NotificationCounters;
}

export interface NotificationCounters {
  /** change notifications accepted by the endpoint */
  delivered: number;
  /** POST attempts that failed (error status, network error or too slow) */
  failedAttempts: number;
  /** retries scheduled */
  retried: number;
  /** notifications given up (4 h of retries, or an endpoint in drop state) */
  dropped: number;
  /** notifications sent with an initial delay because the endpoint is slow */
  delayed: number;
  /** lifecycle notifications accepted by the endpoint */
  lifecycleDelivered: number;
  /** validation handshakes that passed / failed */
  validationsPassed: number;
  validationsFailed: number;
}

export class Counters {
  private readonly requests = new Map<string, number>();
  readonly notifications: NotificationCounters = Counters.zero();

  private static zero(): NotificationCounters {
    return { delivered: 0, failedAttempts: 0, retried: 0, dropped: 0, delayed: 0, lifecycleDelivered: 0, validationsPassed: 0, validationsFailed: 0 };
  }

  request(method: string, route: string, status: number): void {
    const key = `${method} ${route} ${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  snapshot(): SimCounters {
    return { requests: Object.fromEntries(this.requests), notifications: { ...this.notifications } };
  }

  reset(): void {
    this.requests.clear();
    Object.assign(this.notifications, Counters.zero());
  }
}
