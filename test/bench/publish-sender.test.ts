/**
 * bench/publish-sender.ts against a scripted UDP server: PUBLISHes paced over the spread,
 * from every source address given, a lost first transmission retransmitted (Timer E), a 503
 * recorded as such.
 */
import { createSocket } from 'node:dgram';
import t from 'tap';
import { sendPaced } from '../../bench/publish-sender.js';

t.test('paced over the spread, round robin over the sources, retransmitted, 503 recorded', async (t) => {
  const server = createSocket('udp4');
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const from = new Set<string>();
  const seen = new Map<string, number>();
  server.on('message', (msg, rinfo) => {
    const text = msg.toString('utf8');
    from.add(rinfo.address);
    const user = /^PUBLISH sip:([^@]+)@/.exec(text)?.[1] ?? '';
    const times = (seen.get(user) ?? 0) + 1;
    seen.set(user, times);
    if (user === 'u0' && times === 1) return; // lost: the sender must retransmit
    const head = text.split('\r\n\r\n')[0]!.split('\r\n');
    const keep = head.filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
    const status = user === 'u1' ? '503 Service Unavailable\r\nRetry-After: 5' : '200 OK';
    server.send(`SIP/2.0 ${status}\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, rinfo.port, rinfo.address);
  });
  const requests = Array.from({ length: 50 }, (_, i) => ({ user: `u${i}`, body: '<presence/>' }));
  const run = await sendPaced({ port, requests, spreadMs: 500, sources: ['127.0.0.1', '127.0.0.2'] });
  server.close();
  t.equal(run.outcomes.length, 50);
  t.ok(run.offeredSpanMs >= 450 && run.offeredSpanMs <= 700, `offered over ${run.offeredSpanMs} ms`);
  t.same([...from].sort(), ['127.0.0.1', '127.0.0.2'], 'both sources used');
  const byUser = new Map(run.outcomes.map((o) => [o.user, o]));
  t.equal(byUser.get('u0')?.status, 200, 'lost one answered after a retransmission');
  t.ok((byUser.get('u0')?.retransmissions ?? 0) >= 1);
  t.equal(byUser.get('u1')?.status, 503, '503 recorded, not retried');
  t.equal(byUser.get('u1')?.retransmissions, 0);
  t.equal(run.outcomes.filter((o) => o.status === 200).length, 49);
});
