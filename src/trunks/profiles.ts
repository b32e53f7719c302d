/**
 * What each PBX / presence-server family does (reference: sip-presence.md):
 * which event the gateway watches there, what it publishes, what the trunk
 * may push unsolicited, and which output flavor its own SUBSCRIBEs get.
 */
import type { VendorProfile } from './config.js';

export type { TrunkDirection, VendorProfile } from './config.js';

/** Output flavor of NOTIFY bodies for a watcher. */
export type WatcherProfile = 'rfc' | 'cisco' | 'polycom' | 'asterisk';

export type WatchEvent = 'dialog' | 'presence';

export interface ProfileTraits {
  /** event package the gateway SUBSCRIBEs to at the trunk */
  watchEvent: WatchEvent;
  /** Accept of those SUBSCRIBEs (some servers answer 489 without one) */
  watchAccept: readonly string[];
  /** PIDF flavor of PUBLISH bodies sent to the trunk */
  publishFlavor: 'rfc' | 'cisco';
  /** the trunk may send NOTIFY outside any subscription of ours */
  unsolicitedNotify: boolean;
  /** the trunk may PUBLISH to the gateway */
  inboundPublish: boolean;
  /** body flavor for subscriptions that come from this trunk */
  output: WatcherProfile;
}

const DIALOG_ACCEPT: readonly string[] = Object.freeze(['application/dialog-info+xml']);
const PIDF_ACCEPT: readonly string[] = Object.freeze(['application/pidf+xml']);

const TRAITS: Readonly<Record<VendorProfile, Readonly<ProfileTraits>>> = {
  generic: Object.freeze({
    watchEvent: 'dialog',
    watchAccept: DIALOG_ACCEPT,
    publishFlavor: 'rfc',
    unsolicitedNotify: false,
    inboundPublish: true,
    output: 'rfc',
  }),
  // Asterisk serves dialog-info from hints; it pushes hint state by outbound_publish, not by unsolicited NOTIFY
  asterisk: Object.freeze({
    watchEvent: 'dialog',
    watchAccept: DIALOG_ACCEPT,
    publishFlavor: 'rfc',
    unsolicitedNotify: false,
    inboundPublish: true,
    output: 'asterisk',
  }),
  // CUCM answers presence SUBSCRIBEs with PIDF (rpid + Cisco extensions) and may push unsolicited NOTIFY
  cisco: Object.freeze({
    watchEvent: 'presence',
    watchAccept: PIDF_ACCEPT,
    publishFlavor: 'cisco',
    unsolicitedNotify: true,
    inboundPublish: false,
    output: 'cisco',
  }),
  kamailio: Object.freeze({
    watchEvent: 'dialog',
    watchAccept: DIALOG_ACCEPT,
    publishFlavor: 'rfc',
    unsolicitedNotify: false,
    inboundPublish: true,
    output: 'rfc',
  }),
  polycom: Object.freeze({
    watchEvent: 'dialog',
    watchAccept: DIALOG_ACCEPT,
    publishFlavor: 'rfc',
    unsolicitedNotify: false,
    inboundPublish: true,
    output: 'polycom',
  }),
};

export function profileTraits(profile: VendorProfile): ProfileTraits {
  return TRAITS[profile];
}

/** The profile's traits with the watched event overridden (trunk config `watch.event`). */
export function traitsFor(profile: VendorProfile, watchEvent?: WatchEvent): ProfileTraits {
  const base = TRAITS[profile];
  if (watchEvent === undefined || watchEvent === base.watchEvent) return base;
  return Object.freeze({ ...base, watchEvent, watchAccept: watchEvent === 'dialog' ? DIALOG_ACCEPT : PIDF_ACCEPT });
}
