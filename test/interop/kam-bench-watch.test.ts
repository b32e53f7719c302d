/**
 * kam-bench-watch.xml (the kamailio bench phase's fan-out watcher, for both servers) against a
 * scripted UDP server: a repeated 200 to the SUBSCRIBE and a retransmitted initial NOTIFY while
 * the watcher waits for the change are answered or ignored, and the change still counts once;
 * bench-watch.xml fails the same exchange (so the difference is real).
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import t from 'tap';
import { assertSippInstalled, startSipp, type SippResult } from '../helpers/sipp.js';

interface Datagram {
  text: string;
  from: RemoteInfo;
}

/** Header value of a SIP message (first match, case-insensitive). */
const header = (text: string, name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(text)?.[1]?.trim() ?? '';

async function exchange(scenario: string): Promise<SippResult> {
  const socket = createSocket('udp4');
  const inbox: Datagram[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (msg, from) => {
    inbox.push({ text: msg.toString('utf8'), from });
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  const next = async (match: (d: Datagram) => boolean, what: string): Promise<Datagram> => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const i = inbox.findIndex(match);
      if (i >= 0) return inbox.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no ${what} from SIPp`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  const send = (text: string, to: RemoteInfo): Promise<void> =>
    new Promise((resolve, reject) => socket.send(text.replaceAll('\n', '\r\n'), to.port, to.address, (err) => (err ? reject(err) : resolve())));

  const run = await startSipp({ scenario, gatewayPort: port, transport: 'u1', service: '2000', calls: 1, timeoutSec: 10, traceLogs: true });
  try {
    const sub = await next((d) => d.text.startsWith('SUBSCRIBE '), 'SUBSCRIBE');
    const watcher = sub.from;
    const ok200 = [
      'SIP/2.0 200 OK',
      `Via: ${header(sub.text, 'Via')}`,
      `From: ${header(sub.text, 'From')}`,
      `To: ${header(sub.text, 'To')};tag=srv1`,
      `Call-ID: ${header(sub.text, 'Call-ID')}`,
      'CSeq: 1 SUBSCRIBE',
      'Expires: 3600',
      `Contact: <sip:127.0.0.1:${port}>`,
      'Content-Length: 0',
      '',
      '',
    ].join('\n');
    const notify = (cseq: number, body: string): string =>
      [
        `NOTIFY sip:watcher@127.0.0.1:${watcher.port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-n${cseq}`,
        `From: ${header(sub.text, 'To')};tag=srv1`,
        `To: ${header(sub.text, 'From')}`,
        `Call-ID: ${header(sub.text, 'Call-ID')}`,
        `CSeq: ${cseq} NOTIFY`,
        'Event: presence',
        'Subscription-State: active;expires=3600',
        `Contact: <sip:127.0.0.1:${port}>`,
        ...(body === '' ? [] : ['Content-Type: application/pidf+xml']),
        `Content-Length: ${Buffer.byteLength(body.replaceAll('\n', '\r\n'))}`,
        '',
        body,
      ].join('\n');
    await send(ok200, watcher);
    await send(notify(2, ''), watcher);
    await next((d) => d.text.startsWith('SIP/2.0 200') && /CSeq:\s*2 NOTIFY/i.test(d.text), '200 to the initial NOTIFY');
    // the server had not yet seen that 200: the SUBSCRIBE's 200 again, the initial NOTIFY again
    await send(ok200, watcher);
    await send(notify(2, ''), watcher);
    await new Promise((r) => setTimeout(r, 200));
    await send(notify(3, '<presence entity="sip:2000@127.0.0.1"><note>on-the-phone</note></presence>\n'), watcher);
    return await run.done;
  } catch (err) {
    run.kill();
    await run.done;
    throw err;
  } finally {
    socket.close();
  }
}

t.before(() => {
  assertSippInstalled();
});

t.test('kam-bench-watch: a repeated 200 and a retransmitted initial NOTIFY do not fail the watcher; the change counts once', async (t) => {
  const result = await exchange('kam-bench-watch');
  t.equal(result.code, 0, `SIPp exit code 0\n${result.errors}`);
  const logs = result.logs ?? [];
  t.equal(logs.filter((l) => l.startsWith('subscribed ')).length, 1, 'subscribed once');
  t.equal(logs.filter((l) => l.startsWith('notified ')).length, 1, 'notified once, for the change');
});

t.test('bench-watch fails the same exchange (the tolerance above is what differs)', async (t) => {
  const result = await exchange('bench-watch');
  t.not(result.code, 0, 'SIPp reports a failed call');
  t.equal((result.logs ?? []).filter((l) => l.startsWith('notified ')).length, 0, 'no change counted');
});
