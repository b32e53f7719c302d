/**
 * Demo mode (`graphSimulator:` in config): the built-in Graph simulator
 * started and seeded with the configured people, and the Graph config and
 * webhook certificate that point the gateway at it as at a real tenant.
 */
import type { GatewayConfig } from './config/schema.js';
import type { GraphConfig } from './graph/index.js';
import type { GraphSimulator } from './graph-simulator/index.js';
import type { Logger } from './util/logger.js';

export interface DemoTenant {
  simulator: GraphSimulator;
  graph: GraphConfig;
  tls: { cert: string; key: string };
}

/**
 * The demo tenant: the built-in simulator seeded with one Teams user per
 * configured person (UPN <id>@<tenant domain>, extension as business phone),
 * and a Graph config pointing at it exactly as a real tenant's would.
 */
export async function startDemoTenant(config: GatewayConfig, logger: Logger): Promise<DemoTenant> {
  const options = config.graphSimulator!;
  const [{ DEFAULT_TENANT_DOMAIN, DEMO_APP, DEMO_SERVICE_ACCOUNT }, { createServerCertificate }, { startRecordedSimulator }, { parseGraphConfig }] =
    await Promise.all([
      import('./graph-simulator/index.js'),
      import('./graph-simulator/certs.js'),
      import('./graph-simulator/recorded.js'),
      import('./graph/index.js'),
    ]);
  const { sim, caPath } = await startRecordedSimulator({
    port: options.port,
    ...(options.dir !== undefined ? { dir: options.dir } : {}),
    logger: logger.child({ component: 'graph-simulator' }),
    allowHttpNotificationUrl: false,
    users: config.users.map((u) => ({
      displayName: u.displayName,
      userPrincipalName: `${u.id}@${DEFAULT_TENANT_DOMAIN}`,
      mailNickname: u.id,
      ...(u.extension !== undefined ? { businessPhones: [u.extension] } : {}),
    })),
  });
  // The webhook's certificate comes from the simulator's CA, which it trusts like a public CA.
  const cert = createServerCertificate(sim.ca);
  const graph = parseGraphConfig({
    tenantId: sim.tenantId,
    clientId: DEMO_APP.clientId,
    clientSecret: DEMO_APP.secrets?.[0],
    authorityHost: sim.origin,
    graphBaseUrl: sim.graphBaseUrl,
    trustedCaPath: caPath,
    serviceAccounts: [{ username: DEMO_SERVICE_ACCOUNT.username, password: DEMO_SERVICE_ACCOUNT.password }],
    webhook: { publicUrl: `https://127.0.0.1:${config.http.port}/graph/notifications` },
    poll: { intervalSec: 30 },
  });
  logger.info({ graph: sim.graphBaseUrl, control: `${sim.origin}/_sim`, ca: caPath }, 'demo: built-in Graph simulator running');
  return { simulator: sim, graph, tls: { cert: cert.certPem, key: cert.keyPem } };
}
