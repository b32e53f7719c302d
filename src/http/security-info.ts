/** The diagnostics page's summary of the security log's tally (keys "event\u0000reason"). */
import type { SecurityInfo } from './admin-source.js';

/** The diagnostics page's summary of the security log's tally. */
export function securityInfo(
  counts: ReadonlyMap<string, number>,
  lockouts: { lockedSources: number; lockedUsers: number },
): SecurityInfo {
  const info: SecurityInfo = {
    authFailures: 0,
    refusals: 0,
    lockouts: 0,
    activeLockouts: lockouts.lockedSources + lockouts.lockedUsers,
    connectionsRefused: 0,
    connectionsClosed: 0,
  };
  for (const [key, n] of counts) {
    const event = key.slice(0, key.indexOf('\u0000'));
    if (event === 'auth_failed') info.authFailures += n;
    else if (event === 'auth_refused') info.refusals += n;
    else if (event === 'lockout_start') info.lockouts += n;
    else if (event === 'connection_refused') info.connectionsRefused += n;
    else if (event === 'connection_closed') info.connectionsClosed += n;
  }
  return info;
}
