/**
 * Option tags (RFC 3261 §19.2) in Require, Supported, Unsupported and
 * Proxy-Require: comma-separated tokens, possibly over several header lines.
 */
import type { Headers } from './headers.js';

/** The option tags of every `name` header, lower-cased, in order, without duplicates or empties. */
export function optionTags(headers: Headers, name: string): string[] {
  const out: string[] = [];
  for (const value of headers.getAll(name)) {
    for (const raw of value.split(',')) {
      const tag = raw.trim().toLowerCase();
      if (tag.length > 0 && !out.includes(tag)) out.push(tag);
    }
  }
  return out;
}

/** Whether `name` lists `tag` (case-insensitive). */
export function hasOptionTag(headers: Headers, name: string, tag: string): boolean {
  return optionTags(headers, name).includes(tag.toLowerCase());
}

/**
 * The tags of Require the UAS does not support (RFC 3261 §8.2.2.3: a non-empty
 * answer means 420 Bad Extension with these in Unsupported).
 */
export function unsupportedRequirements(headers: Headers, supported: ReadonlySet<string>): string[] {
  return optionTags(headers, 'require').filter((tag) => !supported.has(tag));
}
