/**
 * The hub source the PUBLISH compositor's state goes under: 'publish' on a
 * single node, `publish@<nodeId>` on each node of a cluster (so that two
 * nodes' publications for one person compose in the hub instead of
 * replacing each other). The stamp on a published state (its origin) is
 * `publish:<address>`. For source priority and origins every one of these is
 * the one feeder 'publish'.
 */
export const PUBLISH_SOURCE = 'publish';

/** The PUBLISH compositor's hub source on node `nodeId`. */
export function publishSourceOf(nodeId: string): string {
  return `${PUBLISH_SOURCE}@${nodeId}`;
}

/** Whether a source or origin name is the PUBLISH compositor's: 'publish', `publish@<node>`, `publish:<address>`. */
export function isPublishSource(name: string): boolean {
  if (!name.startsWith(PUBLISH_SOURCE)) return false;
  if (name.length === PUBLISH_SOURCE.length) return true;
  const c = name.charCodeAt(PUBLISH_SOURCE.length);
  return c === 0x40 /* @ */ || c === 0x3a /* : */;
}
