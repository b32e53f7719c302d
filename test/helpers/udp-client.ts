/** A minimal SIP watcher over UDP for tests: sends messages to 127.0.0.1, collects what it gets, parsed. */
import { createSocket, type Socket } from 'node:dgram';
import type { SipMessage } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';

/** A minimal UDP watcher: sends requests, collects parsed messages. */
export class UdpClient {
  readonly messages: SipMessage[] = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly socket: Socket) {
    socket.on('message', (data) => {
      const parsed = parseMessage(data);
      if (parsed.ok) this.messages.push(parsed.message);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(): Promise<UdpClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new UdpClient(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(message: SipMessage, port: number): void {
    this.socket.send(serializeMessage(message), port, '127.0.0.1');
  }

  /** The next message matching `pick`, waiting for it (fails after 3 s). */
  async next(pick: (m: SipMessage) => boolean): Promise<SipMessage> {
    const deadline = Date.now() + 3000;
    for (;;) {
      const i = this.messages.findIndex(pick);
      if (i >= 0) return this.messages.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
