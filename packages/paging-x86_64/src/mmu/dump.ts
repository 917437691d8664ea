/**
 * Page-table dumps in the formats QEMU's monitor prints for x86-64 guests, and parsers for two of them
 * (so tests can check that a dump says exactly what the tables say):
 *
 * - `info tlb`: one line per present leaf, `VVVVVVVVVVVVVVVV: PPPPPPPPPPPPPPPP XGPDACTUW` — the
 *   canonical virtual address, the physical base, and the leaf's own bits: X = XD, G = global,
 *   P = PS (large page), D = dirty, A = accessed, C = PCD, T = PWT, U = user, W = writable;
 * - `info mem`: runs of contiguous virtual memory with equal effective permissions,
 *   `start-end size urwx` (R/W and U/S ANDed over all levels). QEMU prints `urw`; we add the `x`
 *   column (no XD at any level, or EFER.NXE = 0);
 * - `info pg` (QEMU 9.x): the tree, one line per present PML4E/PDPTE/PDE and one per run of
 *   consecutive leaves with equal attributes and contiguous frames, with page-number ranges, the
 *   entry indexes, flags `XGSDACTUWP` and the 4 KiB physical page numbers.
 *
 * Reserved bits are not checked here (the dump shows the bytes); use `Mmu.probe` for the
 * architectural meaning of one address.
 *
 * @module
 */
import { describeValue, fail, type PhysAddr, parseVirtAddr, type VirtAddr } from '@vmkit/addr';
import type { PhysicalMemory } from '../physical-memory.js';
import { PTE_A, PTE_D, PTE_G, PTE_P, PTE_PCD, PTE_PS, PTE_PWT, PTE_RW, PTE_US } from '../pte.js';
import { entryTarget, forEachLeaf, isLeafEntry, LEVEL_SPAN, readEntry } from './leaves.js';

const HIGHER_HALF = 0x8000_0000_0000;
const SPACE_END = 0x1_0000_0000_0000;

/** The bits an `info tlb` line shows. */
export interface InfoTlbFlags {
  xd: boolean;
  global: boolean;
  /** PS: a 2 MiB or 1 GiB leaf. */
  large: boolean;
  dirty: boolean;
  accessed: boolean;
  cacheDisable: boolean;
  writeThrough: boolean;
  user: boolean;
  writable: boolean;
}

/** One parsed `info tlb` line. */
export interface InfoTlbLine {
  va: VirtAddr;
  pa: PhysAddr;
  flags: InfoTlbFlags;
}

/** One parsed `info mem` line. */
export interface InfoMemLine {
  start: VirtAddr;
  /** Exclusive end as a VirtAddr-style Number (may be 2^47 or 2^48). */
  end: number;
  size: number;
  user: boolean;
  writable: boolean;
  /** The `x` column; absent when the line has none (QEMU's own `info mem` prints `urw` only). */
  executable?: boolean;
}

/** Options of {@link formatInfoMem}. */
export interface InfoMemOptions {
  /** EFER.NXE: when false every page is executable (default true). */
  nxe?: boolean;
}

/** A 64-bit canonical rendering of a 48-bit VirtAddr-style number, 16 hex digits (mod 2^64 at the top). */
function canon16(v: number): string {
  const x = v % SPACE_END;
  return x >= HIGHER_HALF ? `ffff${x.toString(16).padStart(12, '0')}` : x.toString(16).padStart(16, '0');
}

function hex(n: number, w: number): string {
  return n.toString(16).padStart(w, '0');
}

/**
 * QEMU `info tlb` for the tables at `root`: one line per present leaf, ascending, `\n`-separated (no
 * trailing newline; an empty string when nothing is mapped). For a 4 KiB PTE, bit 7 (PAT) is not
 * shown as `P`, as QEMU masks it.
 */
export function formatInfoTlb(mem: PhysicalMemory, root: number): string {
  const out: string[] = [];
  forEachLeaf(mem, root, (l) => {
    const lo = l.lo;
    const f =
      (l.hi >>> 31 ? 'X' : '-') +
      (lo & PTE_G ? 'G' : '-') +
      (l.level > 1 && lo & PTE_PS ? 'P' : '-') +
      (lo & PTE_D ? 'D' : '-') +
      (lo & PTE_A ? 'A' : '-') +
      (lo & PTE_PCD ? 'C' : '-') +
      (lo & PTE_PWT ? 'T' : '-') +
      (lo & PTE_US ? 'U' : '-') +
      (lo & PTE_RW ? 'W' : '-');
    out.push(`${canon16(l.va)}: ${hex(l.pa, 16)} ${f}`);
  });
  return out.join('\n');
}

const TLB_LINE = /^([0-9a-f]{16}): ([0-9a-f]{16}) ([X-])([G-])([P-])([D-])([A-])([C-])([T-])([U-])([W-])$/;

/**
 * Parses `info tlb` text (as {@link formatInfoTlb} or QEMU print it; blank lines ignored).
 *
 * @throws VmkitError `E_INVALID` for a non-string or a line that is not in the format,
 *   `E_NONCANONICAL` for a non-canonical address
 */
export function parseInfoTlb(text: string): InfoTlbLine[] {
  checkText(text, 'info tlb');
  const out: InfoTlbLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = TLB_LINE.exec(line);
    if (!m) fail('E_INVALID', `not an info tlb line: ${JSON.stringify(line)}`, { line });
    out.push({
      va: parseVirtAddr(`0x${m[1]}`),
      pa: Number.parseInt(m[2]!, 16) as PhysAddr,
      flags: {
        xd: m[3] === 'X',
        global: m[4] === 'G',
        large: m[5] === 'P',
        dirty: m[6] === 'D',
        accessed: m[7] === 'A',
        cacheDisable: m[8] === 'C',
        writeThrough: m[9] === 'T',
        user: m[10] === 'U',
        writable: m[11] === 'W',
      },
    });
  }
  return out;
}

/**
 * QEMU `info mem` plus an `x` column: runs of contiguous mapped memory with the same effective
 * permissions, `start-end size urwx`, ascending, `\n`-separated. `end` is printed as QEMU prints the
 * exclusive end: canonical (a run ending at the top of the lower half shows `ffff800000000000`), and
 * a run reaching the top of the space shows `0001000000000000` (2^48: QEMU sign-extends from bit 47,
 * which is 0 there); `size` is exact.
 */
export function formatInfoMem(mem: PhysicalMemory, root: number, options: InfoMemOptions = {}): string {
  const nxe = options.nxe ?? true;
  const out: string[] = [];
  let start = -1;
  let end = -1;
  let prot = '';
  const flush = (): void => {
    if (start >= 0) {
      const e = end === SPACE_END ? hex(SPACE_END, 16) : canon16(end);
      out.push(`${canon16(start)}-${e} ${hex(end - start, 16)} ${prot}`);
    }
  };
  forEachLeaf(mem, root, (l) => {
    const p = `${l.user ? 'u' : '-'}r${l.writable ? 'w' : '-'}${!nxe || l.executable ? 'x' : '-'}`;
    if (l.va === end && p === prot) {
      end += l.size;
      return;
    }
    flush();
    start = l.va;
    end = l.va + l.size;
    prot = p;
  });
  flush();
  return out.join('\n');
}

const MEM_LINE = /^([0-9a-f]{16})-([0-9a-f]{16}) ([0-9a-f]{16}) ([u-])r([w-])([x-])?$/;

/**
 * Parses `info mem` text: {@link formatInfoMem}'s (`urwx`) and QEMU's own (`urw`, no `x` column: then
 * `executable` is absent). Blank lines are ignored; the `end` column must agree with start + size.
 *
 * @throws VmkitError `E_INVALID` for a non-string, a line that is not in the format or whose end
 *   disagrees with its size, `E_NONCANONICAL` for a non-canonical start
 */
export function parseInfoMem(text: string): InfoMemLine[] {
  checkText(text, 'info mem');
  const out: InfoMemLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = MEM_LINE.exec(line);
    if (!m) fail('E_INVALID', `not an info mem line: ${JSON.stringify(line)}`, { line });
    const start = parseVirtAddr(`0x${m[1]}`);
    const size = Number.parseInt(m[3]!, 16);
    const end = start + size;
    const printed = end === SPACE_END ? hex(SPACE_END, 16) : canon16(end);
    const oldTop = end === SPACE_END && m[2] === '0000000000000000'; // what 0.1.0 printed there
    if (size === 0 || end > SPACE_END || (printed !== m[2] && !oldTop))
      fail('E_INVALID', `info mem line ${JSON.stringify(line)}: end ${m[2]} is not start + size`, { line });
    const r: InfoMemLine = { start, end, size, user: m[4] === 'u', writable: m[5] === 'w' };
    if (m[6] !== undefined) r.executable = m[6] === 'x';
    out.push(r);
  }
  return out;
}

const PG_NAMES = ['', 'PTE', 'PDE', 'PDP', 'PML4'];

function pgFlags(level: number, lo: number, hi: number): string {
  return (
    (hi >>> 31 ? 'X' : '-') +
    (lo & PTE_G ? 'G' : '-') +
    (level > 1 && lo & PTE_PS ? 'S' : '-') +
    (lo & PTE_D ? 'D' : '-') +
    (lo & PTE_A ? 'A' : '-') +
    (lo & PTE_PCD ? 'C' : '-') +
    (lo & PTE_PWT ? 'T' : '-') +
    (lo & PTE_US ? 'U' : '-') +
    (lo & PTE_RW ? 'W' : '-') +
    (lo & PTE_P ? 'P' : '-')
  );
}

/**
 * A folded tree in the style of QEMU's `info pg`: a header, then one line per present non-leaf entry
 * (indented two spaces a level, with the range of 4 KiB page numbers it covers) followed by its
 * children, and one line per run of consecutive leaves whose attribute bits are equal and whose frames
 * are contiguous, with the 4 KiB physical page numbers the run covers. Flags: X = XD, G, S = PS,
 * D, A, C = PCD, T = PWT, U, W, P (the entry's own bits; bit 7 of a 4 KiB PTE, PAT, is not shown).
 * Page numbers are the 36-bit VirtAddr page numbers (a higher-half page prints as `ff…`). QEMU's
 * own printer prints a PML4 line's range as `[start-start]`; we print the full range it covers.
 */
export function formatInfoPg(mem: PhysicalMemory, root: number): string {
  const out = ['VPN range             Entry         Flags            Physical page'];
  pgTable(mem, root, 4, 0, 0, out);
  return out.join('\n');
}

function pgTable(
  mem: PhysicalMemory,
  table: number,
  level: number,
  base: number,
  depth: number,
  out: string[],
): void {
  const span = LEVEL_SPAN[level as 1]!;
  const pages = span / 4096;
  const indent = '  '.repeat(depth);
  const name = PG_NAMES[level]!.padStart(4);
  let i = 0;
  while (i < 512) {
    const e = readEntry(mem, table + i * 8);
    if (e === undefined) return;
    const [lo, hi] = e;
    if ((lo & PTE_P) === 0) {
      i++;
      continue;
    }
    const vpn = (base + i * span) / 4096;
    if (!isLeafEntry(level, lo)) {
      out.push(
        `${indent}[${hex(vpn, 9)}-${hex(vpn + pages - 1, 9)}] ${name}${`[${hex(i, 3)}]`.padEnd(9)} ${pgFlags(level, lo, hi)}`,
      );
      pgTable(mem, entryTarget(level, lo, hi), level - 1, base + i * span, depth + 1, out);
      i++;
      continue;
    }
    const pa = entryTarget(level, lo, hi);
    const attrMask = level > 1 ? 0x1fff : 0xfff; // flag bits (with the large-page PAT bit 12)
    const attrLo = lo & attrMask;
    const attrHi = hi & ~0xfffff;
    let j = i + 1;
    while (j < 512) {
      const f = readEntry(mem, table + j * 8);
      if (f === undefined) break;
      const [lo2, hi2] = f;
      if ((lo2 & PTE_P) === 0 || !isLeafEntry(level, lo2)) break;
      if ((lo2 & attrMask) !== attrLo || (hi2 & ~0xfffff) !== attrHi) break;
      if (entryTarget(level, lo2, hi2) !== pa + (j - i) * span) break;
      j++;
    }
    const n = j - i;
    const idx = n === 1 ? `[${hex(i, 3)}]` : `[${hex(i, 3)}-${hex(j - 1, 3)}]`;
    const pfn = pa / 4096;
    const last = pfn + n * pages - 1;
    const phys = last === pfn ? hex(pfn, 10) : `${hex(pfn, 10)}-${hex(last, 10)}`;
    out.push(
      `${indent}[${hex(vpn, 9)}-${hex(vpn + n * pages - 1, 9)}] ${name}${idx.padEnd(9)} ${pgFlags(level, lo, hi)} ${phys}`,
    );
    i = j;
  }
}

function checkText(text: unknown, what: string): asserts text is string {
  if (typeof text !== 'string')
    fail('E_INVALID', `${what} text ${describeValue(text)} is not a string`, { text });
}

/** The flags of an `info pg` line (the entry's own bits): those of `info tlb` and P. */
export interface InfoPgFlags extends InfoTlbFlags {
  present: boolean;
}

/** One parsed `info pg` line: a table entry, or a run of leaves. */
export interface InfoPgLine {
  /** Nesting depth (0 = PML4 lines). */
  depth: number;
  /** 4 = PML4, 3 = PDP, 2 = PDE, 1 = PTE. */
  level: 1 | 2 | 3 | 4;
  /** First and last 4 KiB virtual page number covered (VirtAddr page numbers: bits 47..12). */
  vpnFirst: number;
  vpnLast: number;
  /** First and last entry index of the run in its table. */
  indexFirst: number;
  indexLast: number;
  flags: InfoPgFlags;
  /** First and last 4 KiB physical page number of a run of leaves; absent for a table line. */
  pfnFirst?: number;
  pfnLast?: number;
}

const PG_LINE =
  /^( *)\[([0-9a-f]+)-([0-9a-f]+)\] +(PML4|PDP|PDE|PTE)\[([0-9a-f]+)(?:-([0-9a-f]+))?\] +([X-])([G-])([S-])([D-])([A-])([C-])([T-])([U-])([W-])([P-])(?: +([0-9a-f]+)(?:-([0-9a-f]+))?)?$/;
const PG_LEVEL: Record<string, 1 | 2 | 3 | 4> = { PML4: 4, PDP: 3, PDE: 2, PTE: 1 };

/**
 * Parses `info pg` text: {@link formatInfoPg}'s, or QEMU's (whose PML4 lines show `[start-start]`;
 * the header and blank lines are skipped). Every line is returned in order with its depth.
 *
 * @throws VmkitError `E_INVALID` for a non-string or a line that is not in the format
 */
export function parseInfoPg(text: string): InfoPgLine[] {
  checkText(text, 'info pg');
  const out: InfoPgLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.trim() === '' || line.startsWith('VPN range')) continue;
    const m = PG_LINE.exec(line);
    if (!m) fail('E_INVALID', `not an info pg line: ${JSON.stringify(line)}`, { line });
    const r: InfoPgLine = {
      depth: m[1]!.length / 2,
      level: PG_LEVEL[m[4]!]!,
      vpnFirst: Number.parseInt(m[2]!, 16),
      vpnLast: Number.parseInt(m[3]!, 16),
      indexFirst: Number.parseInt(m[5]!, 16),
      indexLast: Number.parseInt(m[6] ?? m[5]!, 16),
      flags: {
        xd: m[7] === 'X',
        global: m[8] === 'G',
        large: m[9] === 'S',
        dirty: m[10] === 'D',
        accessed: m[11] === 'A',
        cacheDisable: m[12] === 'C',
        writeThrough: m[13] === 'T',
        user: m[14] === 'U',
        writable: m[15] === 'W',
        present: m[16] === 'P',
      },
    };
    if (m[17] !== undefined) {
      r.pfnFirst = Number.parseInt(m[17], 16);
      r.pfnLast = Number.parseInt(m[18] ?? m[17], 16);
    }
    out.push(r);
  }
  return out;
}
