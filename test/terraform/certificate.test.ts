/** The AutoMTLS server certificate: valid DER whatever its random serial, for localhost, self-signed. */
import * as assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { selfSignedCertificate } from '../../provider-terraform/plugin/certificate';

describe('terraform provider plugin: self-signed server certificate', () => {
  it('is valid DER for serials with leading zero bytes or a high bit', () => {
    const serials = [
      Buffer.from('00112233445566778899aabbccddeeff', 'hex'), // a leading zero DER must drop
      Buffer.from('0000ff2233445566778899aabbccddee', 'hex'), // zeros, then a high bit: one zero stays
      Buffer.from('ff112233445566778899aabbccddeeff', 'hex'), // a high bit: a zero is added
    ];
    for (const serial of serials) {
      const cert = selfSignedCertificate(new Date(), serial);
      const x509 = new X509Certificate(cert.der);
      assert.ok(x509.checkHost('localhost'));
      assert.ok(x509.verify(x509.publicKey));
      assert.equal(x509.ca, true);
      assert.deepEqual(new X509Certificate(cert.certPem).raw, cert.der);
    }
  });
});
