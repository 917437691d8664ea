/**
 * The TLB storage: a direct-mapped array of entries indexed by the low bits of the 4 KiB page number,
 * held in typed arrays (no object per entry). The {@link Mmu} fills it and reads it on every access;
 * this module keeps the bookkeeping: tags, the list of filled slots (so flushes cost what is filled),
 * large-page tracking for INVLPG, and the invalidation primitives the architecture names.
 *
 * Entry layout: slot `i` is one record of {@link TLB_STRIDE} = 16 doubles (128 bytes, two cache lines)
 * at `b = i * 16` of {@link Tlb.tags}, so that a fill writes one place and a hit reads one array:
 * - `tags[b + p]` for p in 0..11: the hit tags, indexed by the access value itself so the access path
 *   needs no class lookup: p = the explicit access value (`ACCESS_WRITE | ACCESS_EXEC | ACCESS_USER`
 *   bits, 0..7) with RFLAGS.AC = 0, and p = 8 + access for a supervisor access (0..3) with RFLAGS.AC
 *   = 1 (user accesses ignore AC). Position p holds the entry's key when the access class of p
 *   ({@link TLB_POS_CLASS}) may use the entry without a walk, −1 otherwise, so a hit is one compare.
 *   Write classes are valid only when the leaf's D flag is 1: a read fills the entry "read-only" and
 *   the first write re-walks and sets D. Implicit accesses (`ACCESS_IMPLICIT`) look their class up
 *   (`TLB_CLASS_POS`) when the MMU's inline test has missed;
 * - `tags[b + 12]`: physical minus virtual address of the 4 KiB page (`pa = va + addend`); its low 32
 *   bits also as an int32 at word `2b + 26` of {@link Tlb.words} (the same memory), so a data access
 *   computes the low 32 bits of its physical address in integer arithmetic;
 * - word `2b + 27`: the effective rights (`EFF_*` bits of `access.ts`, bits 0..11), log2 of the leaf's
 *   4 KiB pages (0, 9 or 18; bits 16..20) and a "listed" bit (24: the slot is in the list of filled
 *   slots that flushes walk);
 * - `tags[b + 14]`: the key `vpn * 8192 + tag`, where `tag` is the PCID (0..4095) or {@link TLB_GLOBAL}
 *   for a global translation (G = 1 with CR4.PGE = 1), which matches under every PCID; −1 when empty;
 * - `tags[b + 15]`: the leaf's first 4 KiB page number: a 2 MiB or 1 GiB leaf is cached as 4 KiB
 *   pieces, and INVLPG of any address in it drops every piece.
 *
 * @module
 */
import { checkUint, fail, isPowerOfTwo } from '@vmkit/addr';
import { CLASS_COUNT, classTable } from './access.js';

/** The tag value of a global entry (beyond every PCID). */
export const TLB_GLOBAL = 4096;
/** `key = vpn * TLB_KEY_SCALE + tag`. */
export const TLB_KEY_SCALE = 8192;
/** Doubles per slot in {@link Tlb.tags}: 12 hit tags, the addend, rights and geometry, key, leaf page. */
export const TLB_STRIDE = 16;
/** Position of the addend (physical minus virtual address) in a slot of {@link Tlb.tags}. */
export const TLB_ADDEND = 12;
/** Position of the key in a slot of {@link Tlb.tags}. */
export const TLB_KEY = 14;
/** Position of the leaf's first page number in a slot of {@link Tlb.tags}. */
export const TLB_LEAF_VPN = 15;
/** Bit of the meta word (word `2b + 27`): the slot is in the filled list. */
const LISTED = 0x100_0000;
/** The largest TLB: 2^20 entries (slot index = address bits 31..12). */
export const TLB_MAX_SIZE = 1 << 20;
/**
 * The access class (0..7, see `classTable`) whose rights the tag at each position 0..11 of a slot
 * stands for: positions 0..7 are the access values 0..7 with RFLAGS.AC = 0, 8..11 the supervisor
 * access values 0..3 with RFLAGS.AC = 1.
 */
export const TLB_POS_CLASS: readonly number[] = [0, 1, 2, 1, 3, 4, 5, 4, 6, 7, 2, 7];
/** A position of a slot holding each class's tag (the inverse of {@link TLB_POS_CLASS}). */
export const TLB_CLASS_POS: readonly number[] = [0, 1, 2, 4, 5, 6, 8, 9];

// The layout above (and the literals of `writeTags` and of the MMU's access path) must agree with
// the class table: checked once at load.
{
  const c0 = classTable(false);
  const c1 = classTable(true);
  let ok = CLASS_COUNT === 8;
  for (let p = 0; p < 12; p++) if ((p < 8 ? c0[p] : c1[p - 8]) !== TLB_POS_CLASS[p]) ok = false;
  for (let c = 0; c < CLASS_COUNT; c++) if (TLB_POS_CLASS[TLB_CLASS_POS[c]!] !== c) ok = false;
  if (TLB_STRIDE !== 16 || TLB_ADDEND !== 12 || TLB_KEY !== 14 || TLB_LEAF_VPN !== 15) ok = false;
  if (!ok) throw new Error('@vmkit/paging-x86_64: the TLB layout disagrees with the access classes');
}

/** Why entries were invalidated: one counter per reason. */
export interface TlbFlushCounts {
  /** MOV to CR0 changing PG (everything). */
  cr0: number;
  /** MOV to CR3 (non-global entries of the PCID, unless the no-flush bit). */
  cr3: number;
  /** MOV to CR4 changing PGE/PAE/SMEP 0→1/PCIDE 1→0. */
  cr4: number;
  /** WRMSR IA32_EFER changing NXE (this model flushes, as it may). */
  efer: number;
  /** INVLPG. */
  invlpg: number;
  /** INVPCID (any type). */
  invpcid: number;
  /** A page fault dropping the entry of its page (SDM §4.10.4.1). */
  fault: number;
  /** `Mmu.flushTlb()` or `Tlb.flushAll()` called directly. */
  explicit: number;
}

/** A valid TLB entry, for debuggers and tests ({@link Tlb.entries}). */
export interface TlbEntry {
  slot: number;
  /** 4 KiB page number of the cached page. */
  vpn: number;
  /** The PCID, or `'global'`. */
  pcid: number | 'global';
  /** Physical address of the cached 4 KiB page. */
  pa: number;
  /** Effective-rights bits (`EFF_*`). */
  eff: number;
  /** Size of the leaf this piece came from, in bytes. */
  leafSize: number;
  /** Bit mask of the access classes (0..7) that hit without a walk. */
  classes: number;
}

/** Direct-mapped TLB storage (see the module doc). */
export class Tlb {
  /** Number of entries (a power of two). */
  readonly size: number;
  /** `size - 1`: slot = vpn & mask. */
  readonly mask: number;
  /** The entries, {@link TLB_STRIDE} doubles a slot (see the module doc). */
  readonly tags: Float64Array;
  /** The memory of {@link tags} as int32 words (word `i * 32 + 26` is the addend's low 32 bits, `+ 27` the meta word). */
  readonly words: Int32Array;
  private readonly filled: Int32Array;
  private filledCount = 0;
  private largeCount = 0;
  /** Entries written by a walk. */
  fills = 0;
  /** Fills that replaced another valid entry (a conflict in the direct-mapped array). */
  evictions = 0;
  /** Entries dropped by invalidations (not counting evictions). */
  invalidated = 0;
  /** Invalidation operations by reason. */
  readonly flushes: TlbFlushCounts = {
    cr0: 0,
    cr3: 0,
    cr4: 0,
    efer: 0,
    invlpg: 0,
    invpcid: 0,
    fault: 0,
    explicit: 0,
  };

  /**
   * @param size entries, a power of two in [1, 2^20] (the slot index is then bits 31..12 of the
   *   address: the hit path works on the address's low 32 bits only)
   * @throws VmkitError `E_INVALID` otherwise
   */
  constructor(size: number) {
    checkUint(size, 'TLB size');
    if (!isPowerOfTwo(size) || size > TLB_MAX_SIZE) {
      fail('E_INVALID', `TLB size ${size} is not a power of two in [1, 2^20]`, { size });
    }
    this.size = size;
    this.mask = size - 1;
    this.tags = new Float64Array(size * TLB_STRIDE).fill(-1);
    this.words = new Int32Array(this.tags.buffer);
    for (let i = 0; i < size; i++) {
      this.tags[i * TLB_STRIDE + TLB_LEAF_VPN] = 0;
      this.words[i * 32 + 27] = 0;
    }
    this.filled = new Int32Array(size);
  }

  /** The key of slot `i` (`vpn * 8192 + tag`), −1 when empty. */
  keyAt(i: number): number {
    return this.tags[i * TLB_STRIDE + TLB_KEY]!;
  }

  /** The effective rights (`EFF_*` bits) of slot `i` (meaningful while it is valid). */
  effAt(i: number): number {
    return this.words[i * 32 + 27]! & 0xfff;
  }

  /** log2 of the 4 KiB pages of the leaf slot `i` came from: 0, 9 or 18 (0 when empty). */
  shiftAt(i: number): number {
    return (this.words[i * 32 + 27]! >>> 16) & 31;
  }

  /** The first 4 KiB page number of the leaf slot `i` came from. */
  leafVpnAt(i: number): number {
    return this.tags[i * TLB_STRIDE + TLB_LEAF_VPN]!;
  }

  /** Number of valid entries (O(filled)). */
  get validCount(): number {
    let n = 0;
    for (let k = 0; k < this.filledCount; k++) if (this.keyAt(this.filled[k]!) >= 0) n++;
    return n;
  }

  /**
   * Writes slot `i` (internal to the MMU's fill): key, addend, rights, leaf geometry; `classMask` says
   * which classes get a valid tag. Evicts what the slot held.
   */
  place(
    i: number,
    key: number,
    addend: number,
    eff: number,
    leafVpn: number,
    shift: number,
    classMask: number,
  ): void {
    // Slot i's record: doubles b..b+15, int32 words 2b..2b+31 (literals: V8 does not fold imported
    // bindings, and the layout is checked against the named positions at load).
    const tags = this.tags;
    const words = this.words;
    const b = i << 4;
    const w = i << 5;
    const old = tags[b | 14]!;
    const meta = words[w | 27]!;
    if (old >= 0) {
      if (old !== key) this.evictions++;
      if ((meta & 0x1f0000) !== 0) this.largeCount--;
    }
    this.fills++;
    writeTags(tags, b, key, classMask);
    tags[b | 12] = addend;
    words[w | 26] = addend | 0; // low 32 bits (ToInt32 is exact modulo 2^32)
    words[w | 27] = eff | (shift << 16) | LISTED;
    tags[b | 14] = key;
    tags[b | 15] = leafVpn;
    if (shift > 0) this.largeCount++;
    if ((meta & LISTED) === 0) this.filled[this.filledCount++] = i;
  }

  /** Physical minus virtual address of slot `i`'s page (meaningful while the slot is valid). */
  addendOf(i: number): number {
    return this.tags[i * TLB_STRIDE + TLB_ADDEND]!;
  }

  /** Re-computes the class tags of every valid entry from its stored rights (after a CPU-state change). */
  retag(classMaskOf: (eff: number) => number): void {
    for (let k = 0; k < this.filledCount; k++) {
      const i = this.filled[k]!;
      const key = this.keyAt(i);
      if (key < 0) continue;
      writeTags(this.tags, i * TLB_STRIDE, key, classMaskOf(this.effAt(i)));
    }
  }

  /** Drops slot `i`'s entry. */
  drop(i: number): void {
    if (this.keyAt(i) < 0) return;
    if (this.shiftAt(i) > 0) this.largeCount--;
    this.tags[i * TLB_STRIDE + TLB_KEY] = -1;
    this.words[i * 32 + 27]! &= LISTED; // keeps only "listed": the slot stays in the filled list
    this.tags.fill(-1, i * TLB_STRIDE, i * TLB_STRIDE + TLB_ADDEND);
    this.invalidated++;
  }

  /**
   * Drops every entry of 4 KiB page `vpn` whose tag is `pcid` (when `pcid ≥ 0`) or global (when
   * `withGlobal`), including the other pieces of a large leaf holding `vpn`.
   */
  dropPage(vpn: number, pcid: number, withGlobal: boolean): void {
    const i = vpn & this.mask;
    const k = this.keyAt(i);
    if (k >= 0 && Math.floor(k / TLB_KEY_SCALE) === vpn && this.tagMatches(k, pcid, withGlobal)) this.drop(i);
    if (this.largeCount === 0) return;
    for (let n = 0; n < this.filledCount; n++) {
      const s = this.filled[n]!;
      const ks = this.keyAt(s);
      const sh = this.shiftAt(s);
      if (ks < 0 || sh === 0) continue;
      const first = this.leafVpnAt(s);
      if (vpn >= first && vpn < first + 2 ** sh && this.tagMatches(ks, pcid, withGlobal)) this.drop(s);
    }
  }

  /** Drops every non-global entry tagged `pcid`. */
  dropPcid(pcid: number): void {
    this.sweep(pcid, false);
  }

  /** Drops every non-global entry of every PCID. */
  dropNonGlobal(): void {
    this.sweep(-1, false);
  }

  /** Drops every entry (the list of filled slots is reset). */
  flushAll(): void {
    for (let n = 0; n < this.filledCount; n++) {
      const s = this.filled[n]!;
      this.drop(s);
      this.words[s * 32 + 27] = 0; // no longer listed
    }
    this.filledCount = 0;
    this.largeCount = 0;
  }

  /** Every valid entry (allocates; for debuggers and tests). */
  entries(): TlbEntry[] {
    const out: TlbEntry[] = [];
    for (let n = 0; n < this.filledCount; n++) {
      const i = this.filled[n]!;
      const k = this.keyAt(i);
      if (k < 0) continue;
      const vpn = Math.floor(k / TLB_KEY_SCALE);
      const tag = k - vpn * TLB_KEY_SCALE;
      let classes = 0;
      for (let c = 0; c < CLASS_COUNT; c++) {
        if (this.tags[i * TLB_STRIDE + TLB_CLASS_POS[c]!] === k) classes |= 1 << c;
      }
      out.push({
        slot: i,
        vpn,
        pcid: tag === TLB_GLOBAL ? 'global' : tag,
        pa: vpn * 4096 + this.addendOf(i),
        eff: this.effAt(i),
        leafSize: 4096 * 2 ** this.shiftAt(i),
        classes,
      });
    }
    return out.sort((a, b) => a.vpn - b.vpn);
  }

  private tagMatches(key: number, pcid: number, withGlobal: boolean): boolean {
    const tag = key % TLB_KEY_SCALE;
    return tag === TLB_GLOBAL ? withGlobal : pcid < 0 || tag === pcid;
  }

  /** Drops non-global entries of `pcid` (all PCIDs when −1) and compacts the filled list. */
  private sweep(pcid: number, withGlobal: boolean): void {
    let w = 0;
    for (let n = 0; n < this.filledCount; n++) {
      const s = this.filled[n]!;
      const k = this.keyAt(s);
      if (k >= 0 && this.tagMatches(k, pcid, withGlobal)) this.drop(s);
      if (this.keyAt(s) >= 0) this.filled[w++] = s;
      else this.words[s * 32 + 27] = 0; // no longer listed
    }
    this.filledCount = w;
  }
}

/**
 * Writes the 12 hit tags of the slot at `b` (= slot × 16): `key` where `classMask` allows the class of
 * the position ({@link TLB_POS_CLASS}), −1 elsewhere. Unrolled with literal class numbers.
 */
function writeTags(tags: Float64Array, b: number, key: number, m: number): void {
  const c0 = m & 1 ? key : -1;
  const c1 = m & 2 ? key : -1;
  const c2 = m & 4 ? key : -1;
  const c4 = m & 16 ? key : -1;
  const c7 = m & 128 ? key : -1;
  tags[b] = c0;
  tags[b + 1] = c1;
  tags[b + 2] = c2;
  tags[b + 3] = c1;
  tags[b + 4] = m & 8 ? key : -1;
  tags[b + 5] = c4;
  tags[b + 6] = m & 32 ? key : -1;
  tags[b + 7] = c4;
  tags[b + 8] = m & 64 ? key : -1;
  tags[b + 9] = c7;
  tags[b + 10] = c2;
  tags[b + 11] = c7;
}
