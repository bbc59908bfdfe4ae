/**
 * The CLI's text output: a value read from a config or a label (a decoded
 * `.vmx` `|0A`, a hostile name holding escape sequences) is printed escaped,
 * so a table keeps one line per row and nothing reaches the terminal as a
 * control sequence.
 */
import * as assert from 'node:assert/strict';
import { printable, table } from '../../agent/cli/context';

describe('cli: text output', () => {
  it('a table cell holding a line break or an escape sequence stays on its row, escaped', () => {
    const text = table(
      ['FIELD', 'VALUE'],
      [
        ['config.guestinfo.motd', 'line one\nline two'],
        ['name', '\x1b[2Jprod\r'],
      ],
    );
    assert.deepEqual(text.split('\n'), [
      'FIELD                  VALUE',
      'config.guestinfo.motd  line one\\nline two',
      'name                   \\x1b[2Jprod\\r',
    ]);
    assert.ok(!text.includes('\x1b'), 'no escape character printed');
  });

  it('printable leaves ordinary text, UTF-8 included, unchanged', () => {
    assert.equal(printable('prod-web 10.0.0.1/24 «ü»'), 'prod-web 10.0.0.1/24 «ü»');
    assert.equal(printable('a\tb\x7f'), 'a\\tb\\x7f');
  });
});
