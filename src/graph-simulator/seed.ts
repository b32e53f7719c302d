import type { AppRegistration, ServiceAccount, SimUserInput } from './model.js';

/**
 * The default seed: one tenant, one demo app, one service account and the
 * gateway demo's five people (config/demo.yaml: extensions 1001-1005).
 * Fixed ids so a demo configuration can name them.
 */
export const DEFAULT_TENANT_ID = '5d3e8f1a-6b2c-4d7e-9f10-2a3b4c5d6e7f';
export const DEFAULT_TENANT_DOMAIN = 'contoso.example';

export const DEMO_APP: Required<Pick<AppRegistration, 'clientId' | 'displayName'>> & AppRegistration = {
  clientId: '3a7c9e11-2b4d-4f60-8a1b-5c6d7e8f9a0b',
  displayName: 'presence-gateway demo',
  secrets: ['demo-secret-not-for-production'],
  applicationPermissions: ['Presence.ReadWrite.All', 'Presence.Read.All', 'User.Read.All'],
  delegatedPermissions: ['Presence.Read.All', 'User.Read', 'User.ReadBasic.All'],
};

export const DEMO_SERVICE_ACCOUNT: ServiceAccount = {
  username: 'svc-presence@contoso.example',
  password: 'Demo-Passw0rd!',
  mfa: false,
  userId: '9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b',
  displayName: 'Presence gateway service',
};

function person(id: string, given: string, surname: string, nick: string, ext: string): SimUserInput {
  return {
    id,
    displayName: `${given} ${surname}`,
    givenName: given,
    surname,
    userPrincipalName: `${nick}@${DEFAULT_TENANT_DOMAIN}`,
    mail: `${nick}@${DEFAULT_TENANT_DOMAIN}`,
    mailNickname: nick,
    businessPhones: [`+49 30 1234 5${ext}`],
    jobTitle: null,
    officeLocation: 'Berlin',
    preferredLanguage: 'en-US',
    teams: true,
  };
}

export const DEMO_USERS: SimUserInput[] = [
  person('a1000000-0000-4000-8000-000000001001', 'Anna', 'Meier', 'anna', '1001'),
  person('a1000000-0000-4000-8000-000000001002', 'Ben', 'Okafor', 'ben', '1002'),
  person('a1000000-0000-4000-8000-000000001003', 'Chiara', 'Rossi', 'chiara', '1003'),
  person('a1000000-0000-4000-8000-000000001004', 'Dmitri', 'Volkov', 'dmitri', '1004'),
  person('a1000000-0000-4000-8000-000000001005', 'Elif', 'Yilmaz', 'elif', '1005'),
  {
    id: 'a1000000-0000-4000-8000-000000009001',
    displayName: 'Reception Printer',
    userPrincipalName: `printer@${DEFAULT_TENANT_DOMAIN}`,
    mail: null,
    mailNickname: 'printer',
    teams: false,
  },
];
