export { AccessControl, FORBIDDEN_REASON, type AccessControlOptions, type AccessDecision, type AccessRequest, type TrunkLookup } from './access.js';
export { CidrSet, parseCidr, ipKey, type Cidr } from './cidr.js';
export { profileTraits, traitsFor, type ProfileTraits, type TrunkDirection, type VendorProfile, type WatchEvent, type WatcherProfile } from './profiles.js';
export { TrunkRegistry, type TrunkRegistryOptions, type TrunkSender } from './registry.js';
export { lookupResolver, type TrunkResolver } from './resolver.js';
export { parseTrunkTarget, defaultPort, type TrunkTarget, type TrunkTransport } from './target.js';
export { Trunk, type PersonRef, type TrunkStatus } from './trunk.js';
