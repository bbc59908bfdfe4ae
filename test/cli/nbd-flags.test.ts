/** `serve --nbd-threads` and the per-connection limits: checked before the pool opens, passed to the NBD server. */
import * as assert from 'node:assert/strict';
import { type NbdFlags, nbdSettings } from '../../agent/cli/nbd-flags';
import { UsageError } from '../../agent/cli/usage-error';

const flags = (nbdThreads: number, more: Partial<NbdFlags> = {}): NbdFlags => ({
  nbd: 'unix:/tmp/snapsync-test-nbd.sock',
  nbdSocketMode: '0660',
  nbdHandshakeTimeout: 30,
  nbdMaxConnectionsPerAddress: 128,
  nbdMaxConnections: 1024,
  nbdThreads,
  nbdMaxInFlight: 64,
  nbdMaxReplyBytes: 64 * 1024 * 1024,
  ...more,
});

describe('serve --nbd-threads', () => {
  it('passes a whole number from 0 to 1024 to the NBD server', () => {
    assert.equal(nbdSettings(flags(0))!.options.transmissionThreads, 0);
    assert.equal(nbdSettings(flags(16))!.options.transmissionThreads, 16);
  });

  it('refuses a negative, fractional or huge count with a usage error', () => {
    for (const bad of [-1, 2.5, 1025, Number.NaN])
      assert.throws(
        () => nbdSettings(flags(bad)),
        (err: unknown) => {
          assert.ok(err instanceof UsageError);
          assert.match(err.message, /--nbd-threads must be a whole number from 0 to 1024/);
          return true;
        },
      );
  });
});

describe('serve --nbd-max-in-flight, --nbd-max-reply-bytes', () => {
  it('passes them to the NBD server as per-connection limits', () => {
    const { options } = nbdSettings(flags(16, { nbdMaxInFlight: 16, nbdMaxReplyBytes: 8 << 20 }))!;
    assert.equal(options.maxInFlight, 16);
    assert.equal(options.maxReplyBytes, 8 << 20);
  });

  it('refuses values that would bound nothing or overflow, naming the flag', () => {
    const cases: Array<[Partial<NbdFlags>, RegExp]> = [
      [{ nbdMaxInFlight: 0 }, /--nbd-max-in-flight must be a whole number from 1 to 65536 \(not 0\)/],
      [{ nbdMaxReplyBytes: 4096 }, /--nbd-max-reply-bytes must be a whole number from 1048576 to 1073741824/],
      [
        { nbdMaxReplyBytes: 2 ** 31 },
        /--nbd-max-reply-bytes must be a whole number from 1048576 to 1073741824/,
      ],
    ];
    for (const [more, message] of cases)
      assert.throws(
        () => nbdSettings(flags(16, more)),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
      );
  });
});
