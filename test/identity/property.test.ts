/**
 * Property tests: random identity values and random surrounding content, in
 * every format; the restored target always holds and reports its own values,
 * every other byte is the source's, and (for disk labels) no block is written
 * that did not need to change. The files and labels are built here, by the
 * test's own encoders, not by the profiles'.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { Pool } from '../../agent/engine';
import {
  crc32,
  createIdentityHooks,
  guidFromString,
  type IdentityReport,
  type Preserve,
} from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { simulateSync } from './helpers/memory-view';
import { addConfig, readText } from './helpers/pool';

type Report = IdentityReport;
const field = (r: Report, p: string) => r.fields.find((f) => f.path === p);

/** Each field: the target's value must be reported and `restored` exactly when the source's differs. */
function assertKept(report: Report, expected: Record<string, { target: string; source: string }>) {
  for (const [p, { target, source }] of Object.entries(expected)) {
    const f = field(report, p);
    assert.ok(f, `${p} is reported`);
    assert.equal(f.value, target, p);
    assert.equal(f.status, target === source ? 'unchanged' : 'restored', p);
    if (target !== source) assert.equal(f.sourceValue, source);
  }
}

const text = fc.string({
  minLength: 1,
  maxLength: 24,
  unit: fc.constantFrom(...'abcXYZ019 .:-_"|#&<>\'/é'.split('')),
});
const mac = fc
  .array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })
  .map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
/** A group address (the low bit of the first octet): no NIC's, so no fresh value is made for it. */
const multicast = (m: string) => (Number.parseInt(m.slice(0, 2), 16) & 1) === 1;
const vmxLine = fc
  .tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,8}\.[a-z]{1,8}$/), text)
  .filter(([k]) => !/^(ethernet|uuid|vc|guestinfo|displayname)/i.test(k));

describe('identity: properties', function () {
  this.timeout(120_000);
  after(cleanupTempDirs);

  it('vmx: random values (with characters that need |XX escapes) and random other lines', () => {
    const esc = (v: string) => v.replace(/\|/g, '|7C').replace(/"/g, '|22');
    const make = (v: { name: string; bios: string; mac: string }, lines: Array<[string, string]>) =>
      [
        '.encoding = "UTF-8"',
        `displayName = "${esc(v.name)}"`,
        ...lines.map(([k, x]) => `${k} = "${esc(x)}"`),
        `uuid.bios = "${esc(v.bios)}"`,
        `ethernet0.generatedAddress = "${v.mac}"`,
        '',
      ].join('\n');
    const values = fc.record({ name: text, bios: text, mac });
    fc.assert(
      fc.property(values, values, fc.array(vmxLine, { maxLength: 40 }), (t, s, lines) => {
        const { report, data } = simulateSync('file', Buffer.from(make(t, [])), Buffer.from(make(s, lines)));
        assert.equal(data.toString('utf8'), make(t, lines));
        assertKept(report, {
          displayName: { target: t.name, source: s.name },
          'uuid.bios': { target: t.bios, source: s.bios },
          'ethernet0.generatedAddress': { target: t.mac, source: s.mac },
        });
        assert.deepEqual(report.warnings, []);
      }),
      { numRuns: 150 },
    );
  });

  it('libvirt XML: random names (escaped), random interface counts on either side', () => {
    const esc = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const make = (v: { name: string; macs: string[] }, title: string) =>
      `<domain type='kvm'>\n  <name>${esc(v.name)}</name>\n  <title>${esc(title)}</title>\n  <devices>\n${v.macs
        .map(
          (m) =>
            `    <interface type='network'>\n      <mac address='${m}'/>\n      <source network='default'/>\n    </interface>\n`,
        )
        .join('')}  </devices>\n</domain>\n`;
    const values = fc.record({ name: text, macs: fc.array(mac, { minLength: 1, maxLength: 4 }) });
    fc.assert(
      fc.property(values, values, text, (t, s, title) => {
        const { report, data } = simulateSync(
          'file',
          Buffer.from(make(t, 'staging')),
          Buffer.from(make(s, title)),
        );
        // Interfaces only the source has get fresh MACs in its OUI (a multicast one, which no NIC has, stays).
        const made = s.macs.slice(t.macs.length).map((m, j) => {
          const p = `libvirt.interface${t.macs.length + j}.mac`;
          const f = field(report, p);
          if (multicast(m)) {
            assert.equal(f, undefined, p);
            return m;
          }
          assert.equal(f?.status, 'generated', p);
          assert.equal(f!.sourceValue, m);
          assert.equal(f!.value.slice(0, 9), m.slice(0, 9), 'the OUI is kept');
          assert.match(f!.value, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
          assert.ok(f!.value !== m && !t.macs.includes(f!.value), `${f!.value} is new`);
          return f!.value;
        });
        const kept = [...t.macs.slice(0, s.macs.length), ...made];
        assert.equal(data.toString('utf8'), make({ name: t.name, macs: kept }, title));
        const expected: Record<string, { target: string; source: string }> = {
          'libvirt.name': { target: t.name, source: s.name },
        };
        for (let i = 0; i < Math.min(t.macs.length, s.macs.length); i++) {
          expected[`libvirt.interface${i}.mac`] = { target: t.macs[i]!, source: s.macs[i]! };
        }
        assertKept(report, expected);
        // Interfaces only the target has: theirs cannot be kept. The source's extra ones are on the
        // network the target uses too, so their references map to themselves.
        const codes = report.warnings.map((w) => `${w.path} ${w.code}`).sort();
        const want = [
          ...t.macs
            .slice(s.macs.length)
            .map((_, j) => `libvirt.interface${s.macs.length + j}.mac IDENTITY_FIELD_MISSING`),
          ...s.macs
            .slice(t.macs.length)
            .flatMap((m, j) =>
              multicast(m) ? [`libvirt.interface${t.macs.length + j}.mac IDENTITY_FROM_SOURCE`] : [],
            ),
        ].sort();
        assert.deepEqual(codes, want);
      }),
      { numRuns: 150 },
    );
  });

  it("cloud-init: the target's scalars in any quoting style, comments and other keys around them", () => {
    const styles = ['plain', 'single', 'double'] as const;
    const token = (v: string, style: (typeof styles)[number]) =>
      style === 'single' ? `'${v.replace(/'/g, "''")}'` : style === 'double' ? JSON.stringify(v) : v;
    const plain = fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/);
    const scalar = fc.oneof(
      plain.map((v) => ({ v, t: token(v, 'plain') })),
      fc
        .tuple(text, fc.constantFrom('single', 'double') as fc.Arbitrary<'single' | 'double'>)
        .map(([v, s]) => ({ v, t: token(v, s) })),
    );
    const make = (iid: string, host: string, comment: string, extra: string[]) =>
      `# ${comment}\ninstance-id: ${iid}\n${extra.map((e) => `${e}\n`).join('')}local-hostname: ${host} # set by the seed tool\n`;
    fc.assert(
      fc.property(
        scalar,
        scalar,
        scalar,
        scalar,
        plain,
        fc.array(plain, { maxLength: 5 }),
        (ti, th, si, sh, comment, extra) => {
          const lines = extra.map((k) => `${k}-x: ${k}`);
          const { report, data } = simulateSync(
            'file',
            Buffer.from(make(ti.t, th.t, 'stg', [])),
            Buffer.from(make(si.t, sh.t, comment, lines)),
          );
          // An equal value is left as the source wrote it (no write), quoting included.
          const kept = (t: { v: string; t: string }, s: { v: string; t: string }) =>
            t.v === s.v ? s.t : t.t;
          assert.equal(data.toString('utf8'), make(kept(ti, si), kept(th, sh), comment, lines));
          assertKept(report, {
            'cloudinit.instance-id': { target: ti.v, source: si.v },
            'cloudinit.local-hostname': { target: th.v, source: sh.v },
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('GPT (512 and 4096-byte sectors): GUIDs kept as asked, every CRC valid, other bytes and blocks untouched', () => {
    /** A GPT disk built from the UEFI layout by hand, with `fill` repeated over the data area. */
    function build(
      sector: number,
      lbas: number,
      entries: number,
      disk: string,
      parts: string[],
      fill: Uint8Array,
    ): Buffer {
      const image = Buffer.alloc(sector * lbas);
      for (let at = 64 * 1024; at < image.length - 64 * 1024 && fill.length > 0; at += fill.length)
        image.set(fill.subarray(0, Math.min(fill.length, image.length - 64 * 1024 - at)), at);
      image[510] = 0x55;
      image[511] = 0xaa;
      image[450] = 0xee; // protective partition type
      const array = Buffer.alloc(entries * 128);
      parts.forEach((g, i) => {
        guidFromString('0FC63DAF-8483-4772-8E79-3D69D8477DE4').copy(array, i * 128);
        guidFromString(g).copy(array, i * 128 + 16);
      });
      const arrayLbas = Math.ceil(array.length / sector);
      const header = (lba: number, alternate: number, entriesLba: number) => {
        const h = Buffer.alloc(92);
        h.write('EFI PART', 0, 'latin1');
        h.writeUInt32LE(0x00010000, 8);
        h.writeUInt32LE(92, 12);
        h.writeBigUInt64LE(BigInt(lba), 24);
        h.writeBigUInt64LE(BigInt(alternate), 32);
        h.writeBigUInt64LE(BigInt(2 + arrayLbas), 40);
        h.writeBigUInt64LE(BigInt(lbas - 2 - arrayLbas), 48);
        guidFromString(disk).copy(h, 56);
        h.writeBigUInt64LE(BigInt(entriesLba), 72);
        h.writeUInt32LE(entries, 80);
        h.writeUInt32LE(128, 84);
        h.writeUInt32LE(crc32(array), 88);
        h.writeUInt32LE(crc32(h), 16);
        return h;
      };
      header(1, lbas - 1, 2).copy(image, sector);
      array.copy(image, 2 * sector);
      array.copy(image, (lbas - 1 - arrayLbas) * sector);
      header(lbas - 1, 1, lbas - 1 - arrayLbas).copy(image, (lbas - 1) * sector);
      return image;
    }
    const guid = fc.uuid().map((u) => u.toUpperCase());
    const preserve = fc.constantFrom<Preserve>(
      'default',
      'none',
      ['*'],
      ['gpt.diskGuid'],
      ['gpt.partition*'],
    );
    fc.assert(
      fc.property(
        fc.constantFrom(512, 4096),
        fc.integer({ min: 40, max: 120 }),
        fc.constantFrom(128, 64, 256),
        fc.record({ disk: guid, parts: fc.array(guid, { minLength: 1, maxLength: 4 }) }),
        fc.record({ disk: guid, parts: fc.array(guid, { minLength: 1, maxLength: 4 }) }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        preserve,
        (sector, kib, entries, t, s, fill, keep) => {
          const lbas = Math.floor((kib * 4096 + 256 * 1024) / sector);
          const source = build(sector, lbas, entries, s.disk, s.parts, fill);
          const { report, data, view } = simulateSync(
            'vdisk',
            build(sector, lbas, entries, t.disk, t.parts.slice(), new Uint8Array()),
            source,
            keep,
          );
          const keepDisk =
            keep === 'default' || (Array.isArray(keep) && (keep[0] === '*' || keep[0] === 'gpt.diskGuid'));
          const keepParts = Array.isArray(keep) && (keep[0] === '*' || keep[0] === 'gpt.partition*');
          const wantParts = s.parts.map((g, i) => (keepParts && i < t.parts.length ? t.parts[i]! : g));
          const expected = build(sector, lbas, entries, keepDisk ? t.disk : s.disk, wantParts, fill);
          assert.ok(
            data.equals(expected),
            'the source disk with exactly the kept GUIDs, every CRC recomputed',
          );
          if (keepDisk) assertKept(report, { 'gpt.diskGuid': { target: t.disk, source: s.disk } });
          if (keepParts) {
            t.parts.slice(0, s.parts.length).forEach((g, i) => {
              assertKept(report, {
                [`gpt.partition${i + 1}.uniqueGuid`]: { target: g, source: s.parts[i]! },
              });
            });
          }
          // Minimal: the blocks written are exactly the blocks whose bytes had to change.
          const changed = new Set<number>();
          for (let i = 0; i < source.length; i++)
            if (source[i] !== data[i]) changed.add(Math.floor(i / 4096));
          assert.equal(view.blocksWritten(), changed.size);
          assert.equal(report.blocksWritten, changed.size);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('through a real pool: a VM config of random values and lines syncs and reports its own values', () => {
    const esc = (v: string) => v.replace(/\|/g, '|7C').replace(/"/g, '|22');
    const make = (v: { name: string; mac: string }, lines: Array<[string, string]>) =>
      [
        'config.version = "8"',
        `displayName = "${esc(v.name)}"`,
        ...lines.map(([k, x]) => `${k} = "${esc(x)}"`),
        `ethernet1.address = "${v.mac}"`,
        '',
      ].join('\n');
    const values = fc.record({ name: text, mac });
    fc.assert(
      fc.property(values, values, fc.array(vmxLine, { maxLength: 300 }), (t, s, lines) => {
        const pool = Pool.create(tempDir(), { blockSize: 4096 });
        try {
          for (const [vm, v, l] of [
            ['prod', s, lines],
            ['stg', t, []],
          ] as const) {
            pool.createContainer({ name: vm, type: 'vm' });
            addConfig(pool, vm, 'config', make(v, [...l]));
          }
          pool.snapshot('prod', 'n');
          const report = pool.sync('stg', 'prod@n', { hooks: createIdentityHooks() }).identity as Report;
          assert.equal(readText(pool, 'stg-config'), make(t, [...lines]));
          assertKept(report, {
            'config.displayName': { target: t.name, source: s.name },
            'config.ethernet1.address': { target: t.mac, source: s.mac },
          });
        } finally {
          void pool.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});
