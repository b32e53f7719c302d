/** The SIP/SIMPLE event layer: notifier, event packages, publications, and the server wiring them. */
export { SimpleServer, ALLOWED_METHODS, type SimpleServerConfig, type SimpleServerOptions } from './sip-app.js';
export { Notifier, RESOURCE_SCHEMES, type HostLookup, type NotifierOptions, type ResourceResolver } from './notifier.js';
export { Subscription, type SubscriptionStateName, type TerminationCause } from './subscription.js';
export {
  chooseContentType,
  type BodyFormat,
  type EventPackage,
  type NotifyReading,
  type NotifyRules,
  type PublishRules,
  type PublishSink,
  type RenderContext,
} from './event-package.js';
export { PackageRegistry } from './package-registry.js';
export { PresencePackage, presenceDocument, PIDF, CPIM_PIDF, PRESENCE_PUBLISH, PRESENCE_UPSTREAM, type ViewSource } from './presence-package.js';
export { DialogPackage, dialogDocumentXml, DIALOG_PUBLISH, DIALOG_UPSTREAM } from './dialog-package.js';
export { Publications, Publication } from './publications.js';
export { richStateFromPidf, telephonyFromDialogInfo, callFromDialog, telephonyFromPidf } from './body-state.js';
export type { ExpiryBounds } from './sip-util.js';
export type { InboundRequest, OutboundOptions, RequestSender, SimpleStack } from './stack-port.js';
