/**
 * The bound on what all WebSocket connections hold together
 * (held-bytes-total.ts) as ConnectionBytes use it: a reservation waits for
 * room in both bounds, a release on one connection wakes another's, a
 * connection that holds nothing still gets one request, and connections
 * holding bytes pause while the total is at its bound.
 */
import * as assert from 'node:assert/strict';
import { ConnectionBytes } from '../../agent/server/connection-bytes';
import { HeldBytesTotal } from '../../agent/server/held-bytes-total';

const settled = () => new Promise((resolve) => setImmediate(resolve));

/** A connection on `total` with its own bound `limit`, recording whether its reading is paused. */
function connection(total: HeldBytesTotal, limit = 64) {
  const state = { paused: false };
  const bytes = new ConnectionBytes(
    limit,
    (paused) => {
      state.paused = paused;
    },
    total,
  );
  return { bytes, state };
}

describe('HeldBytesTotal: the bytes all connections hold, bounded together', () => {
  it('a reservation waits for room in the total, and a release on another connection gives it', async () => {
    const total = new HeldBytesTotal(100);
    const a = connection(total);
    const b = connection(total);
    await a.bytes.reserve(60);
    await b.bytes.reserve(30);
    let granted = false;
    void b.bytes.reserve(30).then(() => {
      granted = true;
    });
    await settled();
    assert.equal(granted, false, 'b fits its own bound (60 of 64) but not the total (120 of 100)');
    a.bytes.release(60);
    await settled();
    assert.equal(granted, true);
    assert.equal(total.bytes, 60);
  });

  it('connections holding bytes pause while the total is at its bound and resume below it; one holding nothing does not', () => {
    const total = new HeldBytesTotal(100);
    const a = connection(total);
    const b = connection(total);
    const idle = connection(total);
    a.bytes.take(50);
    b.bytes.take(50);
    assert.equal(total.full, true);
    assert.deepEqual([a.state.paused, b.state.paused, idle.state.paused], [true, true, false]);
    assert.equal(total.pausedConnections, 2);
    b.bytes.release(10);
    assert.deepEqual([a.state.paused, b.state.paused], [false, false]);
    assert.equal(total.pausedConnections, 0);
  });

  it('a connection that holds nothing takes one request above a full total, then waits', async () => {
    const total = new HeldBytesTotal(100);
    const hog = connection(total, 200);
    hog.bytes.take(150);
    const late = connection(total);
    await late.bytes.reserve(32);
    assert.equal(total.bytes, 182);
    assert.equal(late.state.paused, true);
    let second = false;
    void late.bytes.reserve(8).then(() => {
      second = true;
    });
    await settled();
    assert.equal(second, false);
    late.bytes.release(32); // its client took the reply: it holds nothing again
    await settled();
    assert.equal(second, true);
  });

  it("alone, a connection keeps its own bound's behaviour: one request above it when it holds nothing", async () => {
    const total = new HeldBytesTotal(Number.POSITIVE_INFINITY);
    const only = connection(total);
    await only.bytes.reserve(100);
    assert.equal(only.state.paused, true);
    let next = false;
    void only.bytes.reserve(1).then(() => {
      next = true;
    });
    await settled();
    assert.equal(next, false);
    only.bytes.release(100);
    await settled();
    assert.equal(next, true);
    assert.equal(only.state.paused, false);
  });
});
