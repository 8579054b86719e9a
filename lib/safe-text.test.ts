import { describe, expect, it } from 'vitest';
import { safeDeep, safeText } from './safe-text.ts';

describe('safeText: one sanitiser for every output channel', () => {
  it('shows control characters instead of obeying them: ESC sequences, OSC 52, BEL, C1 CSI', () => {
    expect(safeText('\x1b[2J\x1b[31mred\x1b[0m')).toBe('\\x1b[2J\\x1b[31mred\\x1b[0m');
    expect(safeText('\x1b]52;c;ZWNobyBwd25lZA==\x07')).toBe('\\x1b]52;c;ZWNobyBwd25lZA==\\x07');
    expect(safeText('a\u009b2Jb\u0085c\x7fd\x00e\x08f')).toBe('a\\x9b2Jb\\x85c\\x7fd\\x00e\\x08f');
    expect(safeText('tab\there')).toBe('tab here');
  });

  it('keeps a field on its line: CR, LF and the Unicode line separators are escaped', () => {
    const forged = 'ok\r\n[   0.1s] ready: PASS forged\rPASS\u2028x\u2029y';
    const t = safeText(forged);
    expect(t).toBe('ok\\r\\n[   0.1s] ready: PASS forged\\rPASS\\u2028x\\u2029y');
    expect(t.split(/\r|\n|\u2028|\u2029/)).toHaveLength(1);
  });

  it('neutralises a leading GitHub Actions workflow command (:: or ##[), after blanks too', () => {
    expect(safeText('::error::forged')).toBe('\\x3a:error::forged');
    expect(safeText('  ::add-mask::secret')).toBe('  \\x3a:add-mask::secret');
    expect(safeText('##[error]old syntax')).toBe('\\x23#[error]old syntax');
    // Inside a field, :: commands nothing (the runner reads only a line's start); IPv6 and C++ stay as they are.
    expect(safeText('at [::1]:80, std::string')).toBe('at [::1]:80, std::string');
    // A line break inside the field cannot start a new command line: it is escaped first.
    expect(safeText('x\n::error::y')).toBe('x\\n::error::y');
  });

  it('escapes bidirectional overrides (text that reads other than it is) and repairs lone surrogates', () => {
    expect(safeText('PASS\u202eLIAF')).toBe('PASS\\u202eLIAF');
    expect(safeText('a\u2066b\u2069c\u200fd')).toBe('a\\u2066b\\u2069c\\u200fd');
    expect(safeText('x\ud800y')).toBe('x\ufffdy');
  });

  it('leaves ordinary text alone and is idempotent', () => {
    const plain = 'GET /health/ready answered 200 {status: "ready"} in 3 ms — ✓ é 中文';
    expect(safeText(plain)).toBe(plain);
    for (const s of ['::error::x', '\x1b[31m\r\n', '##[x', '\u202e', ' \t::a']) expect(safeText(safeText(s))).toBe(safeText(s));
  });

  it('safeDeep: every string of a record, keys too; numbers and nulls as they are', () => {
    expect(safeDeep({ 'k\n': ['::x', 1, null, { e: '\x1b' }] })).toEqual({ 'k\\n': ['\\x3a:x', 1, null, { e: '\\x1b' }] });
  });
});
