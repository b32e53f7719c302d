/**
 * A minimal SIP-over-UDP request sender for tests and the benchmark: send one
 * request to 127.0.0.1:<port> and resolve with the first final response to it
 * (matched by the Via branch). Not a SIP stack: no retransmission unless asked.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

export interface UdpResponse {
  status: number;
  text: string;
  /** Header value by lower-case name (first occurrence). */
  header(name: string): string | undefined;
}

export interface UdpRequestOptions {
  method: string;
  /** Request-URI user part; host is <host>:<port>. */
  user: string;
  port: number;
  /** The address to send to (a cluster node's 127.0.0.2, ...); default 127.0.0.1. */
  host?: string;
  /** Extra header lines, without CRLF. */
  headers?: string[];
  body?: string;
  contentType?: string;
  timeoutMs?: number;
  /** Resend every this many ms until answered (RFC 3261 §17.1.2.2 timer E, simplified). */
  retransmitMs?: number;
  /** Loopback address to send from (Via and Contact name it); default 127.0.0.1. */
  localAddress?: string;
}

function parseResponse(text: string): UdpResponse | undefined {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(text);
  if (m?.[1] === undefined) return undefined;
  const headEnd = text.indexOf('\r\n\r\n');
  const head = headEnd < 0 ? text : text.slice(0, headEnd);
  const lines = head.split('\r\n').slice(1);
  return {
    status: Number(m[1]),
    text,
    header(name: string): string | undefined {
      const wanted = name.toLowerCase();
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === wanted) return line.slice(colon + 1).trim();
      }
      return undefined;
    },
  };
}

/** Sends one request and resolves with its final response (provisional responses are skipped). */
export function udpRequest(options: UdpRequestOptions): Promise<UdpResponse> {
  const socket = createSocket('udp4');
  const id = randomBytes(6).toString('hex');
  const branch = `z9hG4bK-pg-${id}`;
  const body = options.body ?? '';
  return new Promise<UdpResponse>((resolve, reject) => {
    let done = false;
    let retransmit: NodeJS.Timeout | undefined;
    const finish = (err: Error | undefined, response?: UdpResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (retransmit !== undefined) clearInterval(retransmit);
      socket.close();
      if (err !== undefined) reject(err);
      else if (response !== undefined) resolve(response);
    };
    const timer = setTimeout(
      () => finish(new Error(`no final response to ${options.method} within ${options.timeoutMs ?? 2000} ms`)),
      options.timeoutMs ?? 2000,
    );
    socket.on('error', (err) => finish(err));
    socket.on('message', (data) => {
      const text = data.toString('utf8');
      if (!text.includes(branch)) return;
      const response = parseResponse(text);
      if (response !== undefined && response.status >= 200) finish(undefined, response);
    });
    const from = options.localAddress ?? '127.0.0.1';
    socket.bind({ address: from, port: 0 }, () => {
      const local = socket.address().port;
      const lines = [
        `${options.method} sip:${options.user}@${options.host ?? '127.0.0.1'}:${options.port} SIP/2.0`,
        `Via: SIP/2.0/UDP ${from}:${local};branch=${branch};rport`,
        'Max-Forwards: 70',
        `From: <sip:pg-test@127.0.0.1>;tag=${id}`,
        `To: <sip:${options.user}@127.0.0.1>`,
        `Call-ID: ${id}@127.0.0.1`,
        `CSeq: 1 ${options.method}`,
        `Contact: <sip:pg-test@${from}:${local}>`,
        ...(options.headers ?? []),
      ];
      if (body.length > 0) lines.push(`Content-Type: ${options.contentType ?? 'text/plain'}`);
      lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
      const wire = Buffer.from(lines.join('\r\n'));
      const send = (): void => {
        if (!done) socket.send(wire, options.port, options.host ?? '127.0.0.1');
      };
      send();
      if (options.retransmitMs !== undefined) retransmit = setInterval(send, options.retransmitMs);
    });
  });
}
