/**
 * The devices protected with a pool's data device, on a sysfs tree laid out as the kernel does
 * (/sys/dev/block/M:m links into /sys/devices/…; a partition directory inside its disk's, with a
 * `partition` file; slaves/ and holders/ links between stacked devices). Loop devices here get no
 * partitions nor device-mapper, so the tree is built by hand; one real device is checked too.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deviceId } from '../../agent/engine/store/block-device';
import { deviceStack } from '../../agent/engine/store/block-device-overlap';
import { AllowedDirs } from '../../agent/server/paths';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

/** `major:minor` of every device sharing bytes with `rdev`. */
const overlappingDevices = (rdev: number, sysfs?: string) => deviceStack(rdev, sysfs).devices;

/** Linux's device number encoding (glibc makedev) of major:minor. */
const makedev = (major: number, minor: number) => (minor & 0xff) | (major << 8) | ((minor & ~0xff) * 0x1000);

/** Adds to the last fakeSysfs() tree a device `id` at `rel` stacked on the one at `under` (a mapping made later). */
let stackOn: (under: string, rel: string, id: string) => void = () => {};
/** Adds to the last fakeSysfs() tree a device `id` at `rel` on nothing (a loop device); returns its directory. */
let addDevice: (rel: string, id: string) => string = () => '';

function fakeSysfs(): string {
  const sys = tempDir('snapsync-sysfs-');
  const devices = path.join(sys, 'devices');
  const device = (rel: string, id: string, partition = false) => {
    const dir = path.join(devices, rel);
    fs.mkdirSync(path.join(dir, 'holders'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'slaves'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dev'), `${id}\n`);
    if (partition) fs.writeFileSync(path.join(dir, 'partition'), '1\n');
    fs.mkdirSync(path.join(sys, 'dev', 'block'), { recursive: true });
    fs.symlinkSync(dir, path.join(sys, 'dev', 'block', id));
    return dir;
  };
  const link = (from: string, list: 'holders' | 'slaves', to: string) =>
    fs.symlinkSync(to, path.join(from, list, path.basename(to)));
  addDevice = (rel, id) => device(rel, id);
  stackOn = (under, rel, id) => {
    const dir = device(rel, id);
    const below = path.join(devices, under);
    link(below, 'holders', dir);
    link(dir, 'slaves', below);
  };
  // sdb with partitions sdb1 (a PV under two LVs, dm-0 and dm-1) and sdb2; dm-0 under dm-2 (dm-crypt).
  const sdb = device('pci/block/sdb', '8:16');
  const sdb1 = device('pci/block/sdb/sdb1', '8:17', true);
  device('pci/block/sdb/sdb2', '8:18', true);
  const dm0 = device('virtual/block/dm-0', '253:0');
  const dm1 = device('virtual/block/dm-1', '253:1');
  const dm2 = device('virtual/block/dm-2', '253:2');
  for (const lv of [dm0, dm1]) {
    link(sdb1, 'holders', lv);
    link(lv, 'slaves', sdb1);
  }
  link(dm0, 'holders', dm2);
  link(dm2, 'slaves', dm0);
  assert.ok(fs.existsSync(sdb));
  return sys;
}

describe('block devices sharing bytes with the pool data device', () => {
  after(cleanupTempDirs);

  it('encodes device numbers as the kernel does, minors above 255 included', () => {
    assert.equal(deviceId(makedev(8, 17)), '8:17');
    assert.equal(deviceId(makedev(259, 300)), '259:300');
  });

  it('a partition: itself, its disk and what is stacked on it; not its sibling partition', () => {
    const sys = fakeSysfs();
    assert.deepEqual(
      [...overlappingDevices(makedev(8, 17), sys)].sort(),
      ['253:0', '253:1', '253:2', '8:16', '8:17'].sort(),
    );
  });

  it('a logical volume: itself, its PV partition and disk, its dm-crypt mapping; not the other volume', () => {
    const sys = fakeSysfs();
    assert.deepEqual(
      [...overlappingDevices(makedev(253, 0), sys)].sort(),
      ['253:0', '253:2', '8:16', '8:17'].sort(),
    );
  });

  it('a device sysfs does not list: only itself', () => {
    assert.deepEqual([...overlappingDevices(makedev(8, 99), fakeSysfs())], ['8:99']);
  });

  it('a mapping stacked on the data device after start-up is refused at the request', () => {
    const sys = fakeSysfs();
    const dir = tempDir('snapsync-protect-');
    // The pool's data device node: the logical volume dm-0 of the tree.
    const data = path.join(dir, 'data');
    assert.equal(spawnSync('mknod', [data, 'b', '253', '0']).status, 0, 'mknod (the tests run as root)');
    const dirs = new AllowedDirs([dir], { blockDevices: true, protect: [data], sysfs: sys });
    const device = (major: number, minor: number) => ({
      dev: 1,
      ino: 1_000_000 + minor,
      rdev: makedev(major, minor),
      isBlockDevice: () => true,
    });
    const refused = (major: number, minor: number) =>
      assert.throws(
        () => dirs.refuseProtected('/dev/x', device(major, minor)),
        (e: { code: string; details: { reason: string } }) =>
          e.code === 'PATH_NOT_ALLOWED' && e.details.reason === 'pool',
        `${major}:${minor}`,
      );
    refused(253, 0);
    refused(253, 2);
    refused(8, 17);
    // dm-3 on dm-0 and dm-4 on dm-3, made once the agent runs: not in the start-up set, found at the request.
    stackOn('virtual/block/dm-0', 'virtual/block/dm-3', '253:3');
    stackOn('virtual/block/dm-3', 'virtual/block/dm-4', '253:4');
    refused(253, 3);
    refused(253, 4);
    // The other volume of the group, a sibling partition, and a mapping made on that volume stay allowed.
    stackOn('virtual/block/dm-1', 'virtual/block/dm-5', '253:5');
    for (const [major, minor] of [
      [253, 1],
      [8, 18],
      [253, 5],
    ] as const)
      dirs.refuseProtected('/dev/y', device(major, minor));
  });

  it('a loop device over a pool file, or over the data device, and what is stacked on one, are refused', () => {
    const sys = fakeSysfs();
    const dir = tempDir('snapsync-protect-');
    const dataFile = path.join(dir, 'data');
    const unrelated = path.join(dir, 'unrelated.img');
    fs.writeFileSync(dataFile, 'pool bytes');
    fs.writeFileSync(unrelated, 'other bytes');
    const loop = (minor: number, backing: string) => {
      const dir = addDevice(`virtual/block/loop${minor}`, `7:${minor}`);
      fs.mkdirSync(path.join(dir, 'loop'));
      fs.writeFileSync(path.join(dir, 'loop', 'backing_file'), `${backing}\n`);
    };
    const device = (major: number, minor: number) => ({
      dev: 1,
      ino: 2_000_000 + minor,
      rdev: makedev(major, minor),
      isBlockDevice: () => true,
    });
    const verdict = (dirs: AllowedDirs, major: number, minor: number) => {
      try {
        dirs.refuseProtected('/dev/x', device(major, minor));
        return 'allowed';
      } catch (e) {
        return (e as { details: { reason: string } }).details.reason;
      }
    };
    // A pool on data files: loop1 over one of them, dm-7 on loop1; loop2 over another file.
    const onFiles = new AllowedDirs([dir], { blockDevices: true, protect: [dataFile], sysfs: sys });
    loop(1, dataFile);
    loop(2, unrelated);
    stackOn('virtual/block/loop1', 'virtual/block/dm-7', '253:7');
    assert.equal(verdict(onFiles, 7, 1), 'pool');
    assert.equal(verdict(onFiles, 253, 7), 'pool');
    assert.equal(verdict(onFiles, 7, 2), 'allowed');
    // A deleted backing file has no name to compare: the kernel says " (deleted)".
    loop(3, `${unrelated} (deleted)`);
    assert.equal(verdict(onFiles, 7, 3), 'allowed');

    // A pool on a loop device (7:4 over a file): a loop over a node of it, over the same file, and the file.
    const backing = path.join(dir, 'device.img');
    fs.writeFileSync(backing, 'device bytes');
    loop(4, backing);
    const node = path.join(dir, 'data-device');
    assert.equal(spawnSync('mknod', [node, 'b', '7', '4']).status, 0, 'mknod (the tests run as root)');
    const onLoop = new AllowedDirs([dir], { blockDevices: true, protect: [node], sysfs: sys });
    const otherNode = path.join(dir, 'another-name');
    assert.equal(spawnSync('mknod', [otherNode, 'b', '7', '4']).status, 0);
    loop(5, otherNode);
    loop(6, backing);
    assert.equal(verdict(onLoop, 7, 5), 'pool');
    assert.equal(verdict(onLoop, 7, 6), 'pool');
    assert.throws(
      () => onLoop.refuseProtected(backing, fs.statSync(backing)),
      (e: { details: { reason: string } }) => e.details.reason === 'pool',
    );
    assert.equal(verdict(onLoop, 7, 2), 'allowed');
  });

  it('a real device of this host is found under /sys', () => {
    const real = fs.readdirSync('/sys/block').find((d) => fs.existsSync(path.join('/sys/block', d, 'dev')));
    assert.ok(real, 'no block device listed in /sys/block');
    const id = fs.readFileSync(path.join('/sys/block', real, 'dev'), 'utf8').trim();
    const [major, minor] = id.split(':').map(Number) as [number, number];
    assert.ok(overlappingDevices(makedev(major, minor)).has(id));
  });
});
