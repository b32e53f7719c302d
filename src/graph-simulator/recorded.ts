/**
 * A simulator whose CA and address are recorded in a directory, so that the
 * `graph-sim` control commands (and a restarted simulator) find and trust it.
 * Used by `graph-sim start` and by the gateway's demo mode.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGraphSimulator, type GraphSimulator, type GraphSimulatorOptions } from './server.js';

export const DEFAULT_SIM_DIR = path.join(tmpdir(), 'presence-gateway-graph-sim');

export interface RecordedSimulator {
  sim: GraphSimulator;
  /** The CA certificate file clients should trust. */
  caPath: string;
}

export async function startRecordedSimulator(
  options: Omit<GraphSimulatorOptions, 'ca'> & { dir?: string },
): Promise<RecordedSimulator> {
  const { dir = DEFAULT_SIM_DIR, ...simOptions } = options;
  mkdirSync(dir, { recursive: true });
  const caPath = path.join(dir, 'ca.pem');
  const caKeyPath = path.join(dir, 'ca-key.pem');
  const ca =
    existsSync(caPath) && existsSync(caKeyPath)
      ? { certPem: readFileSync(caPath, 'utf8'), keyPem: readFileSync(caKeyPath, 'utf8') }
      : undefined;
  const sim = await startGraphSimulator({ ...simOptions, ...(ca ? { ca } : {}) });
  writeFileSync(caPath, sim.ca.certPem);
  writeFileSync(caKeyPath, sim.ca.keyPem, { mode: 0o600 });
  chmodSync(caKeyPath, 0o600);
  writeFileSync(path.join(dir, 'sim.json'), JSON.stringify({ origin: sim.origin, tenantId: sim.tenantId, pid: process.pid }, null, 2));
  return { sim, caPath };
}
