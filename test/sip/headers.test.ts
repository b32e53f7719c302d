import t from 'tap';
import { canonicalHeaderName, Headers } from '../../src/sip/headers.js';

t.test('canonicalHeaderName: lower-case long form, the same answer from its cache and past its bound', async (t) => {
  for (let round = 0; round < 2; round++) {
    t.equal(canonicalHeaderName('Call-ID'), 'call-id');
    t.equal(canonicalHeaderName(' CSeq '), 'cseq');
    t.equal(canonicalHeaderName('i'), 'call-id', 'compact form');
    t.equal(canonicalHeaderName('V'), 'via', 'compact form, upper case');
    t.equal(canonicalHeaderName('X-Custom'), 'x-custom');
  }
  // more distinct names than the cache keeps: each still canonical, and the cached ones unchanged
  for (let i = 0; i < 600; i++) t.equal(canonicalHeaderName(`X-Peer-${i}`), `x-peer-${i}`);
  t.equal(canonicalHeaderName('F'), 'from');
  const h = new Headers().append('Subscription-State', 'active').append('o', 'presence');
  t.equal(h.get('subscription-state'), 'active');
  t.equal(h.get('Event'), 'presence');
});
