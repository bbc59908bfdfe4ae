/**
 * Property: random configs in each format with random reference sets on
 * either side. After a sync, the references in the file are exactly the
 * target's at the paths both have (byte for byte) plus the mapped ones
 * (referenceMap) at paths only the source has, and no source value is left
 * anywhere; without a mapping such a sync is refused. A .vmx NIC's backing
 * keys are one unit: where the target backs that NIC at all, the result has
 * exactly the target's backing keys.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { detectFormat, parseConfig } from '../../agent/identity';
import { simulateSync } from './helpers/memory-view';

/** References of a config: path → [exact text, decoded value]. */
function refs(text: string): Map<string, { text: string; value: string }> {
  const parsed = parseConfig(detectFormat(text)!, text);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  return new Map(
    parsed.spans
      .filter((s) => s.reference)
      .map((s) => [s.field, { text: text.slice(s.start, s.end), value: s.value.value }]),
  );
}

/** A name; never one holding the prefixes the checks look for (a disk named "srcx" is no source value left). */
const token = fc.stringMatching(/^[a-z0-9]{1,8}$/).filter((t) => !/srcx|tgtx|mapx/.test(t));
const eol = fc.constantFrom('\n', '\r\n');

/** Runs the sync; when the source has references the target lacks, first without a map (refused), then with one. */
function check(
  target: string,
  source: string,
  sourceOnly: Map<string, string>,
  expected: (out: string) => void,
): void {
  const referenceMap = Object.fromEntries([...sourceOnly].map(([from, to]) => [from, to]));
  if (sourceOnly.size > 0) {
    assert.throws(() => simulateSync('file', Buffer.from(target), Buffer.from(source)), {
      code: 'IDENTITY_REFERENCE_UNMAPPED',
    });
  }
  const { data, report } = simulateSync(
    'file',
    Buffer.from(target),
    Buffer.from(source),
    'default',
    {},
    {
      referenceMap,
    },
  );
  const out = data.toString('utf8');
  assert.ok(!out.includes('srcx'), `no source value left:\n${out}`);
  const mapped = report.references.filter((r) => r.status === 'mapped');
  for (const r of mapped) assert.ok(!r.value.includes('srcx'), `${r.path} = ${r.value}`);
  for (const [from, to] of sourceOnly)
    assert.ok(
      mapped.some((r) => r.sourceValue.includes(from) && r.value.includes(to)),
      `${from} mapped`,
    );
  expected(out);
}

describe('identity: references, properties', function () {
  this.timeout(120_000);

  it('vmx: random disks, CD images, NICs and files on either side, keys in any case, CRLF or LF', () => {
    const PATHS = [
      'scsi0:0.fileName',
      'scsi0:1.fileName',
      'sata0:0.fileName',
      'nvme0:0.fileName',
      'ide1:0.fileName',
      'ethernet0.networkName',
      'ethernet1.networkName',
      'ethernet1.vnet',
      'ethernet2.dvs.portgroupId',
      'serial0.fileName',
      'nvram',
      'sched.swap.derivedName',
      'migrate.hostLog',
    ];
    const side = fc.dictionary(fc.constantFrom(...PATHS), token, { maxKeys: PATHS.length });
    fc.assert(
      fc.property(side, side, fc.boolean(), eol, (t, s, upper, nl) => {
        const make = (values: Record<string, string>, prefix: string) =>
          [
            '.encoding = "UTF-8"',
            'config.version = "8"',
            'memSize = "4096"',
            ...PATHS.filter((p) => values[p] !== undefined).map(
              (p) => `${upper ? p.toUpperCase() : p} = "${prefix}${PATHS.indexOf(p)}-${values[p]}.img"`,
            ),
            '',
          ].join(nl);
        const target = make(t, 'tgtx');
        const source = make(s, 'srcx');
        const sourceRefs = refs(source);
        const targetRefs = refs(target);
        // A NIC's backing keys are one unit: a NIC the target backs at all gets the target's whole set.
        // ESXi's runtime files are one unit too, never mapped: the target's own, or none.
        const runtime = (p: string) => p === 'sched.swap.derivedName' || p === 'migrate.hostLog';
        const unit = (p: string) =>
          p.startsWith('ethernet') ? p.slice(0, p.indexOf('.')) : runtime(p) ? 'runtime' : null;
        const targetUnits = new Set([...targetRefs.keys()].map(unit));
        const sourceUnits = new Set([...sourceRefs.keys()].map(unit));
        const targetsUnit = (p: string) => unit(p) !== null && targetUnits.has(unit(p));
        const sourceOnly = new Map(
          [...sourceRefs]
            .filter(([p]) => !targetRefs.has(p) && !targetsUnit(p) && !runtime(p))
            .map(([, r]) => [r.value, r.value.replaceAll('srcx', 'mapx')]),
        );
        const expected = [
          ...[...sourceRefs.keys()].filter((p) => targetRefs.has(p) || (!targetsUnit(p) && !runtime(p))),
          ...[...targetRefs.keys()].filter(
            (p) =>
              !sourceRefs.has(p) &&
              unit(p) !== null &&
              // a unit the source lacks goes after the source's last reference line (none: nowhere)
              (sourceUnits.has(unit(p)) || (runtime(p) && sourceRefs.size > 0)),
          ),
        ];
        check(target, source, sourceOnly, (out) => {
          const now = refs(out);
          assert.deepEqual([...now.keys()].sort(), expected.sort());
          for (const [p, r] of now) {
            if (targetRefs.has(p)) assert.equal(r.text, targetRefs.get(p)!.text, p);
            else assert.equal(r.value, sourceOnly.get(sourceRefs.get(p)!.value), p);
          }
        });
      }),
      { numRuns: 150 },
    );
  });

  it('libvirt: random file-, NBD- and volume-backed disks and network/bridge interfaces on either side', () => {
    const DEVS = ['vda', 'vdb', 'vdc', 'sda'];
    const disk = fc.record({ kind: fc.constantFrom('file', 'network', 'volume'), name: token });
    const side = fc.record({
      disks: fc.dictionary(fc.constantFrom(...DEVS), disk, { maxKeys: DEVS.length }),
      nics: fc.array(fc.record({ kind: fc.constantFrom('network', 'bridge'), name: token }), {
        maxLength: 3,
      }),
    });
    const source = (kind: string, name: string) =>
      kind === 'file'
        ? `<source file='/var/lib/libvirt/images/${name}.qcow2'/>`
        : kind === 'network'
          ? `<source protocol='nbd' name='${name}'>\n        <host name='nbd.internal' port='10809'/>\n      </source>`
          : `<source pool='${name}-pool' volume='${name}-vol'/>`;
    fc.assert(
      fc.property(side, side, eol, (t, s, nl) => {
        const make = (v: typeof t, prefix: string) =>
          `<domain type='kvm'>\n  <name>${prefix}vm</name>\n  <devices>\n${DEVS.filter((d) => v.disks[d])
            .map((d) => {
              const { kind, name } = v.disks[d]!;
              return `    <disk type='${kind}' device='disk'>\n      <driver name='qemu' type='${kind === 'file' ? 'qcow2' : 'raw'}'/>\n      ${source(kind, `${prefix}${name}`)}\n      <target dev='${d}' bus='virtio'/>\n    </disk>\n`;
            })
            .join('')}${v.nics
            .map(
              (n, i) =>
                `    <interface type='${n.kind}'>\n      <mac address='52:54:00:00:00:0${i}'/>\n      <source ${n.kind}='${prefix}${n.name}${i}'/>\n    </interface>\n`,
            )
            .join('')}  </devices>\n</domain>\n`.replace(/\n/g, nl);
        const target = make(t, 'tgtx');
        const src = make(s, 'srcx');
        const sourceRefs = refs(src);
        const targetRefs = refs(target);
        const sourceOnly = new Map<string, string>();
        const parsed = parseConfig('libvirt', src);
        assert.ok(parsed.ok);
        for (const span of parsed.spans) {
          if (!span.reference || targetRefs.has(span.field)) continue;
          // The NBD server's host is the same for both: the caller maps it to itself when the target has no NBD disk.
          for (const n of span.reference.names) sourceOnly.set(n, n.replaceAll('srcx', 'mapx'));
        }
        check(target, src, sourceOnly, (out) => {
          const now = refs(out);
          assert.deepEqual([...now.keys()].sort(), [...sourceRefs.keys()].sort());
          for (const [p, r] of now) {
            if (targetRefs.has(p))
              assert.equal(r.text.replace(/\r/g, ''), targetRefs.get(p)!.text.replace(/\r/g, ''), p);
            else {
              assert.ok(!r.text.includes('srcx'), `${p}: ${r.text}`);
              assert.equal(r.text.includes('mapx'), sourceRefs.get(p)!.text.includes('srcx'), `${p} mapped`);
            }
          }
          assert.ok(!/[^\r]\n/.test(out) || nl === '\n', 'the line endings are the synced file’s');
        });
      }),
      { numRuns: 150 },
    );
  });

  it("network-config v2: the target's addresses, gateways, MACs and names at every interface both have", () => {
    const nic = fc.record({ mac: fc.stringMatching(/^[0-9a-f]{2}$/), ip: fc.integer({ min: 2, max: 250 }) });
    fc.assert(
      fc.property(
        fc.array(nic, { minLength: 1, maxLength: 3 }),
        fc.array(nic, { minLength: 1, maxLength: 3 }),
        (t, s) => {
          const make = (v: typeof t, net: number, name: string) =>
            `network:\n  version: 2\n  ethernets:\n${v
              .map(
                (n, i) =>
                  `    ${name}${i}:\n      match:\n        macaddress: "52:54:00:00:${net}${i}:${n.mac}"\n      set-name: ${name}${i}\n      addresses:\n        - 10.${net}.${i}.${n.ip}/24\n      routes:\n        - to: default\n          via: 10.${net}.${i}.1\n      mtu: ${net === 30 ? 1500 : 9000}\n`,
              )
              .join('')}`;
          const target = make(t, 30, 'eth');
          const { data, report } = simulateSync('file', Buffer.from(target), Buffer.from(make(s, 20, 'ens')));
          const out = data.toString('utf8');
          const both = Math.min(t.length, s.length);
          assert.equal(
            out,
            make(t.slice(0, both), 30, 'eth').replace(/mtu: 1500/g, 'mtu: 9000') +
              make(s, 20, 'ens')
                .split(/\n(?= {4}ens\d+:)/)
                .slice(1 + both)
                .map((x) => `${x}\n`)
                .join('')
                .replace(/\n\n$/, '\n'),
          );
          assert.equal(
            report.warnings.filter((w) => w.code === 'IDENTITY_FROM_SOURCE').length > 0,
            s.length > t.length,
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});
