import t from 'tap';
import { tagOf } from '../../src/sip/header-values.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, createResponse, type SipRequest } from '../../src/sip/message.js';
import { responseToTag } from '../../src/sip/response-tag.js';

function request(branch = 'z9hG4bKtag1', to = '<sip:alice@example.com>'): SipRequest {
  return createRequest(
    'PUBLISH',
    'sip:alice@example.com',
    Headers.from([
      ['via', `SIP/2.0/UDP 198.51.100.7:5062;branch=${branch};rport`],
      ['from', '<sip:alice@example.com>;tag=f1'],
      ['to', to],
      ['call-id', 'tag-test-1'],
      ['cseq', '7 PUBLISH'],
    ]),
  );
}

t.test('a final response to a request without To tag gets one, the same for every copy of the request', async (t) => {
  const a = createResponse(request(), 404);
  const tag = tagOf(a.headers.get('to')!);
  t.match(tag, /^[0-9a-f]{16}$/);
  t.equal(tagOf(createResponse(request(), 404).headers.get('to')!), tag, 'a retransmission (same request) gets the same tag');
  t.equal(tagOf(createResponse(request(), 500).headers.get('to')!), tag, 'whatever the status');
  t.not(tagOf(createResponse(request('z9hG4bKtag2'), 404).headers.get('to')!), tag, 'another transaction, another tag');
});

t.test('received/rport stamped on the top Via do not change the tag', async (t) => {
  const plain = request();
  const stamped = request();
  stamped.headers.set('via', 'SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKtag1;rport=5062;received=203.0.113.9');
  t.equal(responseToTag(stamped.headers), responseToTag(plain.headers));
});

t.test('no tag on 100, the request\'s own tag in a dialog, an explicit tag wins, false adds none', async (t) => {
  t.equal(tagOf(createResponse(request(), 100).headers.get('to')!), undefined, '100 Trying');
  t.equal(createResponse(request('z9hG4bKx', '<sip:alice@example.com>;tag=dlg'), 200).headers.get('to'), '<sip:alice@example.com>;tag=dlg');
  t.equal(tagOf(createResponse(request(), 200, undefined, { toTag: 'sub1' }).headers.get('to')!), 'sub1');
  t.equal(tagOf(createResponse(request(), 503, undefined, { toTag: false }).headers.get('to')!), undefined);
});
