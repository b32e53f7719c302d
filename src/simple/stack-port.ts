/**
 * The part of the SIP stack (src/sip/stack.ts) the SIMPLE layer uses, typed
 * structurally so the real SipStack fits and tests can pass a small fake.
 */
import type { Endpoint, SipRequest, SipResponse, TransportProtocol } from '../sip/message.js';
import type { IncomingRequest } from '../sip/stack.js';
import type { WatcherProfile } from './watcher-profile.js';

/**
 * The one request type between the SIP stack and SIMPLE: the stack's
 * IncomingRequest, with what access control adds to it here.
 */
export interface InboundRequest extends IncomingRequest {
  /** Output profile decided by access control (the trunk the request came from); wins over User-Agent rules. */
  watcherProfile?: WatcherProfile;
  /** Set by access control: the request came from a trusted network, or an admin digest user. */
  privileged?: 'trusted' | 'admin';
}

export interface OutboundOptions {
  destination: Endpoint;
  connectionId?: string;
}

/** What the notifier needs to send NOTIFYs. */
export interface RequestSender {
  /** Resolves with the final response; a locally made 408 on timeout, 503 on transport error. */
  sendRequest(request: SipRequest, options: OutboundOptions): Promise<SipResponse>;
  localEndpoint(protocol: TransportProtocol): Endpoint | undefined;
  /** Address peers should use to reach us (preferred for Contact when the stack offers it). */
  advertisedEndpoint?(protocol: TransportProtocol): Endpoint | undefined;
  /**
   * Keep a stream connection open while a subscription lives on it (the stack's idle rules leave it
   * alone); returns the release. Optional: without it connections go by the stack's idle rules.
   */
  holdConnection?(connectionId: string): () => void;
}

/** What the SIMPLE server needs from the stack. */
export interface SimpleStack extends RequestSender {
  onRequest(handler: (req: InboundRequest) => void): void;
}
