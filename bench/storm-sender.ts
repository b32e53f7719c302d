/**
 * Storm sender for the overload benchmark: offers exactly `rate` new SUBSCRIBE dialogs per second for
 * `seconds` from one UDP socket (one source, as a flood is), each at its slot of an even spread, and
 * records per Call-ID the final response: 2xx (created), 503 (shed), another status, or none before
 * Timer F (unanswered). Unlike SIPp's call model (a concurrent-call limit that makes it keep placing
 * calls long after the offered period), the offered load ends when the last slot is sent, and every
 * request is counted once. Retransmissions follow RFC 3261 section 17.1.2.2 (Timer E: T1 doubling up
 * to T2 = 4 s; Timer F = 64*T1). The NOTIFYs of the created subscriptions are answered 200, like a phone.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { T1_MS, T2_MS, TIMER_F_MS } from './publish-sender.js';

export interface StormRun {
  /** requests offered (first transmissions) */
  sent: number;
  /** 2xx */
  created: number;
  /** 503 */
  shed: number;
  /** another final status, by status */
  other: Record<string, number>;
  /** no final response before Timer F */
  unanswered: number;
  retransmissions: number;
  /** NOTIFYs answered 200 */
  notifies: number;
  /** epoch ms of the first and the last first transmission */
  firstSentAt: number;
  lastSentAt: number;
  /** first transmissions that left more than 50 ms after their slot (the sender could not keep pace) */
  late: number;
  /** epoch ms of the last final response */
  lastAnsweredAt: number;
  /** ms from first transmission to final response: 50th and 99th percentile, answered requests */
  p50AnswerMs: number;
  p99AnswerMs: number;
}

interface Pending {
  wire: Buffer;
  sentAt: number;
  interval: number;
  nextAt: number;
}

export interface StormSender {
  /** resolves once the last slot is sent (the offered period is over), with its epoch ms */
  offered: Promise<number>;
  /** epoch ms of the last slot: when the offered period ends if the sender keeps pace */
  endsAt: number;
  /** resolves once every request has a final response or reached Timer F */
  done: Promise<StormRun>;
}

function subscribeWire(user: string, port: number, local: { address: string; port: number }, n: number, callId: string): Buffer {
  const text =
    `SUBSCRIBE sip:${user}@127.0.0.1:${port} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${local.address}:${local.port};branch=z9hG4bK-st-${callId}\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:watcher-${n}@${local.address}>;tag=st${n}\r\n` +
    `To: <sip:${user}@127.0.0.1>\r\n` +
    `Call-ID: ${callId}\r\n` +
    'CSeq: 1 SUBSCRIBE\r\n' +
    `Contact: <sip:watcher-${n}@${local.address}:${local.port}>\r\n` +
    'Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n';
  return Buffer.from(text, 'latin1');
}

/** A header's value (first occurrence) from a message's head. */
function headerValue(text: string, name: string): string | undefined {
  const re = new RegExp(`^${name}[ \\t]*:[ \\t]*([^\\r\\n]*)`, 'im');
  return re.exec(text)?.[1];
}

/** 200 to a NOTIFY: Via(s), From, To, Call-ID and CSeq copied (RFC 3261 section 8.2.6.2). */
function notifyAnswer(text: string): Buffer | undefined {
  const head = text.slice(0, text.indexOf('\r\n\r\n') >>> 0);
  const lines = head.split('\r\n');
  const keep = lines.filter((l) => /^(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:/i.test(l));
  if (keep.length < 5) return undefined;
  return Buffer.from(`SIP/2.0 200 OK\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, 'latin1');
}

/**
 * Starts offering `rate` SUBSCRIBEs per second for `seconds` to 127.0.0.1:`port` from `address`,
 * users taken in order and wrapped.
 */
export async function startStorm(options: { port: number; rate: number; seconds: number; users: readonly string[]; address?: string }): Promise<StormSender> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, options.address ?? '127.0.0.1', () => {
      s.setSendBufferSize(8 * 1024 * 1024);
      s.setRecvBufferSize(8 * 1024 * 1024);
      resolve(s);
    });
  });
  const local = socket.address();
  const total = Math.round(options.rate * options.seconds);
  const spreadMs = options.seconds * 1000;
  const pending = new Map<string, Pending>();
  const answerMs: number[] = [];
  const run: StormRun = {
    sent: 0,
    created: 0,
    shed: 0,
    other: {},
    unanswered: 0,
    retransmissions: 0,
    notifies: 0,
    firstSentAt: Number.NaN,
    lastSentAt: Number.NaN,
    late: 0,
    lastAnsweredAt: Number.NaN,
    p50AnswerMs: Number.NaN,
    p99AnswerMs: Number.NaN,
  };
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const settle = (callId: string, status: number): void => {
    const p = pending.get(callId);
    if (p === undefined) return;
    pending.delete(callId);
    const now = Date.now();
    if (status === 0) run.unanswered++;
    else {
      answerMs.push(now - p.sentAt);
      run.lastAnsweredAt = now;
      if (status >= 200 && status < 300) run.created++;
      else if (status === 503) run.shed++;
      else run.other[status] = (run.other[status] ?? 0) + 1;
    }
    if (run.sent === total && pending.size === 0) finish();
  };
  socket.on('message', (msg, rinfo) => {
    const text = msg.toString('latin1');
    if (text.startsWith('SIP/2.0 ')) {
      const status = Number(text.slice(8, 11));
      if (status < 200) return;
      const callId = headerValue(text, '(?:call-id|i)');
      if (callId !== undefined) settle(callId.trim(), status);
      return;
    }
    if (text.startsWith('NOTIFY ')) {
      const answer = notifyAnswer(text);
      if (answer === undefined) return;
      run.notifies++;
      socket.send(answer, rinfo.port, rinfo.address);
    }
  });
  // retransmission clock in 20 ms buckets (a pass over every pending request each tick would make the
  // sender, not the gateway, the bottleneck at tens of thousands pending)
  const TICK_MS = 20;
  const buckets = new Map<number, string[]>();
  const schedule = (callId: string, at: number): void => {
    const b = Math.ceil(at / TICK_MS);
    const list = buckets.get(b);
    if (list === undefined) buckets.set(b, [callId]);
    else list.push(callId);
  };
  let lastBucket = Math.floor(Date.now() / TICK_MS);
  const retransmitter = setInterval(() => {
    const now = Date.now();
    const upTo = Math.floor(now / TICK_MS);
    for (let b = lastBucket + 1; b <= upTo; b++) {
      const list = buckets.get(b);
      if (list === undefined) continue;
      buckets.delete(b);
      for (const callId of list) {
        const p = pending.get(callId);
        if (p === undefined) continue;
        if (now - p.sentAt >= TIMER_F_MS) {
          settle(callId, 0);
          continue;
        }
        socket.send(p.wire, options.port, '127.0.0.1');
        run.retransmissions++;
        p.interval = Math.min(p.interval * 2, T2_MS);
        p.nextAt = Math.min(now + p.interval, p.sentAt + TIMER_F_MS);
        schedule(callId, p.nextAt);
      }
    }
    lastBucket = upTo;
  }, TICK_MS);
  const tag = randomBytes(4).toString('hex');
  const start = Date.now();
  run.firstSentAt = start;
  /** epoch ms of request i's slot in the even spread */
  const slotAt = (i: number): number => start + Math.floor((i * spreadMs) / total);
  const offered = new Promise<number>((resolve) => {
    let next = 0;
    const tick = (): void => {
      const now = Date.now();
      while (next < total && slotAt(next) <= now) {
        const i = next++;
        const slot = slotAt(i);
        if (now - slot > 50) run.late++;
        const callId = `st-${tag}-${i}`;
        const wire = subscribeWire(options.users[i % options.users.length]!, options.port, local, i, callId);
        pending.set(callId, { wire, sentAt: now, interval: T1_MS, nextAt: now + T1_MS });
        schedule(callId, now + T1_MS);
        run.sent++;
        run.lastSentAt = now;
        socket.send(wire, options.port, '127.0.0.1');
      }
      if (next < total) setTimeout(tick, 1);
      else resolve(run.lastSentAt);
    };
    tick();
  });
  const done = (async (): Promise<StormRun> => {
    await offered;
    if (pending.size > 0) await finished;
    clearInterval(retransmitter);
    // NOTIFYs of the last subscriptions still arriving are answered a moment longer
    await new Promise((r) => setTimeout(r, 500));
    socket.close();
    answerMs.sort((a, b) => a - b);
    run.p50AnswerMs = answerMs[Math.floor(answerMs.length * 0.5)] ?? Number.NaN;
    run.p99AnswerMs = answerMs[Math.floor(answerMs.length * 0.99)] ?? Number.NaN;
    return run;
  })();
  return { offered, endsAt: slotAt(total - 1), done };
}
