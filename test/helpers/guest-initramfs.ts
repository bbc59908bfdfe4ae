/**
 * The test guest's boot files: a Debian kernel (linux-image-amd64) and a
 * small initramfs built here from busybox-static and the kernel's own virtio
 * modules. Its /init prints `GUEST-INIT`, loads virtio-blk, waits for
 * /dev/vda, prints `GUEST-READY`, then runs the shell commands the test
 * sends over the serial console, one per line (`<id> <command>`), answering
 * `GUEST-DONE <id> <rc>`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { type CpioEntry, cpioNewc } from './cpio-newc';

/** What /dev/vda needs, in the order the kernel must load it (dependencies first, from modules.dep). */
const WANTED_MODULES = ['virtio_pci', 'virtio_blk'];
const BUSYBOX = '/bin/busybox';

export interface GuestBootFiles {
  /** The ELF vmlinux (PVH entry) when it could be extracted, else the bzImage. */
  kernel: string;
  initramfs: string;
  kernelVersion: string;
  modules: string[];
}

/** The newest /boot/vmlinuz-<version> that has its /lib/modules/<version>. */
function findKernel(): { kernel: string; version: string } {
  const versions = fs.existsSync('/boot')
    ? fs
        .readdirSync('/boot')
        .filter((f) => f.startsWith('vmlinuz-'))
        .map((f) => f.slice('vmlinuz-'.length))
        .filter((v) => fs.existsSync(path.join('/lib/modules', v, 'modules.dep')))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    : [];
  const version = versions.at(-1);
  if (!version)
    throw new Error(
      'no kernel for the test guest: /boot/vmlinuz-<version> with /lib/modules/<version> (Debian package linux-image-amd64; make system-deps installs it)',
    );
  return { kernel: path.join('/boot', `vmlinuz-${version}`), version };
}

/** Module files (relative to /lib/modules/<version>) in load order: each after everything it depends on. */
function moduleLoadOrder(moduleDir: string): string[] {
  const deps = new Map<string, string[]>();
  for (const line of fs.readFileSync(path.join(moduleDir, 'modules.dep'), 'utf8').split('\n')) {
    const [file, rest] = line.split(':');
    if (file && rest !== undefined) deps.set(file, rest.trim().split(/\s+/).filter(Boolean));
  }
  const nameOf = (file: string) => path.basename(file).replace(/\.ko(\.\w+)?$/, '');
  const byName = new Map([...deps.keys()].map((file) => [nameOf(file).replace(/-/g, '_'), file]));
  const order: string[] = [];
  const visit = (file: string) => {
    if (order.includes(file)) return;
    for (const dep of deps.get(file) ?? []) visit(dep);
    order.push(file);
  };
  for (const name of WANTED_MODULES) {
    const file = byName.get(name);
    // Built into the kernel (not in modules.dep, but in modules.builtin): nothing to load.
    if (!file) {
      const builtin = path.join(moduleDir, 'modules.builtin');
      if (fs.existsSync(builtin) && fs.readFileSync(builtin, 'utf8').includes(`/${name}.ko`)) continue;
      throw new Error(`kernel module ${name} not found in ${moduleDir}/modules.dep`);
    }
    visit(file);
  }
  return order;
}

/** A module's bytes, decompressed (Debian ships .ko.xz from trixie on; busybox insmod wants plain .ko). */
function moduleBytes(file: string): Buffer {
  if (file.endsWith('.ko')) return fs.readFileSync(file);
  if (file.endsWith('.ko.gz')) return zlib.gunzipSync(fs.readFileSync(file));
  if (file.endsWith('.ko.xz')) return execFileSync(BUSYBOX, ['xzcat', file], { maxBuffer: 64 << 20 });
  if (file.endsWith('.ko.zst')) return execFileSync('zstd', ['-dcq', file], { maxBuffer: 64 << 20 });
  throw new Error(`unknown module compression: ${file}`);
}

/** Fails clearly when /bin/busybox is a dynamic binary (the `busybox` package instead of `busybox-static`). */
function checkStaticBusybox(): Buffer {
  if (!fs.existsSync(BUSYBOX))
    throw new Error(`${BUSYBOX} missing: install the Debian package busybox-static`);
  const elf = fs.readFileSync(BUSYBOX);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const PT_INTERP = 3;
    if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP)
      throw new Error(`${BUSYBOX} is dynamically linked: the guest needs the Debian package busybox-static`);
  }
  return elf;
}

/** /init: busybox shell. Helpers for the test: put, get, guid (see the file's header). */
function initScript(modules: string[]): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "GUEST-INIT"
stty -echo
for m in ${modules.join(' ')}; do
  insmod /lib/modules/$m.ko || echo "GUEST-FAIL insmod $m"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/vda ] || { echo "GUEST-FAIL no /dev/vda"; cat /proc/partitions; }

# No temp files: the test runs commands while a background writer runs.
# put OFFSET TEXT: TEXT zero-padded to one 4 KiB block at byte OFFSET, O_DIRECT and flushed (acknowledged when it returns 0)
put() {
  printf '%s' "$2" |
    dd of=/dev/vda bs=4096 seek=$(($1 / 4096)) count=1 iflag=fullblock oflag=direct conv=sync,notrunc,fsync status=none
}
# get OFFSET LENGTH: the first LENGTH bytes (hex) of the 4 KiB block at OFFSET, read with O_DIRECT (never the page cache)
get() {
  local hex
  hex=$(set -o pipefail; dd if=/dev/vda bs=4096 skip=$(($1 / 4096)) count=1 iflag=direct status=none |
    od -An -tx1 -N"$2" | tr -d ' \\n') || return $?
  echo "DATA $hex"
}
# guid: the GPT disk GUID bytes of the primary header (LBA 1, bytes 56..71), as the guest's disk reads them
guid() {
  local hex
  hex=$(set -o pipefail; dd if=/dev/vda bs=512 skip=1 count=1 iflag=direct status=none |
    od -An -tx1 -j56 -N16 | tr -d ' \\n') || return $?
  echo "GUID $hex"
}

echo "GUEST-READY"
while IFS= read -r line; do
  id=\${line%% *}
  eval "\${line#* }"
  echo "GUEST-DONE $id $?"
done
poweroff -f
`;
}

/**
 * Under TCG the guest spends most of its boot decompressing the xz bzImage:
 * where the kernel has a PVH entry, QEMU boots the ELF vmlinux directly, so
 * it is unpacked here once (xz-utils: busybox's xz has no x86 BCJ filter).
 * Falls back to the bzImage (slower, same result) when that is not possible.
 */
function uncompressedKernel(bzImage: string, version: string, dir: string): string {
  const config = path.join('/boot', `config-${version}`);
  if (!fs.existsSync(config) || !/^CONFIG_PVH=y$/m.test(fs.readFileSync(config, 'utf8'))) return bzImage;
  const image = fs.readFileSync(bzImage);
  const setupSectors = image[0x1f1] || 4;
  const payloadStart = (setupSectors + 1) * 512 + image.readUInt32LE(0x248);
  const payloadLength = image.readUInt32LE(0x24c);
  const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
  if (!image.subarray(payloadStart, payloadStart + 6).equals(XZ_MAGIC)) return bzImage;
  try {
    // The payload ends with the 4-byte uncompressed size the kernel's decompressor appends.
    const vmlinux = execFileSync('xz', ['-dc'], {
      input: image.subarray(payloadStart, payloadStart + payloadLength - 4),
      maxBuffer: 512 << 20,
    });
    const file = path.join(dir, 'vmlinux');
    fs.writeFileSync(file, vmlinux);
    return file;
  } catch {
    return bzImage;
  }
}

let built: GuestBootFiles | null = null;

/** Builds the initramfs once per test run (in its own temp dir, removed when the process exits). */
export function guestBootFiles(): GuestBootFiles {
  if (built) return built;
  const { kernel, version } = findKernel();
  fs.accessSync(kernel, fs.constants.R_OK);
  const moduleDir = path.join('/lib/modules', version);
  const files = moduleLoadOrder(moduleDir);
  const modules = files.map((f) => path.basename(f).replace(/\.ko(\.\w+)?$/, ''));
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'tmp', 'lib', 'lib/modules'].map(
      (p): CpioEntry => ({ type: 'dir', path: p }),
    ),
    // The kernel opens /dev/console for /init before devtmpfs is mounted.
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'file', path: 'bin/busybox', data: checkStaticBusybox(), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'init', data: Buffer.from(initScript(modules)), mode: 0o755 },
    ...files.map(
      (f, i): CpioEntry => ({
        type: 'file',
        path: `lib/modules/${modules[i]}.ko`,
        data: moduleBytes(path.join(moduleDir, f)),
      }),
    ),
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapsync-guest-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const initramfs = path.join(dir, 'initramfs.cpio.gz');
  fs.writeFileSync(initramfs, zlib.gzipSync(cpioNewc(entries)));
  built = { kernel: uncompressedKernel(kernel, version, dir), initramfs, kernelVersion: version, modules };
  return built;
}
