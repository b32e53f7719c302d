/**
 * What /readyz says about the Graph side: its auth is up when the app token
 * was had and no token is failing.
 */
import type { GraphInfo } from './admin-source.js';

/** Graph auth is up when the app token was had and no token is failing. */
export function graphAuthOk(status: Pick<GraphInfo, 'started' | 'tokens'> | undefined): boolean {
  if (status === undefined || !status.started) return false;
  const app = status.tokens.find((t) => t.name === 'app');
  if (app === undefined || !app.ok) return false;
  return status.tokens.every((t) => t.ok || t.lastError === undefined);
}
