/**
 * The storm's fresh phone, in a worker thread of its own: the storm sender shares the bench's event
 * loop with tens of thousands of responses and NOTIFYs a second, so a phone timed there would measure
 * the bench's own backlog (its socket bound, its send and its answer each queued behind the storm's
 * messages), not the gateway. This thread sends one SUBSCRIBE at `at` (epoch ms, the storm's last slot)
 * from its own address and times it to its final response on its own clock.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { udpRequest } from '../test/helpers/sip-udp.js';

export interface FreshPhoneTask {
  port: number;
  user: string;
  /** epoch ms to send at */
  at: number;
  localAddress: string;
}

export interface FreshPhoneResult {
  /** final status, 0 when none came within the timeout */
  status: number;
  sentAt: number;
  answeredAt: number;
}

const task = workerData as FreshPhoneTask;
await new Promise((resolve) => setTimeout(resolve, Math.max(0, task.at - Date.now())));
const sentAt = Date.now();
let status = 0;
try {
  const response = await udpRequest({
    method: 'SUBSCRIBE',
    user: task.user,
    port: task.port,
    headers: ['Event: presence', 'Accept: application/pidf+xml', 'Expires: 600'],
    retransmitMs: 500,
    timeoutMs: 10_000,
    localAddress: task.localAddress,
  });
  status = response.status;
} catch {
  // no final response within the timeout: status stays 0
}
const result: FreshPhoneResult = { status, sentAt, answeredAt: Date.now() };
parentPort?.postMessage(result);
