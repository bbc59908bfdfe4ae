/** `serve --nbd-threads`: checked before the pool opens, passed to the NBD server as its thread count. */
import * as assert from 'node:assert/strict';
import { type NbdFlags, nbdSettings } from '../../agent/cli/nbd-flags';
import { UsageError } from '../../agent/cli/usage-error';

const flags = (nbdThreads: number): NbdFlags => ({
  nbd: 'unix:/tmp/snapsync-test-nbd.sock',
  nbdSocketMode: '0660',
  nbdHandshakeTimeout: 30,
  nbdMaxConnectionsPerAddress: 128,
  nbdMaxConnections: 1024,
  nbdThreads,
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
