/** The SIP/SIMPLE event layer: notifier, event packages, publications, and the server wiring them. */
export { SimpleServer, ALLOWED_METHODS, type SimpleServerConfig, type SimpleServerOptions } from './sip-app.js';
export { Notifier, RESOURCE_SCHEMES, type HostLookup, type NotifierOptions, type ResourceResolver } from './notifier.js';
export { Subscription, type SubscriptionStateName, type TerminationCause } from './subscription.js';
export { chooseContentType, type BodyFormat, type EventPackage, type RenderContext } from './event-package.js';
export { PresencePackage, presenceDocument, PIDF, CPIM_PIDF, type ViewSource } from './presence-package.js';
export { DialogPackage, dialogDocumentXml } from './dialog-package.js';
export { Publications, Publication, PUBLISH_CONTENT_TYPES, type PresenceSink, type PublishEvent } from './publications.js';
export { richStateFromPidf, telephonyFromDialogInfo, callFromDialog } from './convert.js';
export type { ExpiryBounds } from './sip-util.js';
export type { InboundRequest, OutboundOptions, RequestSender, SimpleStack } from './stack-port.js';
