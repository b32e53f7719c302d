import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

/** A certificate with its private key, both PEM. */
export interface CertificateWithKey {
  certPem: string;
  keyPem: string;
}

export interface SimulatorTls {
  ca: CertificateWithKey;
  server: CertificateWithKey;
}

/** RSA key pair through node's native generator (fast), returned as PKCS#1 PEM for forge. */
function rsaKeyPair(bits = 2048): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}

function serial(): string {
  // positive 16-byte serial, hex
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, days: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + days * 24 * 60 * 60 * 1000);
}

/** A self-signed CA that signs the simulator's server certificate. */
export function createCertificateAuthority(commonName = 'presence-gateway Graph simulator CA'): CertificateWithKey {
  const keys = rsaKeyPair();
  const privateKey = forge.pki.privateKeyFromPem(keys.privatePem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  validity(cert, 825);
  const attrs = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'presence-gateway test' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

/** A TLS server certificate for localhost, 127.0.0.1 and ::1, signed by `ca`. */
export function createServerCertificate(ca: CertificateWithKey, extraHosts: readonly string[] = []): CertificateWithKey {
  const keys = rsaKeyPair();
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicPem);
  cert.serialNumber = serial();
  validity(cert, 365);
  cert.setSubject([{ name: 'commonName', value: 'localhost' }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames: Array<{ type: number; value?: string; ip?: string }> = [
    { type: 2, value: 'localhost' },
    { type: 7, ip: '127.0.0.1' },
    { type: 7, ip: '::1' },
  ];
  for (const host of extraHosts) {
    if (/^[\d.]+$/.test(host) || host.includes(':')) altNames.push({ type: 7, ip: host });
    else altNames.push({ type: 2, value: host });
  }
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privatePem };
}

/**
 * A self-signed certificate for an app registration (client certificate
 * credential) or for rich-notification encryption.
 */
export { createSelfSignedCertificate } from '../util/x509.js';

/** Both CA and server certificate; reuse a CA from an earlier run when given. */
export function createSimulatorTls(existingCa?: CertificateWithKey): SimulatorTls {
  const ca = existingCa ?? createCertificateAuthority();
  return { ca, server: createServerCertificate(ca) };
}

/** DER bytes of the first certificate in a PEM string. */
export function certificateDer(pem: string): Buffer {
  return Buffer.from(new X509Certificate(pem).raw);
}

/** Certificate thumbprints: hex (as the Entra portal shows them) and base64url (as x5t / x5t#S256 carry them). */
export function certificateThumbprints(pem: string): { sha1Hex: string; sha256Hex: string; x5t: string; x5tS256: string } {
  const der = certificateDer(pem);
  const sha1 = createHash('sha1').update(der).digest();
  const sha256 = createHash('sha256').update(der).digest();
  return {
    sha1Hex: sha1.toString('hex').toUpperCase(),
    sha256Hex: sha256.toString('hex').toUpperCase(),
    x5t: sha1.toString('base64url'),
    x5tS256: sha256.toString('base64url'),
  };
}
