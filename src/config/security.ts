/**
 * Config of the gateway's defences (own block, plugged into schema.ts):
 * `sip.connections` (connection hygiene of TCP, TLS and WebSocket) and
 * `log.security` (the security log fail2ban and a SIEM read).
 *
 *   sip:
 *     connections:
 *       messageTimeoutSec: 10   # an inbound connection must complete a valid SIP message in this time
 *       strangerIdleSec: 30     # a connection nothing was let in on is closed after this idle time
 *       maxPerSource: 32        # open connections per source address (trunks, trusted networks exempt)
 *   log:
 *     security:
 *       destination: stdout     # or a file path, e.g. /var/log/presence-gateway/security.log
 */
import { z } from 'zod';

const whole = (min: number, max: number, unit: string) =>
  z
    .number({ message: `a whole number of ${unit} from ${min} to ${max}` })
    .int(`a whole number of ${unit} from ${min} to ${max}`)
    .min(min, `at least ${min} ${unit}; raise it (0 turns the limit off)`)
    .max(max, `at most ${max} ${unit}; lower it`);

export const connectionsSchema = z
  .strictObject({
    messageTimeoutSec: whole(0, 600, 'seconds').default(10),
    strangerIdleSec: whole(0, 86_400, 'seconds').default(30),
    maxPerSource: whole(0, 1_000_000, 'connections').default(32),
  })
  .prefault({});

export const securityLogSchema = z
  .strictObject({
    /** stdout, or a file the lines are appended to */
    destination: z
      .string({ message: 'stdout, or the path of a file to append to' })
      .min(1, 'stdout, or the path of a file to append to')
      .default('stdout'),
    /** lines per source address per second before further lines are only counted */
    linesPerSourcePerSec: whole(1, 10_000, 'lines').default(10),
  })
  .prefault({});

export type ConnectionsConfig = z.output<typeof connectionsSchema>;
export type SecurityLogConfig = z.output<typeof securityLogSchema>;
