/** The agent's logger scrubs registered secrets from values only, never mangling the rest of a line. */
import * as assert from 'node:assert/strict';
import { Logger } from '../../agent/server/logger';

function capture() {
  const lines: string[] = [];
  return { logger: new Logger((line) => lines.push(line)), lines };
}

describe('Logger secret scrubbing', () => {
  it('refuses a secret shorter than 16 characters: it would match ordinary text', () => {
    const { logger } = capture();
    assert.throws(() => logger.addSecret('a'), RangeError);
    assert.throws(() => logger.addSecret('fifteen-chars-x'), RangeError);
    logger.addSecret('sixteen-chars-xy');
  });

  it('replaces the secret in every value, leaves field names, other values and the JSON intact', () => {
    const { logger, lines } = capture();
    // Quotes and backslashes are escaped in JSON: the secret is looked for as written, before encoding.
    const secret = 'tok"en\\with-quote-0123456789';
    logger.addSecret(secret);
    logger.info('listening', {
      auth: 'token',
      tls: false,
      header: `Bearer ${secret}`,
      nested: { list: [secret] },
    });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(JSON.stringify(secret).slice(1, -1)), lines[0]);
    const fields = JSON.parse(lines[0]!);
    assert.equal(fields.msg, 'listening');
    assert.equal(fields.auth, 'token');
    assert.equal(fields.tls, false);
    assert.equal(fields.header, 'Bearer [redacted]');
    assert.deepEqual(fields.nested, { list: ['[redacted]'] });
  });
});
