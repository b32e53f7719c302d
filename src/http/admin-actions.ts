/**
 * Two actions of the admin API: what a new watcher of a person would get
 * now (the body rendered by packages of our own over the same store, their
 * caches being theirs), and a resync (Teams presence read again, the current
 * state sent to every watcher).
 */
import type { Directory } from '../core/directory.js';
import type { PresenceHub } from '../core/presence-hub.js';
import type { GraphRuntime } from '../graph/index.js';
import { DialogPackage } from '../simple/dialog-package.js';
import type { EventPackage } from '../simple/event-package.js';
import type { Notifier } from '../simple/notifier.js';
import { PresencePackage } from '../simple/presence-package.js';
import { WatcherProfileSelector, type WatcherProfileRule } from '../simple/watcher-profile.js';
import type { Logger } from '../util/logger.js';
import type { RenderedBody, ResyncResult, WatcherEvent, WatcherProfileName } from './admin-source.js';

export interface AdminActionsOptions {
  directory: Directory;
  store: PresenceHub;
  notifier: Pick<Notifier, 'watchers' | 'resend'>;
  graph: GraphRuntime | undefined;
  /** A Teams side is configured (graph or graphSimulator), started or not. */
  graphExpected: boolean;
  domain: string;
  watcherProfiles: readonly WatcherProfileRule[];
  logger: Logger;
}

export function adminActions(options: AdminActionsOptions): {
  render(personId: string, event: WatcherEvent, profile: WatcherProfileName): RenderedBody | undefined;
  resync(personId: string): Promise<ResyncResult>;
} {
  const { directory, store, notifier, graph, graphExpected, logger } = options;
  const packageOptions = {
    profiles: new WatcherProfileSelector(options.watcherProfiles),
    extensionOf: (resource: string) => directory.get(resource)?.extension,
  };
  const packages: Record<WatcherEvent, EventPackage> = {
    presence: new PresencePackage(store, packageOptions),
    dialog: new DialogPackage(store, packageOptions),
  };
  const render = (personId: string, event: WatcherEvent, profile: WatcherProfileName): RenderedBody | undefined => {
    const person = directory.get(personId);
    if (person === undefined) return undefined;
    const pkg = packages[event];
    const format = pkg.negotiate(undefined, { profile });
    if (format === undefined) return undefined;
    const entity = person.sipAors[0] ?? `sip:${person.id}@${options.domain}`;
    return { contentType: format.contentType, body: pkg.render(personId, { entity, format, version: 0 }).toString('utf8') };
  };

  const resync = async (personId: string): Promise<ResyncResult> => {
    const person = directory.get(personId);
    if (person === undefined) return { ok: false, detail: `no user "${personId}"` };
    const parts: string[] = [];
    let ok = true;
    const userId = person.teams?.userId;
    if (!graphExpected) {
      parts.push('no Teams side configured');
    } else if (graph === undefined) {
      ok = false;
      parts.push('the Graph side has not started yet');
    } else if (userId === undefined) {
      parts.push('no Teams identity (the directory sync has not matched this user)');
    } else {
      try {
        const r = await graph.readUsers([userId]);
        if (r.error !== undefined) {
          ok = false;
          parts.push(`Teams presence could not be read: ${r.error}`);
        } else {
          parts.push(r.read > 0 ? 'Teams presence read again' : 'Graph returned no presence for this user');
        }
      } catch (error) {
        ok = false;
        parts.push(`Teams presence could not be read: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const n = notifier.watchers(personId).length;
    notifier.resend(personId);
    parts.push(`current state sent to ${n} watcher${n === 1 ? '' : 's'}`);
    logger.info({ user: personId, ok }, 'admin: resync');
    return { ok, detail: parts.join('; ') };
  };

  return { render, resync };
}
