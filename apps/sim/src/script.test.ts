import { parseInfoTlb } from '@vmkit/paging-x86_64';
import { describe, expect, it } from 'vitest';
import { expectNoLeak, PERSONALITIES, testKernel } from '../test/helpers.js';
import { parseScript, ScriptProgram } from './script.js';

async function runScript(text: string, personality = PERSONALITIES[0]!): Promise<string[]> {
  const k = testKernel(personality);
  k.files.create('/data/f', new TextEncoder().encode('hello, file'));
  k.spawn(ScriptProgram.parse('t', text));
  await k.run();
  expectNoLeak(k);
  return k.output;
}

describe('script parser', () => {
  it.each([
    ['frob 1', /line 1: unknown command 'frob'/],
    ['\n\nmmap - 0x1000 rwz private,anon', /line 3: protection 'rwz'/],
    ['touch 0x1000 q', /line 1: access 'q' is not r, w or x/],
    ['munmap 0x1000', /line 1: munmap takes 2 argument/],
    ['write 0x1000 abc', /line 1: bytes 'abc' are not hex pairs/],
    ['mmap 0xZZ 0x1000 rw- private', /line 1: address '0xZZ' is not a number/],
    ['mmap - 0x1000 rw- private,bogus', /line 1: unknown mmap flag 'bogus'/],
    ['sleep soon', /line 1: duration 'soon'/],
  ])('rejects %j naming the line', (text, re) => {
    expect(() => parseScript(text)).toThrow(re);
    expect(() => parseScript(text)).toThrow(/E_SCRIPT/);
  });

  it('accepts comments, blank lines, names and prefixes', () => {
    const lines = parseScript('# hi\n\nbuf = mmap - 4096 rw- private,anon  # trailing\nchild: exit 3\n');
    expect(lines.map((l) => [l.no, l.cmd, l.assign, l.side])).toEqual([
      [3, 'mmap', 'buf', 'both'],
      [4, 'exit', undefined, 'child'],
    ]);
  });
});

describe.each(PERSONALITIES.map((p) => [p.name, p] as const))('scripts (%s)', (_n, personality) => {
  it('prints page tables in the formats of @vmkit/paging-x86_64 (info tlb, re-parsed)', async () => {
    const out = await runScript(
      'a = mmap 0x30000000 0x3000 rw- private,anon\ntouch a w 0x2000\nmprotect a+0x1000 0x1000 r--\ntouch a r 0x2000\ntables tlb\ntables mem\n',
      personality,
    );
    const tlb = parseInfoTlb(out.filter((l) => /^[0-9a-f]{16}: /.test(l)).join('\n'));
    const user = tlb.filter((e) => e.va < 2 ** 47);
    expect(user.map((e) => [e.va.toString(16), e.flags.user, e.flags.writable])).toEqual([
      ['30000000', true, true],
      ['30001000', true, false],
    ]);
    // info mem: the kernel's direct map (supervisor) and the two user pages with their rights.
    expect(out.filter((l) => /^0000000030[0-9a-f]{6}-/.test(l))).toEqual([
      '0000000030000000-0000000030001000 0000000000001000 urw-',
      '0000000030001000-0000000030002000 0000000000001000 ur--',
    ]);
  });

  it('maps, writes, reads, protects, reports errors by line, forks', async () => {
    const out = await runScript(
      `
buf = mmap 0x10000000 0x4000 rw- private,anon
write buf+0x10 "hi there"
read buf+0x10 8
mprotect buf 0x1000 r--
munmap buf+0x3000 0x1000
mmap buf 0x1000 rw- private,anon,noreplace
f = mmap - 0x2000 r-- shared /data/f
read f 5
maps
pid = fork
child: write buf+0x1000 ff
child: read buf+0x1000 1
child: exit 3
parent: wait
parent: read buf+0x1000 1
touch buf w
log unreachable
`,
      personality,
    );
    expect(out).toEqual([
      '[1] read buf+0x10: 6869207468657265',
      '[1] line 7: mmap: EEXIST',
      '[1] read f: 68656c6c6f',
      '10000000-10001000 r--p 00000000 00:00 0 ',
      '10001000-10003000 rw-p 00000000 00:00 0 ',
      `${'7effffffe000-7f0000000000 r--s 00000000 08:01 2'.padEnd(73)}/data/f`,
      '[2] read buf+0x1000: ff',
      '[1] read buf+0x1000: 00',
      'pid 1 (t): segmentation fault at 0x10000000',
    ]);
  });
});
