/**
 * bench/storm-sender.ts against a scripted UDP server: exactly rate x seconds SUBSCRIBEs offered,
 * each counted once by its final response (2xx, 503, other), a lost first transmission retransmitted
 * (Timer E), the offered period ending at the last send, and a NOTIFY answered 200.
 */
import { createSocket } from 'node:dgram';
import t from 'tap';
import { startStorm } from '../../bench/storm-sender.js';

t.test('rate x seconds offered, each Call-ID counted once by its final response, NOTIFY answered', async (t) => {
  const server = createSocket('udp4');
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const seen = new Map<string, number>();
  const notifyAnswers: string[] = [];
  let sentNotify = false;
  server.on('message', (msg, rinfo) => {
    const text = msg.toString('latin1');
    if (text.startsWith('SIP/2.0 ')) {
      notifyAnswers.push(text.split('\r\n')[0]!);
      return;
    }
    const callId = /\r\nCall-ID: ([^\r]+)/.exec(text)?.[1] ?? '';
    const n = Number(callId.split('-').pop());
    const times = (seen.get(callId) ?? 0) + 1;
    seen.set(callId, times);
    if (n === 0 && times === 1) return; // lost: the sender must retransmit
    const head = text.split('\r\n\r\n')[0]!.split('\r\n');
    const keep = head.filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
    const status = n % 10 === 1 ? '503 Service Unavailable\r\nRetry-After: 5' : n % 10 === 2 ? '403 Forbidden' : '200 OK';
    const answer = `SIP/2.0 ${status}\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`;
    // a final response sent twice is counted once
    server.send(answer, rinfo.port, rinfo.address);
    server.send(answer, rinfo.port, rinfo.address);
    if (!sentNotify && status === '200 OK') {
      sentNotify = true;
      const notify =
        `NOTIFY sip:w@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKn1\r\nFrom: <sip:p@127.0.0.1>;tag=a\r\n` +
        `To: <sip:w@127.0.0.1>;tag=b\r\nCall-ID: ${callId}\r\nCSeq: 1 NOTIFY\r\nEvent: presence\r\nSubscription-State: active\r\nContent-Length: 0\r\n\r\n`;
      server.send(notify, rinfo.port, rinfo.address);
    }
  });
  const storm = await startStorm({ port, rate: 100, seconds: 0.5, users: ['2000', '2001'] });
  const lastSentAt = await storm.offered;
  const run = await storm.done;
  server.close();
  t.equal(run.sent, 50, 'rate x seconds offered');
  t.equal(seen.size, 50, 'each a Call-ID of its own');
  t.equal(run.lastSentAt, lastSentAt, 'the offered period ends at the last send');
  t.ok(run.lastSentAt - run.firstSentAt >= 450, `spread over the period (${run.lastSentAt - run.firstSentAt} ms)`);
  t.equal(run.shed, 5, '503s counted');
  t.same(run.other, { 403: 5 }, 'other statuses counted by status');
  t.equal(run.created, 40, 'the rest created, the lost one after its retransmission');
  t.equal(run.unanswered, 0);
  t.ok(run.retransmissions >= 1, 'the lost first transmission was retransmitted');
  t.equal(run.notifies, 1);
  t.same(notifyAnswers, ['SIP/2.0 200 OK'], 'the NOTIFY answered 200');
});
