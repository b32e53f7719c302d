/**
 * The Microsoft Graph + Entra ID simulator: library entry point.
 *
 * Point the real libraries at it by configuration only:
 * - msal-node: auth.authority = sim.authorityUrl, auth.knownAuthorities = [sim.host]
 *   (no instance discovery at Microsoft), and trust sim.caPem: either
 *   NODE_EXTRA_CA_CERTS=<ca.pem> at process start (native fetch honours it) or a
 *   system.networkClient with that CA.
 * - Graph client: Client.initWithMiddleware({ baseUrl: origin + '/', customHosts:
 *   new Set([sim.hostname]) }); trust the CA the same way (env, or a last
 *   middleware doing HTTPS with the CA).
 */
export { startGraphSimulator, type GraphSimulator, type GraphSimulatorOptions } from './server.js';
export { ManualClock, RealClock, type SimClock, type ScheduledTask } from './clock.js';
export { SimControl, SimControlError, TEAMS_ACTIONS, TEAMS_CLIENT_SESSION, type TeamsAction } from './control.js';
export { createCertificateAuthority, createSelfSignedCertificate, certificateThumbprints, type CertificateWithKey } from './certs.js';
export type { AppRegistration, ServiceAccount, SimUser, SimUserInput, PresenceResource } from './model.js';
export { TEAMS_SERVICE_PLAN_ID } from './model.js';
export type { SessionInfo } from './presence-engine.js';
export type { FaultSpec, FaultKind, ThrottleConfig } from './throttle.js';
export type { SimCounters, NotificationCounters } from './counters.js';
export type { LifecycleEvent, NotifierOptions } from './notifier.js';
export { DEFAULT_TENANT_ID, DEFAULT_TENANT_DOMAIN, DEMO_APP, DEMO_SERVICE_ACCOUNT, DEMO_USERS } from './seed.js';
