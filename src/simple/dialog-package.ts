/**
 * The `dialog` event package (RFC 4235): a person's calls as dialog-info, full
 * state every time, in the flavor of the watcher's output profile:
 *  - rfc (and cisco): one dialog per live call, none when idle;
 *  - polycom: every dialog with call-id, local-tag, remote-tag and direction
 *    (made up, stable, for calls that have none, such as a Teams call);
 *  - asterisk: one dialog whose id is the extension, chosen by priority, a
 *    terminated one when idle, no call-id (what Asterisk hints send).
 * Only the version attribute differs between watchers of one entity and
 * profile, so a document is rendered once per change and the version spliced in.
 */
import { createHash } from 'node:crypto';
import { DIALOG_INFO_CONTENT_TYPE, buildDialogInfo, parseDialogInfo, type DialogInfoDialog } from '../bodies/index.js';
import { composeTelephony } from '../core/compose.js';
import type { Call, CallPhase, PresenceView, TelephonyState } from '../core/person-state.js';
import type { MediaType } from '../sip/header-values.js';
import { parseUri } from '../sip/uri.js';
import { RevisionCache } from './body-cache.js';
import { savedTelephony, telephonyFromDialogInfo } from './body-state.js';
import { chooseContentType, type BodyFormat, type EventPackage, type NotifyRules, type PublishRules, type RenderContext } from './event-package.js';
import type { PackageOptions, ViewSource } from './presence-package.js';
import { defaultWatcherProfileSelector, type WatcherInfo, type WatcherProfileSelector } from './watcher-profile.js';

export type DialogFlavor = 'rfc' | 'polycom' | 'asterisk';

const FORMATS: Readonly<Record<DialogFlavor, BodyFormat>> = Object.freeze({
  rfc: Object.freeze({ contentType: DIALOG_INFO_CONTENT_TYPE, variant: 'rfc' }),
  polycom: Object.freeze({ contentType: DIALOG_INFO_CONTENT_TYPE, variant: 'polycom' }),
  asterisk: Object.freeze({ contentType: DIALOG_INFO_CONTENT_TYPE, variant: 'asterisk' }),
});

/** A dialog-info document cut around its version number. */
interface VersionTemplate {
  head: Buffer;
  tail: Buffer;
}

export interface DialogDocumentOptions {
  flavor?: DialogFlavor;
  /** The resource (person id): seeds the made-up call-ids and tags of the polycom flavor. */
  resource?: string;
  /** The dialog id of the asterisk flavor (default: the entity's user part). */
  extension?: string;
}

function localOf(call: Call, entity: string): DialogInfoDialog['local'] {
  // RFC 4235 §4.1.6.2: a local target with +sip.rendering=no is a call on hold.
  return call.held === true ? { identity: entity, target: entity, targetParams: [['+sip.rendering', 'no']] } : { identity: entity };
}

function remoteOf(call: Call): DialogInfoDialog['remote'] {
  const remote = call.remote;
  if (remote?.identity === undefined) return undefined;
  return remote.display !== undefined ? { identity: remote.identity, display: remote.display } : { identity: remote.identity };
}

function dialogOf(call: Call, entity: string): DialogInfoDialog {
  const d: DialogInfoDialog = { id: call.id, state: call.phase };
  if (call.callId !== undefined) d.callId = call.callId;
  if (call.localTag !== undefined) d.localTag = call.localTag;
  if (call.remoteTag !== undefined) d.remoteTag = call.remoteTag;
  if (call.direction !== undefined) d.direction = call.direction;
  d.local = localOf(call, entity);
  const remote = remoteOf(call);
  if (remote !== undefined) d.remote = remote;
  return d;
}

/**
 * Call-id and tags for a call that has none, stable for the same person and
 * call id (a phone keeps tracking one dialog across NOTIFYs).
 */
export function syntheticDialogIds(resource: string, callId: string): { callId: string; localTag: string; remoteTag: string } {
  const h = createHash('sha1').update(resource).update('\n').update(callId).digest('hex');
  return { callId: `pg-${h.slice(0, 24)}@presence-gateway`, localTag: h.slice(24, 32), remoteTag: h.slice(32, 40) };
}

/** Polycom phones use call-id and both tags (directed pickup, Replaces); every dialog carries them. */
function polycomDialogOf(call: Call, entity: string, resource: string): DialogInfoDialog {
  const d = dialogOf(call, entity);
  if (d.callId === undefined || d.localTag === undefined || d.remoteTag === undefined) {
    const ids = syntheticDialogIds(resource, call.id);
    d.callId ??= ids.callId;
    d.localTag ??= ids.localTag;
    d.remoteTag ??= ids.remoteTag;
  }
  // Unknown direction: a ringing line is an incoming call, anything else taken as placed.
  d.direction ??= call.phase === 'early' ? 'recipient' : 'initiator';
  return d;
}

/** Single-dialog priority (the order Kamailio's single-dialog mode uses). */
const PHASE_RANK: Readonly<Record<CallPhase, number>> = { early: 4, confirmed: 3, proceeding: 2, trying: 1, terminated: 0 };

/** The one call a single-dialog watcher is shown: highest phase; among equals a call not on hold, then the first. */
export function pickSingleCall(calls: readonly Call[]): Call | undefined {
  let best: Call | undefined;
  for (const c of calls) {
    if (best === undefined) {
      best = c;
      continue;
    }
    const diff = PHASE_RANK[c.phase] - PHASE_RANK[best.phase];
    if (diff > 0 || (diff === 0 && best.held === true && c.held !== true)) best = c;
  }
  return best;
}

function userPartOf(entity: string): string | undefined {
  const user = parseUri(entity)?.user;
  return user === undefined || user.length === 0 ? undefined : user;
}

/** Asterisk style: one dialog id=<extension>, terminated when idle, identities only while ringing. */
function asteriskDialogOf(calls: readonly Call[], entity: string, id: string): DialogInfoDialog {
  const call = pickSingleCall(calls);
  if (call === undefined || call.phase === 'terminated') return { id, state: 'terminated' };
  const d: DialogInfoDialog = { id, state: call.phase };
  if (call.phase === 'early') {
    d.direction = call.direction ?? 'recipient';
    d.local = { identity: entity, target: entity };
    const remote = remoteOf(call);
    if (remote !== undefined) d.remote = remote;
  } else if (call.held === true) {
    d.local = localOf(call, entity);
  }
  return d;
}

/** dialog-info for a view in a flavor (default rfc: one dialog per live call, none when idle). */
export function dialogDocumentXml(view: PresenceView, entity: string, version: number, options: DialogDocumentOptions = {}): string {
  const live = view.calls.filter((c) => c.phase !== 'terminated');
  let dialogs: DialogInfoDialog[];
  switch (options.flavor ?? 'rfc') {
    case 'polycom': {
      const resource = options.resource ?? view.personId;
      dialogs = live.map((c) => polycomDialogOf(c, entity, resource));
      break;
    }
    case 'asterisk':
      // Its terminated dialog is an idle claim: not made while the phone's state is unknown.
      dialogs = view.phoneUnknown === true ? [] : [asteriskDialogOf(live, entity, options.extension ?? userPartOf(entity) ?? view.personId)];
      break;
    default:
      dialogs = live.map((c) => dialogOf(c, entity));
  }
  return buildDialogInfo({ entity, version, state: 'full', dialogs });
}

function templateOf(xml: string): VersionTemplate {
  const root = xml.indexOf('<dialog-info');
  const marker = ' version="';
  const at = xml.indexOf(marker, root);
  const start = at + marker.length;
  const end = xml.indexOf('"', start);
  return { head: Buffer.from(xml.slice(0, start), 'utf8'), tail: Buffer.from(xml.slice(end), 'utf8') };
}

function flavorOf(variant: string): DialogFlavor {
  return variant === 'polycom' || variant === 'asterisk' ? variant : 'rfc';
}

/** PUBLISH of dialog (RFC 3903, RFC 4235): dialog-info into the person's telephony, publications composed. */
export const DIALOG_PUBLISH = Object.freeze<PublishRules<TelephonyState>>({
  contentTypes: Object.freeze([DIALOG_INFO_CONTENT_TYPE]),
  parse: (body, ctx, previous) =>
    telephonyFromDialogInfo(
      parseDialogInfo(body, ctx.maxBytes === undefined ? undefined : { maxBytes: ctx.maxBytes }),
      previous?.calls,
      ctx.origin,
      ctx.at,
    ),
  compose(sink, resource, states) {
    sink.setTelephony(resource, composeTelephony(states));
  },
  save: (state) => ({ telephony: state }),
  load: (saved) => savedTelephony(saved['telephony']),
});

/** dialog-info in NOTIFYs from a PBX: its calls, document by document in version order. */
export const DIALOG_UPSTREAM = Object.freeze<NotifyRules>({
  contentTypes: Object.freeze([DIALOG_INFO_CONTENT_TYPE]),
  read(body) {
    const doc = parseDialogInfo(body);
    return {
      kind: 'dialog',
      sequence: { version: doc.version, partial: doc.state === 'partial' },
      telephony: (previous, origin, at) => telephonyFromDialogInfo(doc, previous, origin, at),
    };
  },
});

export class DialogPackage implements EventPackage {
  readonly event = 'dialog';
  readonly contentTypes: readonly string[] = [DIALOG_INFO_CONTENT_TYPE];
  readonly publish = DIALOG_PUBLISH;
  readonly upstream = DIALOG_UPSTREAM;
  /** RFC 4662: dialog lists; not restored (the members' dialog-info versions are not kept). */
  readonly lists = Object.freeze({ restore: false });
  private readonly cache = new RevisionCache<VersionTemplate>();
  private readonly profiles: WatcherProfileSelector;
  private readonly extensionOf: ((resource: string) => string | undefined) | undefined;

  constructor(
    private readonly source: ViewSource,
    options: PackageOptions = {},
  ) {
    this.profiles = options.profiles ?? defaultWatcherProfileSelector;
    this.extensionOf = options.extensionOf;
  }

  negotiate(accept: readonly MediaType[] | undefined, watcher?: WatcherInfo): BodyFormat | undefined {
    if (accept !== undefined && chooseContentType(accept, this.contentTypes) === undefined) return undefined;
    const profile = this.profiles.select(watcher);
    return profile === 'polycom' || profile === 'asterisk' ? FORMATS[profile] : FORMATS.rfc;
  }

  render(resource: string, ctx: RenderContext): Buffer {
    const view = this.source.view(resource);
    const flavor = flavorOf(ctx.format.variant);
    const t = this.cache.get(resource, view.revision, `${flavor}\n${ctx.entity}`, () => {
      const options: DialogDocumentOptions = { flavor, resource };
      if (flavor === 'asterisk') {
        const ext = this.extensionOf?.(resource);
        if (ext !== undefined && ext.length > 0) options.extension = ext;
      }
      return templateOf(dialogDocumentXml(view, ctx.entity, 0, options));
    });
    const version = Buffer.from(String(ctx.version), 'latin1');
    return Buffer.concat([t.head, version, t.tail], t.head.length + version.length + t.tail.length);
  }

  release(resource: string): void {
    this.cache.release(resource);
  }
}
