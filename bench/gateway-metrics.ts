/**
 * Reads a benchmark gateway's own counters from its /metrics (Prometheus
 * text over https, the certificate from the demo's Graph simulator CA), so a
 * phase can compare what SIPp saw with what the gateway holds: e.g. the
 * subscriptions live at a stop against those restored after it.
 */
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { GatewayProcess } from '../test/helpers/gateway-process.js';

export interface GatewayCounts {
  /** Watcher subscriptions live, all event packages. */
  subscriptions: number;
  /** NOTIFYs that got no answer (local 408 after Timer F): each ends its subscription (RFC 6665 §4.2.2). */
  notifyTimeouts: number;
}

function sum(text: string, pattern: RegExp): number {
  let n = 0;
  for (const line of text.split('\n')) {
    const m = pattern.exec(line);
    if (m?.[1] !== undefined) n += Number(m[1]);
  }
  return n;
}

/** The counts, from a gateway started with the demo's Graph simulator (its CA signs the https listener). */
export async function gatewayCounts(gw: GatewayProcess): Promise<GatewayCounts> {
  const config = parse(readFileSync(gw.configPath, 'utf8')) as { http?: { port?: number }; graphSimulator?: { dir?: string } };
  const port = config.http?.port;
  const dir = config.graphSimulator?.dir;
  if (port === undefined || dir === undefined) throw new Error(`${gw.configPath}: no http.port or graphSimulator.dir to read /metrics with`);
  const ca = readFileSync(join(dir, 'ca.pem'));
  const text = await new Promise<string>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics', ca, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics answered ${res.statusCode}`))));
    }).on('error', reject);
  });
  return {
    subscriptions: sum(text, /^subscriptions\{[^}]*state="active"[^}]*\} (\d+)/),
    notifyTimeouts: sum(text, /^notify_failed_total\{[^}]*status="408"[^}]*\} (\d+)/),
  };
}
