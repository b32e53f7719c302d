/**
 * Watcher output profiles: which flavor of body a watcher gets. Phones differ
 * in what they can render (sip-presence.md): Cisco phones light BLF only from
 * a PIDF person activity, Polycom phones want call-id and tags on every
 * dialog, Asterisk-style consumers (and some phones) expect a single dialog.
 *
 * Selection, first match wins: the profile the caller decided (a trunk's
 * output profile), then User-Agent rules (configured first, then the
 * built-in ones), then the package's Accept-based default.
 */
import type { SipRequest } from '../sip/message.js';

/** 'xpidf': presence as XPIDF when the watcher accepts it at all (firmware that lists PIDF but renders XPIDF). */
export type WatcherProfile = 'rfc' | 'cisco' | 'polycom' | 'asterisk' | 'xpidf';

export const WATCHER_PROFILES: readonly WatcherProfile[] = ['rfc', 'cisco', 'polycom', 'asterisk', 'xpidf'];

/** What a package may know of the watcher when it picks a body format. */
export interface WatcherInfo {
  /** User-Agent of the SUBSCRIBE. */
  userAgent?: string;
  /** A profile decided by the caller (e.g. the trunk the request came from); wins over rules. */
  profile?: WatcherProfile;
}

export interface WatcherProfileRule {
  /** Regular expression tested against the User-Agent (case-insensitive). */
  userAgent: string;
  profile: WatcherProfile;
}

/** Built-in rules, tried after the configured ones. */
export const DEFAULT_WATCHER_PROFILE_RULES: readonly WatcherProfileRule[] = Object.freeze([
  { userAgent: 'Cisco|CP-\\d', profile: 'cisco' },
  { userAgent: 'Polycom|PolyEdge|VVX', profile: 'polycom' },
]);

/** Only this much of a User-Agent is matched (bounds the work a hostile header can cause). */
const MAX_USER_AGENT = 256;
/** Distinct User-Agents whose answer is remembered (phones of one model send the same string). */
const CACHE_LIMIT = 512;

interface CompiledRule {
  pattern: RegExp;
  profile: WatcherProfile;
}

export class WatcherProfileSelector {
  private readonly rules: CompiledRule[];
  private readonly cache = new Map<string, WatcherProfile | null>();

  /**
   * `rules` are tried in order before the built-in defaults; pass
   * `{ defaults: false }` to use only `rules`. Throws on an invalid regex
   * (the config schema checks them first).
   */
  constructor(rules: readonly WatcherProfileRule[] = [], options: { defaults?: boolean } = {}) {
    const all = options.defaults === false ? rules : [...rules, ...DEFAULT_WATCHER_PROFILE_RULES];
    this.rules = all.map((r) => ({ pattern: new RegExp(r.userAgent, 'i'), profile: r.profile }));
  }

  /** The profile for a watcher, undefined when nothing decides it (the package uses Accept). */
  select(watcher: WatcherInfo | undefined): WatcherProfile | undefined {
    if (watcher === undefined) return undefined;
    if (watcher.profile !== undefined) return watcher.profile;
    const ua = watcher.userAgent;
    if (ua === undefined || ua.length === 0) return undefined;
    return this.byUserAgent(ua);
  }

  /** The profile the User-Agent rules give, undefined when none matches. */
  byUserAgent(userAgent: string): WatcherProfile | undefined {
    const ua = userAgent.length > MAX_USER_AGENT ? userAgent.slice(0, MAX_USER_AGENT) : userAgent;
    const cached = this.cache.get(ua);
    if (cached !== undefined) return cached ?? undefined;
    let found: WatcherProfile | null = null;
    for (const rule of this.rules) {
      if (rule.pattern.test(ua)) {
        found = rule.profile;
        break;
      }
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(ua, found);
    return found ?? undefined;
  }
}

/** A selector with only the built-in rules (packages use it when given none). */
export const defaultWatcherProfileSelector = new WatcherProfileSelector();

/** WatcherInfo of an inbound SUBSCRIBE: its User-Agent and the profile the access layer set. */
export function watcherInfoOf(req: { request: SipRequest; watcherProfile?: WatcherProfile | undefined }): WatcherInfo {
  const info: WatcherInfo = {};
  const ua = req.request.headers.get('user-agent');
  if (ua !== undefined) info.userAgent = ua;
  if (req.watcherProfile !== undefined) info.profile = req.watcherProfile;
  return info;
}
