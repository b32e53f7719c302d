/** The simulator's data model: tenant, users, app registrations, service accounts. */

/** The Teams service plan (TeamspaceAPI) that marks a Teams-licensed user. */
export const TEAMS_SERVICE_PLAN_ID = '57ff2da0-773e-42df-b2af-ffb7a2317929';

/** Microsoft Graph's application id and resource URI, the only resource the simulator issues tokens for. */
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';

export interface AssignedPlan {
  assignedDateTime: string;
  capabilityStatus: string;
  service: string;
  servicePlanId: string;
}

/** A directory user as the simulator stores it (Graph property names). */
export interface SimUser {
  id: string;
  displayName: string;
  userPrincipalName: string;
  mail: string | null;
  mailNickname: string;
  givenName: string | null;
  surname: string | null;
  jobTitle: string | null;
  mobilePhone: string | null;
  officeLocation: string | null;
  preferredLanguage: string | null;
  businessPhones: string[];
  accountEnabled: boolean;
  assignedPlans: AssignedPlan[];
}

/** What a test or a users file gives to add a user; everything but displayName and UPN is optional. */
export interface SimUserInput {
  id?: string;
  displayName: string;
  userPrincipalName: string;
  mail?: string | null;
  mailNickname?: string;
  givenName?: string | null;
  surname?: string | null;
  jobTitle?: string | null;
  mobilePhone?: string | null;
  officeLocation?: string | null;
  preferredLanguage?: string | null;
  businessPhones?: string[];
  accountEnabled?: boolean;
  /** Give the user the Teams service plan (default true). */
  teams?: boolean;
}

/** An app registration in the tenant, with the permissions an admin consented to. */
export interface AppRegistration {
  clientId: string;
  displayName?: string;
  /** Client secrets (any one works). */
  secrets?: string[];
  /** Public certificates (PEM) for client assertions. */
  certificates?: string[];
  /** Application permissions (roles), e.g. Presence.ReadWrite.All. */
  applicationPermissions?: string[];
  /** Delegated permissions (scp), e.g. Presence.Read.All. */
  delegatedPermissions?: string[];
  /** Allow public-client flows (password grant without a client credential). */
  allowPublicClient?: boolean;
}

/** A user account that can sign in with a password (the vendors' "service account"). */
export interface ServiceAccount {
  username: string;
  password: string;
  /** Conditional access demands MFA: the password grant fails with AADSTS50076. */
  mfa?: boolean;
  /** The directory user behind the account; created (no Teams licence) when absent. */
  userId?: string;
  displayName?: string;
}

/** Graph presence as the API returns it. */
export interface PresenceResource {
  id: string;
  availability: string;
  activity: string;
  statusMessage: StatusMessageResource | null;
  outOfOfficeSettings: { message: string | null; isOutOfOffice: boolean };
  sequenceNumber: string;
  workLocation: WorkLocationResource;
}

/** Graph userWorkLocation, as on the presence resource (presence resource type, workLocation). */
export interface WorkLocationResource {
  workLocationType: 'unknown' | 'office' | 'remote' | 'timeOff';
  source: 'none' | 'manual' | 'scheduled' | 'automatic';
  placeId: string | null;
}

export interface StatusMessageResource {
  message: { content: string; contentType: string };
  expiryDateTime: { dateTime: string; timeZone: string } | null;
  publishedDateTime: string;
}
