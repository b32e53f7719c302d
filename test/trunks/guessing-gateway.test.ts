/**
 * The guesser against a real gateway process over real UDP sockets: 200
 * guesses a second from 127.0.0.2 over a 1,000-word list with the password at
 * line 300, while the real console authenticates from 127.0.0.3 twice a
 * second. The 30 s version runs on an injected clock in guessing.test.ts.
 */
import t from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerChallenge, DigestClient } from '../../src/sip/digest.js';
import { Headers } from '../../src/sip/headers.js';
import { createRequest, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { readmeFilter } from '../helpers/fail2ban.js';
import { startGateway } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';

const PASSWORD = 'word-0300';
const WORDS = Array.from({ length: 1000 }, (_, i) => `word-${String(i + 1).padStart(4, '0')}`);
const GUESS_SECONDS = 8;

/** A UDP SIP client bound to one loopback address; final responses matched by Call-ID. */
class Client {
  private n = 0;
  private readonly waiting = new Map<string, (r: SipResponse) => void>();
  private constructor(private readonly socket: Socket, readonly address: string, private readonly gatewayPort: number) {
    socket.on('message', (data) => {
      const r = parseMessage(data);
      if (!r.ok || r.message.kind !== 'response' || r.message.status < 200) return;
      const id = r.message.headers.get('call-id') ?? '';
      const done = this.waiting.get(id);
      this.waiting.delete(id);
      done?.(r.message);
    });
  }
  static async bind(address: string, gatewayPort: number): Promise<Client> {
    const socket = createSocket('udp4');
    socket.bind(0, address);
    await once(socket, 'listening');
    return new Client(socket, address, gatewayPort);
  }
  request(): SipRequest {
    const n = ++this.n;
    const port = this.socket.address().port;
    return createRequest(
      'SUBSCRIBE',
      `sip:1001@127.0.0.1:${this.gatewayPort}`,
      Headers.from([
        ['via', `SIP/2.0/UDP ${this.address}:${port};branch=z9hG4bKgw${n}x${port};rport`],
        ['max-forwards', '70'],
        ['from', `<sip:console@${this.address}>;tag=gw${n}`],
        ['to', '<sip:1001@127.0.0.1>'],
        ['call-id', `gw-${this.address}-${port}-${n}`],
        ['cseq', `${n} SUBSCRIBE`],
        ['contact', `<sip:console@${this.address}:${port}>`],
        ['event', 'presence'],
        ['accept', 'application/pidf+xml'],
        ['expires', '0'],
      ]),
    );
  }
  /** The answer to a challenge of `template`: answerChallenge leaves Via to the sender, as a stack would. */
  answer(template: SipRequest, challenge: SipResponse, password: string, client: DigestClient): SipRequest | null {
    const via = template.headers.get('via')!;
    const req = answerChallenge(template, challenge, { username: 'console1', password }, client);
    req?.headers.prepend('via', via.replace(/branch=([^;]+)/, 'branch=$1a'));
    return req;
  }
  send(req: SipRequest, timeoutMs = 8000): Promise<SipResponse | undefined> {
    const id = req.headers.get('call-id')!;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.socket.send(serializeMessage(req), this.gatewayPort, '127.0.0.1');
    });
  }
  close(): void {
    this.socket.close();
  }
}

t.test('a guesser at 200/s does not find the password; the real user authenticates throughout', async (t) => {
  const gw = await startGateway({
    transports: ['udp'],
    overrides: {
      // overload shedding (503) is another defence with its own tests; here only the guessing throttle answers
      sip: { access: { mode: 'restricted', users: [{ username: 'console1', password: PASSWORD }] }, overload: { maxEventLoopLagMs: 0 } },
      http: { port: await freePort() },
    },
  });
  t.teardown(() => gw.stop());
  const guesser = await Client.bind('127.0.0.2', gw.port);
  const real = await Client.bind('127.0.0.3', gw.port);
  t.teardown(() => {
    guesser.close();
    real.close();
  });

  // the guesser takes one challenge and answers it with every word (nonce count going up)
  const first = guesser.request();
  const challenge = await guesser.send(first);
  t.equal(challenge?.status, 401, 'the guesser is challenged');
  const client = new DigestClient();
  const statuses = new Map<string, number>();
  let found = false;
  let sent = 0;
  const pending: Promise<void>[] = [];
  const realResults: Array<number | 'timeout'> = [];
  let realRunning = true;
  const realLoop = (async () => {
    while (realRunning) {
      const req = real.request();
      const c = await real.send(req);
      if (c?.status !== 401) {
        realResults.push(c?.status ?? 'timeout');
      } else {
        const answer = real.answer(req, c, PASSWORD, new DigestClient());
        const r = answer === null ? undefined : await real.send(answer);
        realResults.push(r?.status ?? 'timeout');
      }
      await sleep(500);
    }
  })();
  const started = Date.now();
  // 200 a second, sent in small batches as the clock goes
  while (Date.now() - started < GUESS_SECONDS * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * 200) - sent;
    for (let i = 0; i < due; i++) {
      const template = guesser.request();
      const guess = guesser.answer(template, challenge!, WORDS[sent % WORDS.length]!, client);
      sent++;
      if (guess === null) continue;
      pending.push(
        guesser.send(guess, 10_000).then((r) => {
          const key = String(r?.status ?? 'timeout');
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          if (r !== undefined && r.status < 300) found = true;
        }),
      );
    }
    await sleep(20);
  }
  const elapsed = (Date.now() - started) / 1000;
  await Promise.all(pending);
  realRunning = false;
  await realLoop;

  t.comment(`guesses sent: ${sent} in ${elapsed.toFixed(1)} s (${Math.round(sent / elapsed)}/s); answers ${JSON.stringify([...statuses])}`);
  t.ok(sent >= 300, 'the guesser got past line 300 of its list');
  t.notOk(found, 'the password was never accepted');
  const answered = sent - (statuses.get('timeout') ?? 0);
  t.ok(answered >= sent * 0.9, `${answered} of ${sent} guesses answered`);
  t.ok((statuses.get('401') ?? 0) <= 4, 'at most 4 guesses were challenged again');
  t.equal((statuses.get('403') ?? 0) + (statuses.get('401') ?? 0), answered, 'every other answer was 403');
  t.ok(realResults.length >= GUESS_SECONDS, `the real user tried ${realResults.length} times`);
  t.ok(realResults.every((s) => typeof s === 'number' && s >= 200 && s < 300), `the real user got in every time: ${realResults.join(',')}`);

  // the security log, as the gateway wrote it on stdout, and the README's fail2ban filter over it
  await sleep(200);
  const lines = gw.logs.filter((l) => l.includes('"log":"security"'));
  const failed = lines.filter((l) => l.includes('"event":"auth_failed"'));
  t.equal(failed.length, 5, 'five failed authentications were logged, no more were ever checked');
  t.ok(lines.some((l) => l.includes('"event":"lockout_start"') && l.includes('"source":"127.0.0.2"')), 'the lockout start');
  const filter = readmeFilter();
  const hosts = lines.map((l) => filter.hostOf(l)).filter((h): h is string => h !== undefined);
  t.ok(hosts.length >= 10, `fail2ban would count ${hosts.length} failures`);
  t.ok(hosts.every((h) => h === '127.0.0.2'), 'all of them for the guesser, none for the real user');
  t.notOk(gw.logs.some((l) => l.includes(PASSWORD) || l.includes('word-0001')), 'no password in any log line');
});
