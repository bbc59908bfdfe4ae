/**
 * Per-client export lists. The access file names, per authenticated client,
 * the exports it may list and open:
 *
 *     # client          exports (names or patterns: * any characters, ? one)
 *     cn:hv1.example    vm-web vm-web@*
 *     psk:backup        *@*
 *
 * `cn:NAME` is the common name of a client certificate the CA verified,
 * `psk:NAME` a TLS-PSK identity. An export a client may not open does not
 * exist for it: absent from NBD_OPT_LIST, NBD_REP_ERR_UNKNOWN at
 * NBD_OPT_INFO/GO and META_CONTEXT, the connection dropped at EXPORT_NAME,
 * exactly as for a name that exists nowhere (no probing for names).
 */
import * as fs from 'node:fs';
import type { NbdExports } from './backend';
import { NbdError } from './errors';

const CLIENT = /^(cn|psk):\S+$/;

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 's');
}

export class NbdAccessList {
  private constructor(private readonly rules: ReadonlyMap<string, RegExp[]>) {}

  static parse(text: string, source = 'access file'): NbdAccessList {
    const rules = new Map<string, RegExp[]>();
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') return;
      const [client, ...patterns] = line.split(/\s+/);
      if (!CLIENT.test(client!))
        throw new NbdError(
          'INVALID_ACCESS_FILE',
          `${source} line ${i + 1}: "${client}" is not cn:NAME or psk:NAME`,
        );
      if (patterns.length === 0)
        throw new NbdError('INVALID_ACCESS_FILE', `${source} line ${i + 1}: ${client} lists no exports`);
      rules.set(client!, [...(rules.get(client!) ?? []), ...patterns.map(globToRegExp)]);
    });
    return new NbdAccessList(rules);
  }

  static load(file: string): NbdAccessList {
    return NbdAccessList.parse(fs.readFileSync(file, 'utf8'), file);
  }

  /** Whether client `identity` (`cn:…`/`psk:…`, null: unauthenticated) may list and open `exportName`. */
  allows(identity: string | null, exportName: string): boolean {
    if (identity === null) return false;
    return (this.rules.get(identity) ?? []).some((re) => re.test(exportName));
  }

  /** Clients named in the file (for the startup log). */
  clients(): string[] {
    return [...this.rules.keys()];
  }
}

/** `exports` as one client sees it: only the names `visible` admits exist. */
export function restrictExports(exports: NbdExports, visible: (name: string) => boolean): NbdExports {
  return {
    list: () => exports.list().filter((e) => visible(e.name)),
    describe: (name, client) => (visible(name) ? exports.describe(name, client) : null),
    open: (name, client) => (visible(name) ? exports.open(name, client) : null),
  };
}
