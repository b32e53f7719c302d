/** XML namespace URIs of the presence and dialog documents. */

/** RFC 3863 PIDF. */
export const NS_PIDF = 'urn:ietf:params:xml:ns:pidf';
/** Pre-RFC CPIM PIDF drafts; same document shape, still seen on old clients. */
export const NS_CPIM_PIDF = 'urn:ietf:params:xml:ns:cpim-pidf';
/** RFC 4479 data model (person, device). */
export const NS_DATA_MODEL = 'urn:ietf:params:xml:ns:pidf:data-model';
/** RFC 4480 RPID. */
export const NS_RPID = 'urn:ietf:params:xml:ns:pidf:rpid';
/** Older RPID draft namespace that CUCM still writes. */
export const NS_RPID_STATUS = 'urn:ietf:params:xml:ns:pidf:status:rpid';
/** Cisco RPID extensions (dnd, alerting). */
export const NS_CISCO_RPID = 'urn:cisco:params:xml:ns:pidf:rpid';
/** RFC 4235 dialog-info. */
export const NS_DIALOG_INFO = 'urn:ietf:params:xml:ns:dialog-info';
/** Bound to the `xml` prefix by definition. */
export const NS_XML = 'http://www.w3.org/XML/1998/namespace';

/** True for the namespaces whose elements are RPID activities. */
export function isRpidNamespace(ns: string): boolean {
  return ns === NS_RPID || ns === NS_RPID_STATUS;
}
/** RFC 4826 resource lists. */
export const NS_RESOURCE_LISTS = 'urn:ietf:params:xml:ns:resource-lists';
/** RFC 3858 watcher information. */
export const NS_WATCHERINFO = 'urn:ietf:params:xml:ns:watcherinfo';
