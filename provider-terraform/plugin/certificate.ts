/**
 * AutoMTLS's server side: a fresh self-signed certificate for "localhost" per
 * run (as go-plugin's own servers make), built from DER here because Node can
 * sign but not issue certificates. The host pins it from the handshake line.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const der = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  const n = body.length;
  const length =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
};
const seq = (...c: Buffer[]) => der(0x30, ...c);
const set = (...c: Buffer[]) => der(0x31, ...c);
const oid = (dotted: string): Buffer => {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) groups.unshift((v & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
};
/** A non-negative INTEGER in its minimal DER form (no leading zero bytes but the one a high bit needs). */
const integer = (bytes: Buffer) => {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const minimal = bytes.subarray(start);
  return der(0x02, minimal[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), minimal]) : minimal);
};
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
const bitString = (bytes: Buffer) => der(0x03, Buffer.from([0]), bytes);
const octetString = (bytes: Buffer) => der(0x04, bytes);
const bool = (v: boolean) => der(0x01, Buffer.from([v ? 0xff : 0]));
// UTCTime (YYMMDDHHMMSSZ), as RFC 5280 requires for dates before 2050.
const utcTime = (d: Date) =>
  der(
    0x17,
    Buffer.from(
      d
        .toISOString()
        .slice(2)
        .replace(/[-:T]|\.\d+/g, ''),
    ),
  );
const explicit = (n: number, c: Buffer) => der(0xa0 | n, c);
const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octetString(value));

export interface ServerCertificate {
  /** DER bytes of the certificate (the handshake line carries them base64-encoded). */
  der: Buffer;
  certPem: string;
  keyPem: string;
}

export function selfSignedCertificate(now = new Date(), serial = randomBytes(16)): ServerCertificate {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(set(seq(oid('2.5.4.3'), utf8('localhost'))), set(seq(oid('2.5.4.10'), utf8('snapsync'))));
  const notBefore = new Date(now.getTime() - 30_000);
  const notAfter = new Date(now.getTime() + 30 * 86_400_000);
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    ecdsaWithSha256,
    name,
    seq(utcTime(notBefore), utcTime(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      seq(
        // keyUsage: digitalSignature, keyEncipherment, keyAgreement, keyCertSign (as go-plugin's own)
        extension('2.5.29.15', true, bitString(Buffer.from([0xac]))),
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2'))), // server and client auth
        extension('2.5.29.19', true, seq(bool(true))), // a CA: the pin is the trust root
        extension('2.5.29.17', false, seq(der(0x82, Buffer.from('localhost')))), // dNSName, what go-plugin verifies
      ),
    ),
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const cert = seq(tbs, ecdsaWithSha256, bitString(signature));
  const b64 = cert.toString('base64').replace(/(.{64})/g, '$1\n');
  return {
    der: cert,
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`.replace('\n\n', '\n'),
    keyPem: createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })).export({
      type: 'pkcs8',
      format: 'pem',
    }) as string,
  };
}
