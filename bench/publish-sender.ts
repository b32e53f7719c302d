/**
 * Paced SIP PUBLISH sender for the fan-out benchmark: one UDP socket per source address
 * (127.0.0.x on loopback), each PUBLISH sent at its slot of an even spread over `spreadMs`,
 * retransmitted with RFC 3261 section 17.1.1.2 timers (Timer E: T1 doubling up to T2 = 4 s,
 * given up at Timer F = 64*T1), and its final response recorded (matched by the Via branch).
 * It answers nothing: the gateway sends it nothing but responses. A PUBLISH answered 503 is
 * recorded as such (not retried), so a shed change shows in the result instead of arriving late.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

/** RFC 3261 section 17.1.1.1 timers over UDP (shared by storm-sender.ts) */
export const T1_MS = 500;
export const T2_MS = 4000;
export const TIMER_F_MS = 64 * T1_MS;

export interface PublishRequest {
  /** Request-URI user (the person's extension) */
  user: string;
  body: string;
}

export interface PublishOutcome {
  user: string;
  /** epoch ms the first transmission left */
  sentAt: number;
  /** final status, 0 when none arrived before Timer F */
  status: number;
  /** reason phrase of the final response ('' without one): tells a rate limit from overload shedding */
  reason: string;
  /** epoch ms of the final response (NaN without one) */
  answeredAt: number;
  retransmissions: number;
}

export interface PublishRun {
  outcomes: PublishOutcome[];
  /** first transmission to the last first transmission, ms */
  offeredSpanMs: number;
  /** PUBLISHes whose first transmission left more than 50 ms after its slot */
  late: number;
  sources: string[];
}

interface Pending {
  outcome: PublishOutcome;
  wire: Buffer;
  socket: Socket;
  interval: number;
  nextAt: number;
}

function publishWire(req: PublishRequest, port: number, source: { address: string; port: number }, branch: string, callId: string): Buffer {
  const body = req.body;
  const text = [
    `PUBLISH sip:${req.user}@127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${source.address}:${source.port};branch=${branch}`,
    'Max-Forwards: 70',
    `From: <sip:${req.user}@127.0.0.1>;tag=${callId.slice(0, 8)}`,
    `To: <sip:${req.user}@127.0.0.1>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 PUBLISH',
    'Event: presence',
    'Expires: 3600',
    'Content-Type: application/pidf+xml',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
  return Buffer.from(text, 'utf8');
}

const branchOf = (text: string): string | undefined => /^Via:[^\r\n]*;branch=([^;\s\r\n]+)/im.exec(text)?.[1];

/**
 * Sends `requests` to 127.0.0.1:`port`, request i at `i * spreadMs / n` after the start, round
 * robin over `sources` (addresses to bind, default 127.0.0.1), and resolves once every one has a
 * final response or reached Timer F.
 */
export async function sendPaced(options: {
  port: number;
  requests: readonly PublishRequest[];
  spreadMs: number;
  sources?: readonly string[];
}): Promise<PublishRun> {
  const sources = options.sources ?? ['127.0.0.1'];
  const sockets = await Promise.all(
    sources.map(
      (address) =>
        new Promise<Socket>((resolve, reject) => {
          const s = createSocket('udp4');
          s.once('error', reject);
          s.bind(0, address, () => {
            s.setSendBufferSize(4 * 1024 * 1024);
            resolve(s);
          });
        }),
    ),
  );
  const pending = new Map<string, Pending>();
  const outcomes: PublishOutcome[] = [];
  let answeredAll: () => void = () => undefined;
  const allAnswered = new Promise<void>((resolve) => (answeredAll = resolve));
  let sentCount = 0;
  const settle = (branch: string, status: number, reason = ''): void => {
    const p = pending.get(branch);
    if (p === undefined) return;
    pending.delete(branch);
    p.outcome.status = status;
    p.outcome.reason = reason;
    p.outcome.answeredAt = status === 0 ? Number.NaN : Date.now();
    if (sentCount === options.requests.length && pending.size === 0) answeredAll();
  };
  for (const s of sockets) {
    s.on('message', (msg) => {
      const text = msg.toString('utf8');
      const m = /^SIP\/2\.0 (\d{3}) ([^\r\n]*)/.exec(text);
      if (m === null) return; // not a response: nothing here answers requests
      const status = Number(m[1]);
      if (status < 200) return;
      const branch = branchOf(text);
      if (branch !== undefined) settle(branch, status, m[2] ?? '');
    });
  }
  const send = (p: Pending): void => {
    p.socket.send(p.wire, options.port, '127.0.0.1');
  };
  // retransmission clock: Timer E per pending request, Timer F gives up
  const retransmitter = setInterval(() => {
    const now = Date.now();
    for (const [branch, p] of pending) {
      if (now - p.outcome.sentAt >= TIMER_F_MS) settle(branch, 0);
      else if (now >= p.nextAt) {
        send(p);
        p.outcome.retransmissions++;
        p.interval = Math.min(p.interval * 2, T2_MS);
        p.nextAt = now + p.interval;
      }
    }
  }, 20);

  const n = options.requests.length;
  const start = Date.now();
  let late = 0;
  // pacing: each request has a slot; a 1 ms timer loop sends every request whose slot has come
  await new Promise<void>((resolve) => {
    let next = 0;
    const tick = (): void => {
      const now = Date.now();
      while (next < n && start + Math.floor((next * options.spreadMs) / n) <= now) {
        const i = next++;
        const req = options.requests[i]!;
        const socket = sockets[i % sockets.length]!;
        const local = socket.address();
        const branch = `z9hG4bK-pb-${randomBytes(6).toString('hex')}`;
        const outcome: PublishOutcome = { user: req.user, sentAt: now, status: 0, reason: '', answeredAt: Number.NaN, retransmissions: 0 };
        if (now - (start + Math.floor((i * options.spreadMs) / n)) > 50) late++;
        outcomes.push(outcome);
        const p: Pending = { outcome, wire: publishWire(req, options.port, local, branch, randomBytes(8).toString('hex')), socket, interval: T1_MS, nextAt: now + T1_MS };
        pending.set(branch, p);
        sentCount++;
        send(p);
      }
      if (next < n) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  if (pending.size > 0) await allAnswered;
  clearInterval(retransmitter);
  for (const s of sockets) s.close();
  const firsts = outcomes.map((o) => o.sentAt);
  return {
    outcomes,
    offeredSpanMs: firsts.length === 0 ? 0 : Math.max(...firsts) - Math.min(...firsts),
    late,
    sources: [...sources],
  };
}
