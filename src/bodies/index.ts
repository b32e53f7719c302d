/** Presence and dialog bodies: parse and build. */
export { BodyError } from './errors.js';
export * from './namespaces.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  attrValue,
  childElement,
  decodeEntities,
  escapeXml,
  parseXml,
  textValue,
  type ParseXmlOptions,
  type XmlElement,
} from './xml.js';
export {
  PIDF_CONTENT_TYPES,
  buildPidf,
  parsePidf,
  type Basic,
  type BuildPidfOptions,
  type PidfActivity,
  type PidfDocument,
  type PidfNote,
  type PidfPerson,
  type PidfTuple,
} from './pidf.js';
export {
  DIALOG_INFO_CONTENT_TYPE,
  buildDialogInfo,
  parseDialogInfo,
  type DialogInfoDialog,
  type DialogInfoDocument,
  type DialogParticipant,
  type DialogStateName,
} from './dialog-info.js';
export {
  NS_RLMI,
  RLMI_CONTENT_TYPE,
  buildRlmi,
  parseRlmi,
  type RlmiDocument,
  type RlmiInstance,
  type RlmiInstanceState,
  type RlmiName,
  type RlmiResource,
} from './rlmi.js';
export {
  MULTIPART_RELATED,
  buildMultipartRelated,
  parseMultipartRelated,
  rootPart,
  type BuildMultipartOptions,
  type BuiltMultipart,
  type MimePart,
  type MultipartRelated,
  type ParseMultipartOptions,
} from './multipart.js';
export {
  XPIDF_CONTENT_TYPE,
  buildXpidf,
  parseXpidf,
  type XpidfDocument,
  type XpidfStatus,
  type XpidfSubstatus,
} from './xpidf.js';
export {
  RESOURCE_LISTS_CONTENT_TYPE,
  parseResourceLists,
  type ParseResourceListsOptions,
  type ResourceListEntry,
  type ResourceListsDocument,
} from './resource-lists-doc.js';
export {
  WATCHERINFO_CONTENT_TYPE,
  buildWatcherInfo,
  parseWatcherInfo,
  type WatcherEntry,
  type WatcherEventName,
  type WatcherInfoDocument,
  type WatcherList,
  type WatcherStatus,
} from './watcherinfo.js';
export {
  FEATURE_EVENT_CONTENT_TYPE,
  NS_CSTA_ED3,
  buildDoNotDisturbEvent,
  buildForwardingEvent,
  parseDoNotDisturbEvent,
  parseFeatureRequest,
  type FeatureRequest,
  type ForwardingType,
} from './feature-event.js';
