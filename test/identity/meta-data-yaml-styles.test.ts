/**
 * A NoCloud meta-data's network-interfaces as PyYAML (cloud-init's loader) writes it, in whichever
 * style it picks (double-quoted with escapes and `\` line breaks, single-quoted, folded, literal),
 * holding values with any characters: after a sync, what PyYAML reads is production's ENI text with
 * staging's values, or, where production's style cannot hold staging's value, production's with a
 * warning.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import type { IdentityReport } from '../../agent/identity';
import { simulateSync } from './helpers/memory-view';
import { run } from './helpers/tools';

/** PyYAML, once for many documents: each [text, style, width] written as a meta-data's network-interfaces. */
const dump = (docs: Array<[string, string, number]>): string[] =>
  JSON.parse(
    run(
      'python3',
      [
        '-c',
        [
          'import json, sys, yaml',
          'class S(str): pass',
          'out = []',
          'for text, style, width in json.load(sys.stdin):',
          '    yaml.add_representer(S, lambda d, v, s=style: d.represent_scalar("tag:yaml.org,2002:str", v, style=s or None))',
          '    out.append(yaml.dump({"instance-id": "iid", "network-interfaces": S(text)}, width=width, sort_keys=False, allow_unicode=width > 30))',
          'print(json.dumps(out))',
        ].join('\n'),
      ],
      JSON.stringify(docs),
    ).stdout,
  );

/** What cloud-init reads as each document's network-interfaces. */
const load = (docs: string[]): string[] =>
  JSON.parse(
    run(
      'python3',
      [
        '-c',
        'import json, sys, yaml; print(json.dumps([yaml.safe_load(d)["network-interfaces"] for d in json.load(sys.stdin)]))',
      ],
      JSON.stringify(docs),
    ).stdout,
  );

/** ENI text; options at column 0 (valid ENI) let PyYAML write it single-quoted too. */
const eni = (address: string, search: string, indent: string) =>
  `auto eth0\niface eth0 inet static\n${indent}address ${address}\n${indent}dns-search ${search}\n${indent}mtu 9000\n`;

/** A value as the rest of an ENI line: no line break, nothing but text at either end. */
const value = fc
  .string({
    minLength: 1,
    maxLength: 30,
    unit: fc.constantFrom(...'ab.-:# \t"\'\\/é\u00a0\u0007'.split('')),
  })
  .map((v) => v.replace(/^[\s\u00a0]+|[\s\u00a0]+$/g, ''))
  .filter((v) => v !== '' && !v.startsWith('#'));
const style = fc.constantFrom('"', "'", '>', '|', '');

describe('identity: meta-data network-interfaces in any YAML style, with any characters', function () {
  this.timeout(120_000);

  it('reads back with PyYAML as staging’s values in production’s text', () => {
    const cases = fc.sample(
      fc.record({
        staging: value,
        production: value,
        stagingStyle: style,
        productionStyle: style,
        width: fc.constantFrom(20, 40, 80),
        indent: fc.constantFrom('', '  '),
      }),
      { numRuns: 120, seed: 42 },
    );
    const docs = dump(
      cases.flatMap(
        (c): Array<[string, string, number]> => [
          [eni('10.30.0.9/24', c.staging, c.indent), c.stagingStyle, c.width],
          [eni('10.20.0.9/24', c.production, c.indent), c.productionStyle, c.width],
        ],
      ),
    );
    const synced = cases.map((_, i) => {
      const { report, data } = simulateSync('file', Buffer.from(docs[2 * i]!), Buffer.from(docs[2 * i + 1]!));
      return { report, text: data.toString('utf8') };
    });
    const read = load(synced.map((s) => s.text));
    cases.forEach((c, i) => {
      const { report } = synced[i]!;
      const field = (f: string) => `cloudinit.network-interfaces.0.${f}`;
      const unwritable = report.warnings.some(
        (w) => w.path === field('dns-search') && w.code === 'IDENTITY_UNPARSABLE',
      );
      const context = `${JSON.stringify(c)}\n${synced[i]!.text}`;
      assert.equal(read[i], eni('10.30.0.9/24', unwritable ? c.production : c.staging, c.indent), context);
      assert.deepEqual(
        (report as IdentityReport).warnings.filter((w) => w.path !== field('dns-search')),
        [],
        context,
      );
    });
  });

  it('reports production’s value as PyYAML reads it: a no-break space after a `\\` line break is text', () => {
    const production = `network-interfaces: "iface eth0 inet static\\n  dns-search corp\\\n  \u00a0example\\n"\ninstance-id: iid\n`;
    const { report } = simulateSync(
      'file',
      Buffer.from(dump([[eni('10.30.0.9/24', 'stg', '  '), '"', 80]])[0]!),
      Buffer.from(production),
    );
    const search = report.fields.find((f) => f.path === 'cloudinit.network-interfaces.0.dns-search');
    assert.equal(search?.sourceValue, load([production])[0]!.split('dns-search ')[1]!.trimEnd());
    assert.equal(search?.sourceValue, 'corp\u00a0example');
  });
});
