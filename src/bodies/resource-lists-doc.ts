/**
 * RFC 4826 resource-lists documents (application/resource-lists+xml), as a
 * client sends its own list in a SUBSCRIBE (RFC 5367). Read only: the
 * entries' URIs and display names, nested lists flattened in document order,
 * duplicates dropped. entry-ref and external point into an XCAP server the
 * gateway does not have; they are counted, not followed.
 */
import { BodyError } from './errors.js';
import { NS_RESOURCE_LISTS } from './namespaces.js';
import { attrValue, parseXml, textValue, type ParseXmlOptions, type XmlElement } from './xml.js';

export const RESOURCE_LISTS_CONTENT_TYPE = 'application/resource-lists+xml';

export interface ResourceListEntry {
  uri: string;
  displayName?: string;
}

export interface ResourceListsDocument {
  entries: ResourceListEntry[];
  /** entry-ref and external elements (not followed). */
  references: number;
}

export interface ParseResourceListsOptions extends ParseXmlOptions {
  /** More distinct entries than this: BodyError 413 (checked while reading). */
  maxEntries?: number;
}

/** Parse a resource-lists document. BodyError 400 malformed, 413 too many entries, 415 another document. */
export function parseResourceLists(body: Buffer | string, options: ParseResourceListsOptions = {}): ResourceListsDocument {
  const root = parseXml(body, options);
  if (root.name !== 'resource-lists' || root.ns !== NS_RESOURCE_LISTS) {
    throw new BodyError(415, `not a resource-lists document (root ${root.ns === '' ? root.name : `{${root.ns}}${root.name}`})`);
  }
  const max = options.maxEntries ?? Number.MAX_SAFE_INTEGER;
  const doc: ResourceListsDocument = { entries: [], references: 0 };
  const seen = new Set<string>();
  const walk = (list: XmlElement, depth: number): void => {
    if (depth > 16) throw new BodyError(400, 'resource-lists: lists nested more than 16 deep');
    for (const c of list.children) {
      if (c.ns !== NS_RESOURCE_LISTS) continue; // extensions (e.g. RFC 5364 copyControl) are ignored
      if (c.name === 'list') walk(c, depth + 1);
      else if (c.name === 'entry-ref' || c.name === 'external') doc.references++;
      else if (c.name === 'entry') {
        const uri = attrValue(c, 'uri');
        if (uri === undefined) throw new BodyError(400, 'resource-lists: an entry without uri');
        const key = uri.toLowerCase();
        if (seen.has(key)) continue;
        seen.add(key);
        if (seen.size > max) throw new BodyError(413, `resource-lists: more than ${max} entries`);
        const entry: ResourceListEntry = { uri };
        const name = c.children.find((d) => d.ns === NS_RESOURCE_LISTS && d.name === 'display-name');
        const display = textValue(name);
        if (display !== undefined) entry.displayName = display;
        doc.entries.push(entry);
      }
    }
  };
  walk(root, 0);
  return doc;
}
