/**
 * Parser / serializer micro-benchmark: a realistic SUBSCRIBE from an
 * attendant console and a NOTIFY carrying PIDF, alternately. No assertions;
 * the bench runner prints the result.
 */
import { parseMessage } from '../src/sip/parser.js';
import { serializeMessage } from '../src/sip/serializer.js';
import type { SipMessage } from '../src/sip/message.js';

const SUBSCRIBE = [
  'SUBSCRIBE sip:1001@pbx.example.com SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'To: "Reception" <sip:1001@pbx.example.com>',
  'From: "Attendant Console" <sip:console@example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@192.0.2.10',
  'CSeq: 314159 SUBSCRIBE',
  'Contact: <sip:console@192.0.2.10:5060;transport=udp>',
  'Event: presence',
  'Accept: application/pidf+xml, application/cpim-pidf+xml',
  'Supported: eventlist',
  'Allow-Events: presence, dialog',
  'Expires: 3600',
  'User-Agent: ConsoleX/4.2.1',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

const PIDF = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"',
  '  xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:1001@pbx.example.com">',
  '  <tuple id="t-1001"><status><basic>open</basic></status><contact>sip:1001@pbx.example.com</contact></tuple>',
  '  <dm:person id="p-1001"><rpid:activities><rpid:on-the-phone/></rpid:activities>',
  '    <dm:note>On the phone (Teams) – Müller</dm:note></dm:person>',
  '</presence>',
  '',
].join('\r\n');

const NOTIFY =
  [
    'NOTIFY sip:console@192.0.2.10:5060;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnotify8812;rport',
    'Max-Forwards: 70',
    'From: "Reception" <sip:1001@pbx.example.com>;tag=gw-77a1',
    'To: "Attendant Console" <sip:console@example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@192.0.2.10',
    'CSeq: 12 NOTIFY',
    'Contact: <sip:gateway@192.0.2.1:5060>',
    'Event: presence',
    'Subscription-State: active;expires=3542',
    'Content-Type: application/pidf+xml',
    `Content-Length: ${Buffer.byteLength(PIDF)}`,
    '',
    '',
  ].join('\r\n') + PIDF;

/** The two benchmark messages as bytes and parsed. */
export function microMessages(): { inputs: Buffer[]; messages: SipMessage[] } {
  const inputs = [Buffer.from(SUBSCRIBE), Buffer.from(NOTIFY)];
  const messages: SipMessage[] = inputs.map((b) => {
    const r = parseMessage(b);
    if (!r.ok) throw new Error(`benchmark message does not parse: ${r.reason}`);
    return r.message;
  });
  return { inputs, messages };
}

export function benchParser(iterations: number): { parsesPerSecond: number; serializesPerSecond: number } {
  const { inputs, messages } = microMessages();
  const n = Math.max(1, Math.floor(iterations));
  let sink = 0;
  // warm up so that both functions are optimised before timing
  for (let i = 0; i < Math.min(n, 2000); i++) {
    if (parseMessage(inputs[i & 1]!).ok) sink++;
    sink += serializeMessage(messages[i & 1]!).length;
  }
  let start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (parseMessage(inputs[i & 1]!).ok) sink++;
  const parseNs = Number(process.hrtime.bigint() - start);
  start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += serializeMessage(messages[i & 1]!).length;
  const serializeNs = Number(process.hrtime.bigint() - start);
  if (sink < 0) console.log(sink); // keep the work observable
  return {
    parsesPerSecond: Math.round((n * 1e9) / Math.max(parseNs, 1)),
    serializesPerSecond: Math.round((n * 1e9) / Math.max(serializeNs, 1)),
  };
}
