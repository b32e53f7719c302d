/**
 * The `dialog` event package (RFC 4235): a person's calls as dialog-info, full
 * state every time. Only the version attribute differs between watchers of one
 * entity, so the document is rendered once per change and the version spliced in.
 */
import { DIALOG_INFO_CONTENT_TYPE, buildDialogInfo, type DialogInfoDialog } from '../bodies/index.js';
import type { Call, PresenceView } from '../core/person-state.js';
import type { MediaType } from '../sip/header-values.js';
import { RevisionCache } from './body-cache.js';
import { chooseContentType, type BodyFormat, type EventPackage, type RenderContext } from './event-package.js';
import type { ViewSource } from './presence-package.js';

const DIALOG_FORMAT: BodyFormat = Object.freeze({ contentType: DIALOG_INFO_CONTENT_TYPE, variant: 'full' });

/** A dialog-info document cut around its version number. */
interface VersionTemplate {
  head: Buffer;
  tail: Buffer;
}

function dialogOf(call: Call, entity: string): DialogInfoDialog {
  const d: DialogInfoDialog = { id: call.id, state: call.phase };
  if (call.callId !== undefined) d.callId = call.callId;
  if (call.localTag !== undefined) d.localTag = call.localTag;
  if (call.remoteTag !== undefined) d.remoteTag = call.remoteTag;
  if (call.direction !== undefined) d.direction = call.direction;
  // RFC 4235 §4.1.6.2: a local target with +sip.rendering=no is a call on hold.
  d.local =
    call.held === true ? { identity: entity, target: entity, targetParams: [['+sip.rendering', 'no']] } : { identity: entity };
  const remote = call.remote;
  if (remote?.identity !== undefined) {
    d.remote = remote.display !== undefined ? { identity: remote.identity, display: remote.display } : { identity: remote.identity };
  }
  return d;
}

/** dialog-info for a view: one dialog per live call, none when idle. */
export function dialogDocumentXml(view: PresenceView, entity: string, version: number): string {
  return buildDialogInfo({
    entity,
    version,
    state: 'full',
    dialogs: view.calls.filter((c) => c.phase !== 'terminated').map((c) => dialogOf(c, entity)),
  });
}

function templateOf(xml: string): VersionTemplate {
  const root = xml.indexOf('<dialog-info');
  const marker = ' version="';
  const at = xml.indexOf(marker, root);
  const start = at + marker.length;
  const end = xml.indexOf('"', start);
  return { head: Buffer.from(xml.slice(0, start), 'utf8'), tail: Buffer.from(xml.slice(end), 'utf8') };
}

export class DialogPackage implements EventPackage {
  readonly event = 'dialog';
  readonly contentTypes: readonly string[] = [DIALOG_INFO_CONTENT_TYPE];
  private readonly cache = new RevisionCache<VersionTemplate>();

  constructor(private readonly source: ViewSource) {}

  negotiate(accept: readonly MediaType[] | undefined): BodyFormat | undefined {
    if (accept === undefined) return DIALOG_FORMAT;
    return chooseContentType(accept, this.contentTypes) === undefined ? undefined : DIALOG_FORMAT;
  }

  render(resource: string, ctx: RenderContext): Buffer {
    const view = this.source.view(resource);
    const t = this.cache.get(resource, view.revision, ctx.entity, () => templateOf(dialogDocumentXml(view, ctx.entity, 0)));
    const version = Buffer.from(String(ctx.version), 'latin1');
    return Buffer.concat([t.head, version, t.tail], t.head.length + version.length + t.tail.length);
  }

  release(resource: string): void {
    this.cache.release(resource);
  }
}
