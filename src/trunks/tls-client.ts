/**
 * TLS towards trunks as a client: the PEM files of each trunk's `tls`
 * section read once, the client options per trunk destination, and a probe
 * handshake that says in words why a connection to a trunk fails.
 */
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { Endpoint } from '../sip/message.js';
import type { TlsClientOptions } from '../sip/stack.js';
import { hostForSip } from '../sip/transport/address.js';
import { clientContext } from '../sip/transport/tls.js';
import type { TrunkConfig } from './config.js';
import type { TrunkTlsSettings } from './trunk.js';
import type { Logger } from '../util/logger.js';

/** Read a PEM file named in trunks[i].tls, with an error naming the trunk, the key and the fix. */
function readTrunkPem(trunk: string, key: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`trunks[${trunk}].tls.${key}: cannot read ${file} (${code}); give the path of a readable PEM file`);
  }
}

/** The PEM text of every trunk's tls section, read once at start (an unreadable file fails the start). */
export function trunkTlsPems(trunks: readonly TrunkConfig[]): Map<string, { ca?: string; cert?: string; key?: string }> {
  const out = new Map<string, { ca?: string; cert?: string; key?: string }>();
  for (const t of trunks) {
    const tls = t.tls;
    if (tls === undefined) continue;
    const pems: { ca?: string; cert?: string; key?: string } = {};
    if (tls.caPath !== undefined) pems.ca = readTrunkPem(t.name, 'caPath', tls.caPath);
    if (tls.certPath !== undefined && tls.keyPath !== undefined) {
      pems.cert = readTrunkPem(t.name, 'certPath', tls.certPath);
      pems.key = readTrunkPem(t.name, 'keyPath', tls.keyPath);
    }
    out.set(t.name, pems);
  }
  return out;
}

/** TLS client options for a trunk's settings and its PEMs. */
export function trunkTlsOptions(settings: TrunkTlsSettings, pems: { ca?: string; cert?: string; key?: string } | undefined): TlsClientOptions {
  const o: TlsClientOptions = { rejectUnauthorized: settings.verify };
  if (pems?.ca !== undefined) o.ca = pems.ca;
  if (pems?.cert !== undefined && pems.key !== undefined) {
    o.cert = pems.cert;
    o.key = pems.key;
  }
  if (settings.servername !== undefined) o.servername = settings.servername;
  return o;
}

/** "address:port" as SipStack.setTlsClientOptions takes it (IPv6 in brackets). */
export function destinationKey(endpoint: Endpoint): string {
  return `${hostForSip(endpoint.address)}:${endpoint.port}`;
}

/**
 * One TLS handshake to `endpoint` with `options`, to say why connections fail:
 * the error message (untrusted certificate, name mismatch, refused, ...), or
 * undefined when it connects.
 */
export function probeTlsConnection(endpoint: Endpoint, options: TlsClientOptions, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const o = clientContext(endpoint.address, endpoint.port, options);
    let done = false;
    const finish = (why: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const socket = tlsConnect(o);
    const timer = setTimeout(() => finish('the TLS handshake timed out'), timeoutMs);
    timer.unref();
    socket.once('secureConnect', () => {
      // TLS 1.3: a server refusing our certificate says so only after the handshake
      socket.once('data', () => finish(undefined));
      setTimeout(() => finish(undefined), 200).unref();
    });
    socket.once('error', (err) => finish(explainTlsError(err)));
    socket.once('close', () => finish(done ? undefined : 'the peer closed the connection during the TLS handshake'));
  });
}

/** A TLS failure in words an administrator can act on (OpenSSL's alert text trimmed, the setting to check named). */
export function explainTlsError(err: Error): string {
  const alert = /alert ([a-z ]+?)(?::|$)/i.exec(err.message)?.[1]?.trim();
  if (alert !== undefined) {
    if (alert === 'certificate required') return 'the peer requires a client certificate (TLS alert "certificate required"); set tls.certPath and tls.keyPath';
    if (alert === 'unknown ca' || alert === 'bad certificate' || alert === 'certificate unknown') {
      return `the peer refused our client certificate (TLS alert "${alert}"); check tls.certPath and the CA the peer trusts`;
    }
    return `the peer ended the handshake (TLS alert "${alert}")`;
  }
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(code)) {
    const hint = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'check tls.servername' : 'check tls.caPath (or verify: false)';
    return `${err.message}; ${hint}`;
  }
  return err.message;
}

/** Where client options for a destination go (SipStack.setTlsClientOptions fits). */
export interface TlsOptionsSink {
  setTlsClientOptions?(destination: string, options: TlsClientOptions | undefined): void;
}

/**
 * The TLS client options of every trunk destination met so far: handed to the
 * stack as each destination is resolved, and kept for the failure probe.
 */
export class TrunkTlsClients {
  private readonly byDestination = new Map<string, TlsClientOptions>();

  constructor(
    private readonly pems: ReadonlyMap<string, { ca?: string; cert?: string; key?: string }>,
    private readonly stack: TlsOptionsSink,
    private readonly logger: Logger,
  ) {}

  /** A trunk's TLS destination resolved to `endpoint`: its client options set at the stack. */
  target(endpoint: Endpoint, settings: TrunkTlsSettings): void {
    const key = destinationKey(endpoint);
    const options = trunkTlsOptions(settings, this.pems.get(settings.trunk));
    const before = this.byDestination.get(key);
    this.byDestination.set(key, options);
    this.stack.setTlsClientOptions?.(key, options);
    if (before === undefined) {
      this.logger.debug(
        { trunk: settings.trunk, destination: key, servername: options.servername, mutual: options.cert !== undefined, verify: settings.verify },
        'tls client options for trunk destination',
      );
    }
  }

  /** Why a TLS connection to `endpoint` fails (undefined: it connects). */
  probe(endpoint: Endpoint): Promise<string | undefined> {
    return probeTlsConnection(endpoint, this.byDestination.get(destinationKey(endpoint)) ?? {});
  }
}
