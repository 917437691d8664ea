/**
 * The x86-64 MMU: control registers, the 4-level walk with the architectural access-rights checks and
 * page-fault error codes, accessed/dirty bits, and the TLB on the access path.
 *
 * @module
 */
import {
  checkUint,
  checkVirtAddr,
  describeValue,
  fail,
  formatHex,
  PAGE_SIZE_1G,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  type PageSize,
  type PhysAddr,
  VIRT_SPACE_END,
  type VirtAddr,
} from '@vmkit/addr';
import type { PhysicalMemory } from '../physical-memory.js';
import { PTE_A, PTE_D, PTE_G, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../pte.js';
import {
  ACCESS_LIMIT,
  ACCESS_READ,
  ACCESS_WRITE,
  type Access,
  CLASS_COUNT,
  classIsWrite,
  classTable,
  EFF_D,
  EFF_G,
  EFF_PK_SHIFT,
  EFF_RW,
  EFF_US,
  EFF_XD,
  isAccess,
  rightsCheck,
  ST_NXE,
  ST_PKE,
  ST_SMAP,
  ST_SMEP,
  ST_WP,
} from './access.js';
import {
  CR0_CD,
  CR0_NW,
  CR0_PE,
  CR0_PG,
  CR0_RESERVED,
  CR0_WP,
  CR3_PCID_MASK,
  CR4_LA57,
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  CR4_PKE,
  CR4_PKS,
  CR4_RESERVED,
  CR4_SMAP,
  CR4_SMEP,
  EFER_LMA,
  EFER_LME,
  EFER_NXE,
  EFER_RESERVED,
} from './control-registers.js';
import { mmuFail } from './errors.js';
import { PageFault, PF_ID, PF_P, PF_RSVD, PF_U, PF_W, VECTOR_GP, VECTOR_PF } from './fault.js';
import { TLB_GLOBAL, TLB_KEY_SCALE, Tlb, type TlbFlushCounts } from './tlb.js';

/** The value `translate`/`read32`/`read8` return for a fault (the fault record says which). */
export const FAULT = -1;
/** Default number of TLB entries (chosen from `paging.tlbSizeCurve`; see the README). */
export const DEFAULT_TLB_SIZE = 16384;
/** Default MAXPHYADDR (physical-address width), as on many current Intel server parts. */
export const DEFAULT_MAXPHYADDR = 46;

const TWO32 = 0x1_0000_0000;
const WRITE_CLASS_MASK = (1 << 1) | (1 << 4) | (1 << 7);
/** All-ones: what a read of a physical address outside the simulated RAM returns (a bus abort). */
const OPEN_BUS = 0xffff_ffff;
// The access path uses module-local literals: reading an imported binding costs a load and a check per
// use in V8 (measured ~1.5 ns per translation), a local const folds away.
const HOT_PAGE = 4096;
const HOT_KEY_SCALE = 8192; // TLB_KEY_SCALE
const HOT_GLOBAL = 4096; // TLB_GLOBAL
// FAULT and the default accesses as module-local literals too. Inside this module an exported binding
// (FAULT) is read through a Cell like an imported one: a tagged value, and a method's result that
// merges it with a u32 read must then box every read of 2^31 or more in a fresh HeapNumber.
const HOT_FAULT = -1; // FAULT
const HOT_READ = 0; // ACCESS_READ
const HOT_WRITE = 1; // ACCESS_WRITE
// The literals above and in `walk` must stay equal to the named constants (checked once at load).
if (
  HOT_KEY_SCALE !== TLB_KEY_SCALE ||
  HOT_GLOBAL !== TLB_GLOBAL ||
  HOT_PAGE !== PAGE_SIZE_4K ||
  HOT_FAULT !== FAULT ||
  HOT_READ !== ACCESS_READ ||
  HOT_WRITE !== ACCESS_WRITE ||
  PTE_P !== 1 ||
  (PTE_RW | PTE_US) !== 6 ||
  PTE_A !== 0x20 ||
  PTE_D !== 0x40 ||
  PTE_PS !== 0x80 ||
  PTE_G !== 0x100 ||
  (EFF_RW | EFF_US | EFF_XD | EFF_D | EFF_G) !== 31 ||
  EFF_PK_SHIFT !== 8 ||
  (PF_P | PF_RSVD) !== 9
) {
  throw new Error('@vmkit/paging-x86_64: MMU hot-path literals disagree with the constants');
}
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_U8 = new Uint8Array(0);
/** A word index beyond every single-chunk memory (≤ 2^28 words): "read through `readWord`". */
const NO_WORD = 0x4000_0000;
const OP_READ32 = 0;
const OP_WRITE32 = 1;
const OP_READ8 = 2;
const OP_WRITE8 = 3;
const OP_TRANSLATE = 4;
// Indexes of `Mmu.cnt`.
const C_HITS = 0;
const C_MISSES = 1;
const C_RIGHTS = 2;
const C_DIRTY = 3;
const C_WALKS = 4;
const C_FAULTS = 5;
const C_NOT_PRESENT = 6;
const C_PROTECTION = 7;
const C_RESERVED = 8;
const C_COUNT = 9;

/** Options of {@link Mmu}. Registers default to 4-level paging on: CR0 = PE|WP|PG, CR4 = PAE|PGE, EFER = LME|LMA|NXE. */
export interface MmuOptions {
  /** TLB entries, a power of two in [1, 2^20] (default {@link DEFAULT_TLB_SIZE}). */
  tlbSize?: number;
  /** Physical-address width M in [36, 52] (default {@link DEFAULT_MAXPHYADDR}): entry bits 51..M are reserved. */
  maxPhyAddr?: number;
  /** Initial CR0. */
  cr0?: number;
  /** Initial CR3 (base | PCID or PWT/PCD bits), default 0. */
  cr3?: number;
  /** Initial CR4. */
  cr4?: number;
  /** Initial IA32_EFER (LMA is derived). */
  efer?: number;
  /** Initial PKRU (default 0: every key allows everything). */
  pkru?: number;
  /** Initial RFLAGS.AC (default false). */
  ac?: boolean;
}

/** Counters of the access path and the TLB ({@link Mmu.stats}). */
export interface MmuStats {
  /** Translations served by the TLB without a walk. */
  hits: number;
  /** Walks because no TLB entry held the page (for this PCID). */
  misses: number;
  /** Walks although an entry held the page, because it did not allow this access class. */
  rightsMisses: number;
  /** Of `rightsMisses`: writes to an entry filled with D = 0 (the re-walk sets D). */
  dirtyRewalks: number;
  /** Page walks (misses + rights misses). */
  walks: number;
  /** Faults reported (#PF and #GP). */
  faults: number;
  /** #PF with P = 0. */
  faultsNotPresent: number;
  /** #PF with P = 1, RSVD = 0 (rights or protection keys). */
  faultsProtection: number;
  /** #PF with RSVD = 1. */
  faultsReserved: number;
  /** TLB fills. */
  fills: number;
  /** Fills that replaced another entry. */
  evictions: number;
  /** Entries dropped by invalidation. */
  invalidated: number;
  /** Invalidation operations by reason. */
  flushes: TlbFlushCounts;
  /** TLB entries valid now. */
  tlbValid: number;
}

/** One paging-structure entry read by {@link Mmu.probe}. */
export interface WalkStep {
  /** 4 = PML4E, 3 = PDPTE, 2 = PDE, 1 = PTE. */
  level: number;
  /** Physical address of the entry. */
  addr: PhysAddr;
  /** Bits 31..0 of the entry. */
  lo: number;
  /** Bits 63..32 of the entry. */
  hi: number;
}

/** What {@link Mmu.probe} found: a translation with its effective rights, or the fault an access would take. */
export type ProbeResult =
  | {
      ok: true;
      /** Physical address of `va`. */
      pa: PhysAddr;
      /** First virtual address of the leaf page. */
      leafVa: VirtAddr;
      size: PageSize;
      /** R/W = 1 at every level. */
      writable: boolean;
      /** U/S = 1 at every level (a user-mode address). */
      user: boolean;
      /** No XD at any level, or EFER.NXE = 0. */
      executable: boolean;
      /** G = 1 in the leaf and CR4.PGE = 1. */
      global: boolean;
      accessed: boolean;
      dirty: boolean;
      /** The leaf's protection key (bits 62..59). */
      protectionKey: number;
      steps: WalkStep[];
    }
  | {
      ok: false;
      /** The error code the access would get (`PF_*`). */
      errorCode: number;
      /** The level whose entry ended the walk. */
      level: number;
      steps: WalkStep[];
    };

/**
 * A simulated x86-64 MMU over a {@link PhysicalMemory} in IA-32e mode with 4-level paging.
 *
 * The access path — {@link translate}, {@link read32}, {@link write32}, {@link read8},
 * {@link write8} — never throws and, over a single-chunk memory (up to 1 GiB), never allocates, hit or
 * miss: a fault returns {@link FAULT} (or `false`) and fills the one {@link fault} record (and
 * {@link cr2} for a #PF); an address or value that goes on to the miss path crosses the call as Smis
 * or through a typed-array register file, never as a boxed double. (A call to these methods that V8
 * does not inline into the caller boxes a non-Smi argument in the caller, as any JS call does.)
 * Nothing is trusted: a virtual address that is not a `VirtAddr` (an integer in [0, 2^48)) is a #GP
 * fault record (vector 13, `fault.value` = the address as passed), on a hit and a miss alike (it never
 * matches a TLB tag; the miss path validates before walking); an `access` outside the 16 `Access`
 * values throws `E_INVALID`.
 *
 * Architecture followed (Intel SDM Vol. 3A): §4.5 walk and reserved bits (PS in a PML4E; bits 51..M;
 * XD with EFER.NXE = 0; bits 29..13 of a 1 GiB PDPTE, 20..13 of a 2 MiB PDE), §4.6 access rights
 * (R/W and U/S ANDed across levels, XD ORed; CR0.WP; SMEP; SMAP with RFLAGS.AC and implicit
 * accesses; protection keys with CR4.PKE and PKRU), §4.7 error codes, §4.8 A/D bits, §4.10 TLB and
 * invalidation (PCIDs, global pages, CR3 no-flush, INVLPG, INVPCID types 0–3, CR0/CR4 writes).
 *
 * Choices where the SDM leaves freedom: A flags are written only when the access succeeds (every
 * entry walked gets A; the leaf gets D on a write) — a faulting access writes nothing; a TLB entry is
 * created only for a successful translation and only for pages inside the simulated RAM; an entry that
 * does not allow an access is re-walked rather than faulting from the stale rights (the SDM lets a
 * processor drop any entry at any time); a fault drops the entry of its page (§4.10.4.1).
 */
export class Mmu {
  /** The physical memory the tables and data live in. */
  readonly mem: PhysicalMemory;
  /** The TLB. */
  readonly tlb: Tlb;
  /** The last fault (overwritten by each). */
  readonly fault = new PageFault();
  /** MAXPHYADDR. */
  readonly maxPhyAddr: number;
  /** CR2: the linear address of the last #PF. */
  cr2 = 0 as VirtAddr;

  private _cr0 = 0;
  private _cr3 = 0;
  private _cr4 = 0;
  private _efer = 0;
  private _pkru = 0;
  private _ac = false;

  // ---- hot state ----
  /** The TLB's tag/addend array (16 doubles a slot, see `tlb.ts`). */
  private readonly tags: Float64Array;
  /** The same memory as int32 words: the addend's low 32 bits of slot i at i * 32 + 26. */
  private readonly words: Int32Array;
  private readonly mask: number;
  /** The memory's single-chunk views, or empty arrays when it has several chunks (no `undefined` check). */
  private readonly f32: Uint32Array;
  private readonly f8: Uint8Array;
  /** 8 while RFLAGS.AC = 1, else 0: added to a supervisor access value to find its tag. */
  private acOff = 0;
  private readonly memSize: number;
  private readonly cls = new Int8Array(ACCESS_LIMIT);
  private readonly accErr = new Int8Array(ACCESS_LIMIT);
  /** rightsCheck result by (rIdx << 3 | class); rIdx = RW/US/XD bits | key << 3. */
  private readonly rights = new Uint8Array(128 * CLASS_COUNT);
  /** Allowed classes by rIdx (before the D rule). */
  private readonly allow = new Uint8Array(128);
  private pcid = 0;
  private root = 0;
  /** `root / 4` when the PML4 lies in the single-chunk memory, else {@link NO_WORD}. */
  private rootW = NO_WORD;
  /** CR0.PG as 0/1 (an int field: a boolean field costs a ToBoolean dispatch per read). */
  private pagingOn = 0;
  private st = 0;
  private rsvdHi = 0;
  /** CR4.PGE as 0/1. */
  private pgeOn = 0;
  /**
   * The register file of {@link slowAccess}: [0] the virtual address, [1] the value to write, [2] the
   * physical address it translated, [3] the full walk's physical address, and as u32 word 8 ({@link
   * io32}) the value a read returns. Doubles cross the calls of the miss path through it: a double
   * argument or return value above 2^30 would otherwise be boxed in a fresh HeapNumber per miss.
   */
  private readonly io = new Float64Array(5);
  /** `io` as u32 words: word 8 (the low half of `io[4]`) is the value a read returns (an integer result keeps the read path in int32 arithmetic). */
  private readonly io32 = new Uint32Array(this.io.buffer);

  // ---- walk scratch ----
  private readonly wAddr = new Float64Array(4);
  private readonly wLo = new Uint32Array(4);
  private wPa4k = 0;
  private wEff = 0;
  private wLevel = 0;
  private wError = 0;
  private wLeafLo = 0;
  private wLeafHi = 0;

  // ---- counters ----
  /**
   * The counters, by the C_* indexes: doubles in an array, so an increment is a load, an add and a
   * store, with no Smi overflow check and no field-representation change past 2^30.
   */
  private readonly cnt = new Float64Array(C_COUNT);

  /**
   * @throws VmkitError `E_INVALID` for a TLB size that is not a power of two or a MAXPHYADDR outside
   *   [36, 52]; the register checks of {@link writeCr0}/{@link writeCr4}/{@link writeEfer}/{@link writeCr3}
   */
  constructor(mem: PhysicalMemory, options: MmuOptions = {}) {
    this.mem = mem;
    this.memSize = mem.size;
    this.f32 = mem.flat32 ?? EMPTY_U32;
    this.f8 = mem.flat8 ?? EMPTY_U8;
    const m = options.maxPhyAddr ?? DEFAULT_MAXPHYADDR;
    if (!Number.isInteger(m) || m < 36 || m > 52)
      fail('E_INVALID', `MAXPHYADDR ${m} is not an integer in [36, 52]`, { m });
    this.maxPhyAddr = m;
    this.tlb = new Tlb(options.tlbSize ?? DEFAULT_TLB_SIZE);
    this.tags = this.tlb.tags;
    this.words = this.tlb.words;
    this.mask = this.tlb.mask;
    this._pkru = (options.pkru ?? 0) >>> 0;
    this._ac = options.ac ?? false;
    this.acOff = this._ac ? 8 : 0;
    // Program the registers in an order the architectural checks accept (PCIDE needs IA-32e mode and
    // CR3[11:0] = 0 when it is set), then count from zero.
    const cr4 = check32(options.cr4 ?? CR4_PAE | CR4_PGE, 'CR4');
    const cr3 = options.cr3 ?? 0;
    checkUint(cr3, 'CR3');
    this.writeEfer(options.efer ?? EFER_LME | EFER_NXE);
    this.writeCr4((cr4 & ~CR4_PCIDE) >>> 0);
    this.writeCr3(cr3 - (cr3 % PAGE_SIZE_4K));
    this.writeCr0(options.cr0 ?? CR0_PE | CR0_WP | CR0_PG);
    this.writeCr4(cr4);
    this.writeCr3(cr3);
    this.resetStats();
  }

  // ------------------------------------------------------------------ registers

  /** CR0. */
  get cr0(): number {
    return this._cr0;
  }
  /** CR3 as written (base | low 12 bits); bit 63 is never held. */
  get cr3(): number {
    return this._cr3;
  }
  /** CR4. */
  get cr4(): number {
    return this._cr4;
  }
  /** IA32_EFER, with LMA = LME && CR0.PG. */
  get efer(): number {
    return this._efer;
  }
  /** PKRU. */
  get pkru(): number {
    return this._pkru;
  }
  /** RFLAGS.AC. */
  get ac(): boolean {
    return this._ac;
  }
  /** The current PCID (0 when CR4.PCIDE = 0). */
  get currentPcid(): number {
    return this.pcid;
  }

  /**
   * MOV to CR0. Models PE (bit 0), WP (bit 16), PG (bit 31); other bits are kept as written.
   * Changing PG flushes the whole TLB; changing WP re-evaluates the rights of cached entries.
   *
   * @param value a 32-bit value (unsigned, or the int32 that `|` of the CR0_* constants gives)
   * @throws VmkitError `E_GP` for PG without PE or without CR4.PAE (IA-32e paging needs PAE),
   *   `E_UNSUPPORTED` for PG with EFER.LME = 0 (32-bit/PAE paging are not modelled), `E_INVALID`/`E_RANGE`
   *   for a value that is not a 32-bit integer. State is unchanged on error.
   */
  writeCr0(value: number): void {
    value = check32(value, 'CR0');
    if ((value & CR0_RESERVED) !== 0) {
      mmuFail(
        'E_GP',
        `CR0 ${formatHex(value)} sets reserved bits ${formatHex((value & CR0_RESERVED) >>> 0)}`,
        {
          value,
        },
      );
    }
    if ((value & CR0_NW) !== 0 && (value & CR0_CD) === 0)
      mmuFail('E_GP', `CR0 ${formatHex(value)} sets NW without CD`, { value });
    const pg = (value & CR0_PG) !== 0;
    if (pg && (value & CR0_PE) === 0)
      mmuFail('E_GP', `CR0 ${formatHex(value)} sets PG without PE`, { value });
    if (pg && (this._cr4 & CR4_PAE) === 0)
      mmuFail('E_GP', 'CR0.PG with IA32_EFER.LME needs CR4.PAE', { value });
    if (pg && (this._efer & EFER_LME) === 0) {
      mmuFail('E_UNSUPPORTED', 'only IA-32e (4-level) paging is modelled: set IA32_EFER.LME before CR0.PG', {
        value,
      });
    }
    const old = this._cr0;
    this._cr0 = value >>> 0;
    this._efer = pg && (this._efer & EFER_LME) !== 0 ? this._efer | EFER_LMA : this._efer & ~EFER_LMA;
    if (((old ^ value) & CR0_PG) !== 0) {
      this.tlb.flushes.cr0++;
      this.tlb.flushAll();
    }
    this.derive();
  }

  /**
   * MOV to CR3. `value` is the table base (bits 51..12) plus bits 11..0 (the PCID when CR4.PCIDE = 1).
   * With PCIDE = 0 every non-global entry is dropped; with PCIDE = 1 the non-global entries of the new
   * PCID are dropped unless `noFlush` (bit 63 of the source operand) is set. Global entries stay.
   *
   * @throws VmkitError `E_GP` for base bits at or above MAXPHYADDR, or `noFlush` with PCIDE = 0 (bit
   *   63 is reserved then); `E_INVALID`/`E_RANGE`/`E_OVERFLOW` for a value that is not an integer in
   *   [0, 2^52). State is unchanged on error.
   */
  writeCr3(value: number, noFlush = false): void {
    checkUint(value, 'CR3');
    if (value >= 2 ** this.maxPhyAddr) {
      mmuFail('E_GP', `CR3 ${formatHex(value)} sets bits at or above MAXPHYADDR ${this.maxPhyAddr}`, {
        value,
      });
    }
    const pcide = (this._cr4 & CR4_PCIDE) !== 0;
    if (noFlush && !pcide)
      mmuFail('E_GP', 'CR3 bit 63 (no flush) is reserved while CR4.PCIDE = 0', { value });
    this._cr3 = value;
    this.root = value - (value % PAGE_SIZE_4K);
    this.rootW = this.root + PAGE_SIZE_4K <= this.f32.length * 4 ? this.root / 4 : NO_WORD;
    this.pcid = pcide ? (value % PAGE_SIZE_4K) & CR3_PCID_MASK : 0;
    if (!noFlush) {
      this.tlb.flushes.cr3++;
      if (pcide) this.tlb.dropPcid(this.pcid);
      else this.tlb.dropNonGlobal();
    }
  }

  /**
   * MOV to CR4. Models PAE, PGE, PCIDE, SMEP, SMAP, PKE. Invalidation as SDM §4.10.4.1: changing PGE or
   * clearing PCIDE flushes everything; changing PAE or setting SMEP flushes everything (the SDM asks
   * for the current PCID; more is allowed); other rights-relevant changes (SMEP 1→0, SMAP, PKE)
   * re-evaluate cached rights without dropping entries.
   *
   * @throws VmkitError `E_UNSUPPORTED` for LA57 or PKS; `E_GP` for clearing PAE while IA32_EFER.LMA = 1,
   *   or setting PCIDE while LMA = 0 or while CR3 bits 11..0 ≠ 0; `E_INVALID`/`E_RANGE` for a value
   *   that is not a 32-bit integer. State is unchanged on error.
   */
  writeCr4(value: number): void {
    value = check32(value, 'CR4');
    if ((value & CR4_RESERVED) !== 0) {
      mmuFail(
        'E_GP',
        `CR4 ${formatHex(value)} sets reserved bits ${formatHex((value & CR4_RESERVED) >>> 0)}`,
        {
          value,
        },
      );
    }
    if ((value & CR4_LA57) !== 0)
      mmuFail('E_UNSUPPORTED', 'CR4.LA57 (5-level paging) is not modelled', { value });
    if ((value & CR4_PKS) !== 0)
      mmuFail('E_UNSUPPORTED', 'CR4.PKS (supervisor protection keys) is not modelled', { value });
    const old = this._cr4;
    const lma = (this._efer & EFER_LMA) !== 0;
    if (lma && (value & CR4_PAE) === 0)
      mmuFail('E_GP', 'CR4.PAE cannot be cleared in IA-32e mode', { value });
    const setsPcide = (value & CR4_PCIDE) !== 0 && (old & CR4_PCIDE) === 0;
    if (setsPcide && !lma) mmuFail('E_GP', 'CR4.PCIDE can be set only in IA-32e mode', { value });
    if (setsPcide && this._cr3 % PAGE_SIZE_4K !== 0) {
      mmuFail('E_GP', 'CR4.PCIDE can be set only while CR3 bits 11..0 are 0', { value, cr3: this._cr3 });
    }
    this._cr4 = value >>> 0;
    const ch = old ^ value;
    const flush =
      (ch & CR4_PGE) !== 0 ||
      (ch & CR4_PAE) !== 0 ||
      ((old & CR4_PCIDE) !== 0 && (value & CR4_PCIDE) === 0) ||
      ((value & CR4_SMEP) !== 0 && (old & CR4_SMEP) === 0);
    this.pcid = (value & CR4_PCIDE) !== 0 ? (this._cr3 % PAGE_SIZE_4K) & CR3_PCID_MASK : 0;
    if (flush) {
      this.tlb.flushes.cr4++;
      this.tlb.flushAll();
    }
    this.derive();
  }

  /**
   * WRMSR IA32_EFER. Models LME (bit 8) and NXE (bit 11); LMA (bit 10) is read-only (LME && CR0.PG).
   * Changing NXE flushes the TLB (XD changes meaning: reserved when NXE = 0).
   *
   * @throws VmkitError `E_GP` for changing LME while CR0.PG = 1; `E_INVALID`/`E_RANGE` for a value that
   *   is not a 32-bit integer. State is unchanged on error.
   */
  writeEfer(value: number): void {
    value = check32(value, 'IA32_EFER');
    if ((value & EFER_RESERVED) !== 0) {
      mmuFail(
        'E_GP',
        `IA32_EFER ${formatHex(value)} sets reserved bits ${formatHex((value & EFER_RESERVED) >>> 0)}`,
        { value },
      );
    }
    const pg = (this._cr0 & CR0_PG) !== 0;
    if (pg && ((value ^ this._efer) & EFER_LME) !== 0)
      mmuFail('E_GP', 'IA32_EFER.LME cannot change while paging', { value });
    const old = this._efer;
    let v = value & ~EFER_LMA;
    if (pg && (v & EFER_LME) !== 0) v |= EFER_LMA;
    this._efer = v >>> 0;
    if (((old ^ v) & EFER_NXE) !== 0) {
      this.tlb.flushes.efer++;
      this.tlb.flushAll();
    }
    this.derive();
  }

  /** WRPKRU: re-evaluates the rights of cached entries (keys are cached, PKRU is read at each access). */
  writePkru(value: number): void {
    this._pkru = check32(value, 'PKRU');
    this.derive();
  }

  /** STAC/CLAC (RFLAGS.AC): no TLB work, the access class carries it. */
  setAc(ac: boolean): void {
    this._ac = ac;
    this.acOff = ac ? 8 : 0;
    classTable(ac, this.cls);
  }

  // ------------------------------------------------------------------ invalidation

  /**
   * INVLPG: drops the TLB entries of the page holding `va` for the current PCID and global ones (every
   * 4 KiB piece of a large page).
   */
  invlpg(va: VirtAddr): void {
    checkVa(va);
    this.tlb.flushes.invlpg++;
    this.tlb.dropPage(Math.floor(va / PAGE_SIZE_4K), this.pcid, true);
  }

  /**
   * INVPCID. Type 0 (`INVPCID_ADDRESS`): the non-global entries of `va`'s page tagged `pcid`; type 1:
   * every non-global entry of `pcid`; type 2: everything; type 3: every non-global entry.
   *
   * @throws VmkitError `E_GP` for a type outside 0..3, a PCID above 4095, or types 0/1 with PCID ≠ 0
   *   while CR4.PCIDE = 0 (as the instruction's #GP(0) conditions)
   */
  invpcid(type: number, pcid: number, va: VirtAddr = 0 as VirtAddr): void {
    if (!(type === 0 || type === 1 || type === 2 || type === 3))
      mmuFail('E_GP', `INVPCID type ${type} is not 0..3`, { type });
    if (!Number.isInteger(pcid) || pcid < 0 || pcid > CR3_PCID_MASK) {
      mmuFail('E_GP', `INVPCID descriptor PCID ${pcid} is not in 0..4095`, { pcid });
    }
    if (type <= 1 && pcid !== 0 && (this._cr4 & CR4_PCIDE) === 0) {
      mmuFail('E_GP', `INVPCID type ${type} with PCID ${pcid} while CR4.PCIDE = 0`, { type, pcid });
    }
    if (type === 0) checkVa(va);
    this.tlb.flushes.invpcid++;
    if (type === 0) this.tlb.dropPage(Math.floor(va / PAGE_SIZE_4K), pcid, false);
    else if (type === 1) this.tlb.dropPcid(pcid);
    else if (type === 2) this.tlb.flushAll();
    else this.tlb.dropNonGlobal();
  }

  /** Drops every TLB entry (counted as `explicit`). */
  flushTlb(): void {
    this.tlb.flushes.explicit++;
    this.tlb.flushAll();
  }

  // ------------------------------------------------------------------ access path
  // The five access methods repeat the same inline hit test on purpose: each must stay small enough
  // for V8 to inline it into the caller's loop, and a shared helper would add a call or an inlining
  // level (and a double argument to a call that is not inlined is boxed).

  /**
   * Translates `va` for an access (`ACCESS_*` bits). Sets A/D bits and fills the TLB as the CPU does.
   *
   * @param va a `VirtAddr` (an integer in [0, 2^48)); anything else is a #GP fault (vector 13)
   * @param access one of the 16 access values; anything else throws `E_INVALID`
   * @returns the physical address, or {@link FAULT} (−1) with {@link fault} (and {@link cr2} for a #PF)
   *   set. With CR0.PG = 0 the physical address is `va` itself.
   */
  translate(va: number, access: Access): number {
    // Anything but two Numbers is refused first (`typeof` folds away where V8 knows the types, e.g. a
    // constant access and an address computed in arithmetic or read from a typed array). The slot's
    // tags are indexed by the access value (see `tlb.ts`): no class lookup. For a constant `access` the
    // position folds to a literal, plus `acOff` for a supervisor access; implicit accesses and numbers
    // that are not an access value (`a !== access`) skip the inline test. Keys are integers (vpn ×
    // 8192 + the PCID, or + 4096 for a global entry) and k = 2 × (va − its page offset): an integer va
    // gives an even k (vpn × 8192), a fraction of .5 an odd k, which the parity test refuses (it would
    // equal a neighbouring PCID's key), any other fraction a k that equals no key; an integer outside
    // [0, 2^48) gives a k outside the keys' range, as no fill ever places such a key: what misses is
    // validated before the walk (`vh`/`vl` give back `va` exactly only for an integer in [0, 2^48)).
    if (typeof va !== 'number' || typeof access !== 'number') return this.refuse(va, access);
    const lo = va | 0; // bits 31..0 of va (ToInt32 is exact modulo 2^32)
    const tags = this.tags;
    const b = (lo >>> 8) & (tags.length - 16); // slot × 16: page-number bits 19..0 (≤ 2^20 slots)
    const a = access & 7;
    if (a === access) {
      const t = tags[b | ((a & 4) !== 0 ? a : (a & 3) | this.acOff)];
      const k = (va - (lo & 0xfff)) * 2; // vpn * 8192
      if ((t === k + this.pcid || t === k + HOT_GLOBAL) && (k & 1) === 0) {
        this.cnt[C_HITS]!++;
        return va + tags[b | 12]!;
      }
    }
    this.io[0] = va; // the miss path validates it (walkFast, slowAccess)
    const fn = this.walkFast(access, va & 0x3fffffff, (va / 1073741824) | 0);
    if (fn >= 0) return fn * HOT_PAGE + (lo & 0xfff);
    return this.slowAccess(access, OP_TRANSLATE) < 0 ? HOT_FAULT : this.io[2]!;
  }

  /**
   * Reads the little-endian u32 at `va` (any alignment; a read across a page boundary translates both
   * pages, the lower first).
   *
   * @param va a `VirtAddr`; anything else is a #GP fault
   * @param access `ACCESS_READ` (default) or `ACCESS_EXEC` for a fetch, plus `ACCESS_USER`/`ACCESS_IMPLICIT`
   *   (a value outside the 16 access values throws `E_INVALID`)
   * @returns the value (0..2^32−1), or {@link FAULT} (−1). Physical addresses outside RAM read as all ones.
   */
  read32(va: number, access: Access = HOT_READ): number {
    if (typeof va !== 'number' || typeof access !== 'number') return this.refuse(va, access);
    const lo = va | 0; // bits 31..0 of va (ToInt32 is exact modulo 2^32)
    const tags = this.tags;
    const b = (lo >>> 8) & (tags.length - 16); // slot × 16: page-number bits 19..0 (≤ 2^20 slots)
    const a = access & 7;
    if (a === access) {
      const t = tags[b | ((a & 4) !== 0 ? a : (a & 3) | this.acOff)];
      const k = (va - (lo & 0xfff)) * 2; // vpn * 8192
      if ((t === k + this.pcid || t === k + HOT_GLOBAL) && (k & 1) === 0) {
        const w = (lo + this.words[(b << 1) | 26]!) >>> 2; // (pa mod 2^32) / 4, pa < 2^30 in flat memory
        const f = this.f32;
        if ((lo & 3) === 0 && w < f.length) {
          this.cnt[C_HITS]!++;
          return f[w]!;
        }
      }
    }
    this.io[0] = va; // the miss path validates it (walkFast, slowAccess)
    if ((lo & 3) === 0) {
      const fn = this.walkFast(access, va & 0x3fffffff, (va / 1073741824) | 0);
      if (fn >= 0) return this.f32[(fn << 10) | ((lo & 0xfff) >>> 2)]!;
    }
    return this.slowAccess(access, OP_READ32) < 0 ? HOT_FAULT : this.io32[8]!;
  }

  /**
   * Writes the u32 `value` (mod 2^32) at `va`, any alignment (across a page boundary both pages are
   * translated before anything is written). `ACCESS_WRITE` is added to `access`.
   *
   * @param va a `VirtAddr`; anything else is a #GP fault
   * @returns true when written, false on a fault ({@link fault} says which). Writes outside RAM are dropped.
   */
  write32(va: number, value: number, access: Access = HOT_WRITE): boolean {
    if (typeof va !== 'number' || typeof access !== 'number') return this.refuse(va, access) === 0;
    const lo = va | 0; // bits 31..0 of va (ToInt32 is exact modulo 2^32)
    const tags = this.tags;
    const b = (lo >>> 8) & (tags.length - 16); // slot × 16: page-number bits 19..0 (≤ 2^20 slots)
    const a = access & 7;
    if (a === access) {
      const p = a | 1;
      const t = tags[b | ((p & 4) !== 0 ? p : (p & 3) | this.acOff)];
      const k = (va - (lo & 0xfff)) * 2; // vpn * 8192
      if ((t === k + this.pcid || t === k + HOT_GLOBAL) && (k & 1) === 0) {
        const w = (lo + this.words[(b << 1) | 26]!) >>> 2; // (pa mod 2^32) / 4, pa < 2^30 in flat memory
        const f = this.f32;
        if ((lo & 3) === 0 && w < f.length) {
          this.cnt[C_HITS]!++;
          f[w] = value;
          return true;
        }
      }
    }
    const io = this.io;
    io[0] = va; // the miss path validates it (walkFast, slowAccess)
    io[1] = value;
    const wa = access + (~access & 1); // access | 1, but a non-integer stays one (refused below)
    if ((lo & 3) === 0) {
      const fn = this.walkFast(wa, va & 0x3fffffff, (va / 1073741824) | 0);
      if (fn >= 0) {
        this.f32[(fn << 10) | ((lo & 0xfff) >>> 2)] = value;
        return true;
      }
    }
    return this.slowAccess(wa, OP_WRITE32) === 0;
  }

  /** Reads the byte at `va`; returns it (0..255) or {@link FAULT}. Outside RAM reads 0xff. Arguments as {@link read32}. */
  read8(va: number, access: Access = HOT_READ): number {
    if (typeof va !== 'number' || typeof access !== 'number') return this.refuse(va, access);
    const lo = va | 0; // bits 31..0 of va (ToInt32 is exact modulo 2^32)
    const tags = this.tags;
    const b = (lo >>> 8) & (tags.length - 16); // slot × 16: page-number bits 19..0 (≤ 2^20 slots)
    const a = access & 7;
    if (a === access) {
      const t = tags[b | ((a & 4) !== 0 ? a : (a & 3) | this.acOff)];
      const k = (va - (lo & 0xfff)) * 2; // vpn * 8192
      if ((t === k + this.pcid || t === k + HOT_GLOBAL) && (k & 1) === 0) {
        const pa = (lo + this.words[(b << 1) | 26]!) >>> 0;
        const f = this.f8;
        if (pa < f.length) {
          this.cnt[C_HITS]!++;
          return f[pa]!;
        }
      }
    }
    this.io[0] = va; // the miss path validates it (walkFast, slowAccess)
    const fn = this.walkFast(access, va & 0x3fffffff, (va / 1073741824) | 0);
    if (fn >= 0) return this.f8[(fn << 12) | (lo & 0xfff)]!;
    return this.slowAccess(access, OP_READ8) < 0 ? HOT_FAULT : this.io32[8]!;
  }

  /**
   * Writes the low byte of `value` at `va`; returns false on a fault. `ACCESS_WRITE` is added to
   * `access`. Arguments as {@link write32}.
   */
  write8(va: number, value: number, access: Access = HOT_WRITE): boolean {
    if (typeof va !== 'number' || typeof access !== 'number') return this.refuse(va, access) === 0;
    const lo = va | 0; // bits 31..0 of va (ToInt32 is exact modulo 2^32)
    const tags = this.tags;
    const b = (lo >>> 8) & (tags.length - 16); // slot × 16: page-number bits 19..0 (≤ 2^20 slots)
    const a = access & 7;
    if (a === access) {
      const p = a | 1;
      const t = tags[b | ((p & 4) !== 0 ? p : (p & 3) | this.acOff)];
      const k = (va - (lo & 0xfff)) * 2; // vpn * 8192
      if ((t === k + this.pcid || t === k + HOT_GLOBAL) && (k & 1) === 0) {
        const pa = (lo + this.words[(b << 1) | 26]!) >>> 0;
        const f = this.f8;
        if (pa < f.length) {
          this.cnt[C_HITS]!++;
          f[pa] = value;
          return true;
        }
      }
    }
    const io = this.io;
    io[0] = va; // the miss path validates it (walkFast, slowAccess)
    io[1] = value;
    const wa = access + (~access & 1); // access | 1, but a non-integer stays one (refused below)
    const fn = this.walkFast(wa, va & 0x3fffffff, (va / 1073741824) | 0);
    if (fn >= 0) {
      this.f8[(fn << 12) | (lo & 0xfff)] = value;
      return true;
    }
    return this.slowAccess(wa, OP_WRITE8) === 0;
  }

  /**
   * An access the methods refuse before any walk: `access` outside the 16 access values throws
   * `E_INVALID` (a programming error of the caller, not of the simulated program); a `va` that is not
   * an integer in [0, 2^48) is a #GP(0) (the CPU's answer to a non-canonical address): the fault
   * record gets vector 13, error code 0, level 0, `address` = `va` when it is a Number (else NaN) and
   * `value` = `va` as passed. Returns FAULT.
   */
  private refuse(va: unknown, access: unknown): number {
    if (!isAccess(access)) {
      fail(
        'E_INVALID',
        `access ${describeValue(access)} is not an access value (an ACCESS_* combination, an integer in 0..15)`,
        { access },
      );
    }
    const f = this.fault;
    f.vector = VECTOR_GP;
    f.address = (typeof va === 'number' ? va : Number.NaN) as VirtAddr;
    f.value = va;
    f.errorCode = 0;
    f.level = 0;
    this.cnt[C_FAULTS]!++;
    return HOT_FAULT;
  }

  /**
   * The translation of `va` for `access` as a debugger sees it: no A/D writes, no TLB fill, no
   * counters, no CR2 — the tables as they are in memory (the TLB is not consulted).
   *
   * @throws VmkitError `E_INVALID`/`E_RANGE` for a `va` that is not a VirtAddr (an integer in
   *   [0, 2^48)) or an access outside 0..15
   */
  probe(va: VirtAddr, access: Access = ACCESS_READ): ProbeResult {
    checkVa(va);
    if (!isAccess(access)) {
      fail(
        'E_INVALID',
        `access ${describeValue(access)} is not an access value (an ACCESS_* combination, an integer in 0..15)`,
        { access },
      );
    }
    if (this.pagingOn === 0) {
      return {
        ok: true,
        pa: va as number as PhysAddr,
        leafVa: (va - (va % PAGE_SIZE_4K)) as VirtAddr,
        size: PAGE_SIZE_4K,
        writable: true,
        user: true,
        executable: true,
        global: false,
        accessed: false,
        dirty: false,
        protectionKey: 0,
        steps: [],
      };
    }
    this.io[0] = va;
    const pa = this.walk(access, false) < 0 ? HOT_FAULT : this.io[3]!;
    const steps: WalkStep[] = [];
    const levels = 5 - this.wLevel;
    for (let n = 0; n < levels; n++) {
      const addr = this.wAddr[n]!;
      steps.push({ level: 4 - n, addr: addr as PhysAddr, lo: this.wLo[n]!, hi: this.readWord(addr + 4) });
    }
    if (pa < 0) return { ok: false, errorCode: this.wError, level: this.wLevel, steps };
    const size = (
      this.wLevel === 1 ? PAGE_SIZE_4K : this.wLevel === 2 ? PAGE_SIZE_2M : PAGE_SIZE_1G
    ) as PageSize;
    const eff = this.wEff;
    return {
      ok: true,
      pa: pa as PhysAddr,
      leafVa: (va - (va % size)) as VirtAddr,
      size,
      writable: (eff & EFF_RW) !== 0,
      user: (eff & EFF_US) !== 0,
      executable: (eff & EFF_XD) === 0 || (this.st & ST_NXE) === 0,
      global: (eff & EFF_G) !== 0,
      accessed: (this.wLeafLo & PTE_A) !== 0,
      dirty: (this.wLeafLo & PTE_D) !== 0,
      protectionKey: (this.wLeafHi >>> 27) & 15,
      steps,
    };
  }

  /** The counters (a snapshot object). */
  stats(): MmuStats {
    const t = this.tlb;
    const c = this.cnt;
    return {
      hits: c[C_HITS]!,
      misses: c[C_MISSES]!,
      rightsMisses: c[C_RIGHTS]!,
      dirtyRewalks: c[C_DIRTY]!,
      walks: c[C_WALKS]!,
      faults: c[C_FAULTS]!,
      faultsNotPresent: c[C_NOT_PRESENT]!,
      faultsProtection: c[C_PROTECTION]!,
      faultsReserved: c[C_RESERVED]!,
      fills: t.fills,
      evictions: t.evictions,
      invalidated: t.invalidated,
      flushes: { ...t.flushes },
      tlbValid: t.validCount,
    };
  }

  /** Sets every counter to 0. */
  resetStats(): void {
    this.cnt.fill(0);
    const t = this.tlb;
    t.fills = t.evictions = t.invalidated = 0;
    for (const k of Object.keys(t.flushes) as Array<keyof typeof t.flushes>) t.flushes[k] = 0;
  }

  // ------------------------------------------------------------------ slow paths

  /**
   * Everything the inline hit test of the access methods does not serve, in the common case, in one
   * small function (V8 compiles it tighter than the general path): a hit by access class (an implicit
   * access, or the slow path's lookup), or a miss or rights miss whose walk is the common one: flat
   * memory with every table and the page below 4 GiB, every entry present with A = 1 and no reserved
   * bit, the access allowed and no D to set, the page inside RAM. That walk only reads; it counts,
   * fills slot `i` and returns the page's frame number (physical address / 4096, below 2^18: the flat
   * memory is at most 1 GiB). Anything else returns −1 with nothing counted or changed, and the
   * caller goes to {@link slowAccess}, which decides it from scratch with the full walk.
   *
   * The address arrives as two Smis, bits 29..0 (`vl`) and 47..30 (`vh`): a double argument above
   * 2^30 would be boxed in a fresh HeapNumber by the call.
   */
  private walkFast(access: number, vl: number, vh: number): number {
    const f = this.f32;
    // The caller's arguments, validated here rather than in the inlined methods: the address (also in
    // `io[0]`) must be an integer in [0, 2^48) (vh and vl give it back exactly only then) and `access`
    // one of the 16 values. Anything else goes to slowAccess, which refuses it. `va` is rebuilt from
    // the Smis, so the walk does not wait for the load of `io[0]` (the compare is off its path).
    const va = vh * 1073741824 + vl;
    if (va !== this.io[0] || vh >>> 18 !== 0 || (access & 15) !== access) return -1;
    if (this.pagingOn === 0 || f.length === 0) return -1;
    const vlo = va >>> 0; // bits 31..0 (ToUint32 is exact modulo 2^32)
    const vhi = vh >>> 2; // bits 47..32
    const tags = this.tags;
    const i = (vlo >>> 12) & this.mask; // mask < 2^20
    const b = i << 4;
    const vpn = (va - (vlo & 0xfff)) * (1 / 4096);
    const k = vpn * HOT_KEY_SCALE;
    const key = tags[b | 14]!; // TLB_KEY
    const held = key === k + this.pcid || key === k + HOT_GLOBAL;
    const cls = this.cls[access]!;
    // The tag of class c is at position c, c + 1 or c + 2 of the slot (TLB_CLASS_POS).
    if (held && tags[b + cls + (cls < 3 ? 0 : cls < 6 ? 1 : 2)] === key) {
      this.cnt[C_HITS]!++;
      return (va - (vlo & 0xfff) + tags[b | 12]!) / HOT_PAGE;
    }
    const n = f.length - 1; // word w and w + 1 are in range when w < n
    // Each level's entry is read without a check: a not-present or malformed entry only sends the
    // walk to some other entry inside the memory (the indexes are bounds-checked), and everything is
    // checked once at the end: P and A in every entry (`acc`), no reserved bit and no address bit
    // above 4 GiB in any high word (`xd`), PS not set in the PML4E and the large leaves' reserved
    // bits (`r`). Entry word indexes are even, so the high word is at `w | 1`.
    let w = this.rootW + ((vhi >>> 6) & 0x3fe);
    if (w >= n) return -1;
    let lo = f[w]!;
    let hi = f[w | 1]!;
    let acc = lo;
    let xd = hi;
    let r = lo & 0x80; // PS is reserved in a PML4E
    w = ((lo >>> 2) & 0x3ffffc00) | ((((vhi & 0x7f) << 2) | (vlo >>> 30)) << 1);
    if (w >= n) return -1;
    lo = f[w]!;
    hi = f[w | 1]!;
    acc &= lo;
    xd |= hi;
    let sh = 18; // log2 of the leaf's 4 KiB pages
    let pa4k: number;
    if ((lo & 0x80) === 0) {
      w = ((lo >>> 2) & 0x3ffffc00) | ((vlo >>> 20) & 0x3fe);
      if (w >= n) return -1;
      lo = f[w]!;
      hi = f[w | 1]!;
      acc &= lo;
      xd |= hi;
      if ((lo & 0x80) === 0) {
        w = ((lo >>> 2) & 0x3ffffc00) | ((vlo >>> 11) & 0x3fe);
        if (w >= n) return -1;
        lo = f[w]!;
        hi = f[w | 1]!;
        acc &= lo;
        xd |= hi;
        sh = 0;
        pa4k = (lo & 0xfffff000) >>> 0;
      } else {
        r |= lo & 0x1fe000; // reserved bits 20..13 of a 2 MiB PDE
        sh = 9;
        pa4k = ((lo & 0xffe00000) >>> 0) + (vlo & 0x1ff000);
      }
    } else {
      r |= lo & 0x3fffe000; // reserved bits 29..13 of a 1 GiB PDPTE
      pa4k = ((lo & 0xc0000000) >>> 0) + (vlo & 0x3ffff000);
    }
    if ((r | (xd & (this.rsvdHi | 0xfffff)) | (~acc & 0x21)) !== 0) return -1;
    if (pa4k + HOT_PAGE > this.memSize) return -1;
    let eff = (((hi >>> 27) & 15) << 8) | ((acc >>> 1) & 3);
    if ((xd & 0x8000_0000) !== 0) eff |= 4;
    if ((lo & 0x100 & -this.pgeOn) !== 0) eff |= 16;
    let m = this.allow[(eff & 7) | (((eff >>> 8) & 15) << 3)]!;
    if (((m >> cls) & 1) === 0) return -1;
    if ((lo & 0x40) !== 0) eff |= 8;
    else {
      if (((WRITE_CLASS_MASK >> cls) & 1) !== 0) return -1;
      m &= ~WRITE_CLASS_MASK;
    }
    this.countWalk(held, cls, i);
    const tag = k + ((eff & 16) !== 0 ? HOT_GLOBAL : this.pcid);
    this.tlb.place(i, tag, pa4k - vpn * HOT_PAGE, eff, vpn - ((vlo >>> 12) & ((1 << sh) - 1)), sh, m);
    return pa4k / HOT_PAGE;
  }

  /**
   * Every access {@link walkFast} did not serve: a data access crossing into the next page (to
   * {@link crossPage}), paging off, a walk outside the common case (faults, A/D updates, tables or
   * pages outside the flat memory) — and, for a data access (`op` ≠ {@link OP_TRANSLATE}), the read or
   * write itself. The virtual address is `io[0]` (and a value to write `io[1]`); returns 0 with the
   * physical address (translate) in `io[2]` or the value read in `io32[8]`, or FAULT.
   */
  private slowAccess(access: number, op: number): number {
    const io = this.io;
    const va = io[0]!;
    if (!(va >= 0 && va < 281474976710656 && Number.isInteger(va)) || (access & 15) !== access)
      return this.refuse(va, access);
    let pa = va;
    const vlo = va >>> 0; // bits 31..0 (ToUint32 is exact modulo 2^32)
    if (op !== OP_TRANSLATE && (vlo & 0xfff) + (op <= OP_WRITE32 ? 4 : 1) > HOT_PAGE) {
      return this.crossPage(access, op);
    }
    if (this.pagingOn !== 0) {
      const fn = this.walkFast(access, va & 0x3fffffff, (va / 1073741824) | 0);
      if (fn >= 0) {
        pa = fn * HOT_PAGE + (vlo & 0xfff);
      } else {
        const i = (vlo >>> 12) & this.mask; // mask < 2^20
        const k = (va - (vlo & 0xfff)) * 2; // vpn * 8192
        const key = this.tags[(i << 4) | 14]!; // TLB_KEY
        const held = key === k + this.pcid || key === k + HOT_GLOBAL;
        this.countWalk(held, this.cls[access]!, i);
        if (this.walkFill(access, i, held) < 0) return HOT_FAULT;
        pa = io[3]!;
      }
    }
    // The data access, inside one page.
    switch (op) {
      case OP_TRANSLATE:
        io[2] = pa;
        return 0;
      case OP_READ32: {
        const f = this.f32;
        if (pa + 4 > this.memSize) this.io32[8] = OPEN_BUS;
        else this.io32[8] = f.length !== 0 && (pa & 3) === 0 ? f[pa >>> 2]! : this.mem.read32(pa);
        return 0;
      }
      case OP_WRITE32: {
        if (pa + 4 > this.memSize) return 0;
        const f = this.f32;
        if (f.length !== 0 && (pa & 3) === 0) f[pa >>> 2] = io[1]!;
        else this.mem.write32(pa, io[1]! >>> 0);
        return 0;
      }
      case OP_READ8:
        this.io32[8] = pa + 1 <= this.memSize ? this.mem.read8(pa) : 0xff;
        return 0;
      default:
        if (pa + 1 <= this.memSize) this.mem.write8(pa, io[1]! & 0xff);
        return 0;
    }
  }

  /**
   * Counts a walk: a rights miss when slot `i` held the page (a dirty re-walk when access class `cls`
   * writes and the entry was filled with D = 0), a miss otherwise.
   */
  private countWalk(held: boolean, cls: number, i: number): void {
    const c = this.cnt;
    if (held) {
      c[C_RIGHTS]!++;
      if (((WRITE_CLASS_MASK >> cls) & 1) !== 0 && (this.words[(i << 5) | 27]! & EFF_D) === 0) c[C_DIRTY]!++;
    } else {
      c[C_MISSES]!++;
    }
    c[C_WALKS]!++;
  }

  /**
   * A miss or rights miss {@link walkFast} did not serve: the full walk (A/D
   * updates, faults), then the fill of slot `i` for a page inside RAM. `held`: slot `i` held the page
   * (dropped on a fault). Returns 0 with the physical address in `io[3]`, or FAULT (with the fault
   * record set). The virtual address is `io[0]`.
   */
  private walkFill(access: number, i: number, held: boolean): number {
    const t = this.tlb;
    const va = this.io[0]!;
    if (this.walk(access, true) < 0) {
      const f = this.fault;
      f.vector = VECTOR_PF;
      f.address = va as VirtAddr;
      f.value = undefined;
      f.errorCode = this.wError;
      f.level = this.wLevel;
      this.cr2 = va as VirtAddr;
      const c = this.cnt;
      c[C_FAULTS]!++;
      if ((this.wError & PF_P) === 0) c[C_NOT_PRESENT]!++;
      else if ((this.wError & PF_RSVD) !== 0) c[C_RESERVED]!++;
      else c[C_PROTECTION]!++;
      if (held) {
        t.flushes.fault++;
        t.drop(i);
      }
      return HOT_FAULT;
    }
    const pa4k = this.wPa4k;
    if (pa4k + HOT_PAGE <= this.memSize) {
      const eff = this.wEff;
      let m = this.allow[rIndex(eff)]!;
      if ((eff & EFF_D) === 0) m &= ~WRITE_CLASS_MASK;
      const lv = this.wLevel;
      const vpn = Math.floor(va / HOT_PAGE);
      const tag = vpn * HOT_KEY_SCALE + ((eff & EFF_G) !== 0 ? HOT_GLOBAL : this.pcid);
      const add = pa4k - vpn * HOT_PAGE;
      if (lv === 1) t.place(i, tag, add, eff, vpn, 0, m);
      else if (lv === 2) t.place(i, tag, add, eff, Math.floor(vpn * (1 / 512)) * 512, 9, m);
      else t.place(i, tag, add, eff, Math.floor(vpn * (1 / 262144)) * 262144, 18, m);
    }
    return 0;
  }

  /**
   * The page walk. Returns the physical address or −1; leaves its findings in the w* scratch fields.
   * With `side`, a successful access sets A on every entry walked and D on the leaf for a write.
   * A loop over the levels: the common miss is {@link walkFast}'s, so this walk runs for faults, A/D
   * updates and tables outside the flat memory only (unrolled, it was ≈ 10 % faster on faults: 74 →
   * 83 ns a not-present fault). Entries outside RAM read as all ones (a bus abort), which the
   * reserved-bit checks usually turn into RSVD faults.
   */
  private walk(access: number, side: boolean): number {
    // Entry addresses are computed as u32 word indexes into the single-chunk memory (a dependent chain
    // of integer ops per level; the double arithmetic it replaces cost ~7 ns a level). An entry above
    // 4 GiB, outside the memory, or in chunked memory (`f` empty) is read through `readWord`.
    const f = this.f32;
    const n = f.length - 1; // word w and w + 1 are in range when w < n
    const rsvdHi = this.rsvdHi;
    const wAddr = this.wAddr;
    const wLo = this.wLo;
    const va = this.io[0]!;
    const vlo = va >>> 0; // bits 31..0 (ToUint32 is exact modulo 2^32)
    const vhi = ((va - vlo) / 4294967296) | 0; // bits 47..32
    let acc = 0x26; // PTE_A | PTE_RW | PTE_US, ANDed with every entry
    let xd = 0; // ORed hi words: bit 31 is XD
    let lo = 0;
    let hi = 0;
    let level = 4;
    let tw = this.rootW; // the table as a word index into the single-chunk memory, or NO_WORD
    let ta = this.root; // the table's physical address
    for (;;) {
      // The entry's index in its table, times 2 (a word offset): VA bits 47..39, 38..30, 29..21, 20..12.
      const x =
        level === 4
          ? (vhi >>> 6) & 0x3fe
          : level === 3
            ? (((vhi & 0x7f) << 2) | (vlo >>> 30)) << 1
            : level === 2
              ? (vlo >>> 20) & 0x3fe
              : (vlo >>> 11) & 0x3fe;
      const k = 4 - level;
      const w = tw + x;
      if (w < n) {
        lo = f[w]!;
        hi = f[w + 1]!;
        wAddr[k] = w * 4;
      } else {
        const ea = ta + x * 4;
        lo = this.readWord(ea);
        hi = this.readWord(ea + 4);
        wAddr[k] = ea;
      }
      wLo[k] = lo;
      if ((lo & 1) === 0) return this.notPresent(access, level);
      // PS (bit 7; the PAT bit in a PTE) is reserved in a PML4E, makes a 1 GiB leaf of a PDPTE (bits
      // 29..13 reserved) and a 2 MiB leaf of a PDE (bits 20..13 reserved).
      const ps = level !== 1 && (lo & 0x80) !== 0;
      const r = !ps ? 0 : level === 4 ? 0x80 : level === 3 ? lo & 0x3fffe000 : lo & 0x1fe000;
      if (((hi & rsvdHi) | r) !== 0) return this.reserved(access, level);
      acc &= lo;
      xd |= hi;
      if (ps || level === 1) break;
      ta = (hi & 0xfffff) * 4294967296 + ((lo & 0xfffff000) >>> 0);
      tw = (hi & 0xfffff) === 0 ? (lo >>> 2) & 0x3ffffc00 : NO_WORD;
      level--;
    }
    // A present, well-formed leaf: rights, then A/D, then the address.
    const cls = this.cls[access]!;
    this.wLevel = level;
    this.wLeafLo = lo;
    this.wLeafHi = hi;
    const write = ((WRITE_CLASS_MASK >> cls) & 1) !== 0;
    let eff = ((hi >>> 27) & 15) << 8; // EFF_PK_SHIFT
    if ((acc & 2) !== 0) eff |= 1; // EFF_RW
    if ((acc & 4) !== 0) eff |= 2; // EFF_US
    if ((xd & 0x8000_0000) !== 0) eff |= 4; // EFF_XD: bit 63 of some entry
    if ((lo & 0x100 & -this.pgeOn) !== 0) eff |= 16; // EFF_G (with CR4.PGE)
    const r = this.rights[(rIndex(eff) << 3) | cls]!;
    if (r !== 0) {
      this.wError = this.accErr[access]! | r;
      return HOT_FAULT;
    }
    if ((lo & 0x40) !== 0 || write) eff |= 8; // EFF_D
    this.wEff = eff;
    const frame = (hi & 0xfffff) * 4294967296;
    const off4k = vlo & 0xfff;
    let pa: number;
    if (level === 1) pa = frame + ((lo & 0xfffff000) >>> 0) + off4k;
    else if (level === 2) pa = frame + ((lo & 0xffe00000) >>> 0) + (vlo & 0x1fffff);
    else pa = frame + ((lo & 0xc0000000) >>> 0) + (vlo & 0x3fffffff);
    this.wPa4k = pa - off4k;
    // A on every entry walked (skipped when all have it: `acc` ANDed their A bits), D on the leaf for a write.
    if (side && ((acc & 0x20) === 0 || (write && (lo & 0x40) === 0))) {
      const last = 4 - level;
      for (let k = 0; k < last; k++) {
        const v = wLo[k]!;
        if ((v & 0x20) === 0) this.writeWord(wAddr[k]!, (v | 0x20) >>> 0); // A
      }
      const nl = (lo | 0x20 | (write ? 0x40 : 0)) >>> 0; // A, and D on a write
      if (nl !== lo >>> 0) this.writeWord(wAddr[last]!, nl);
    }
    this.io[3] = pa;
    return 0;
  }

  private notPresent(access: number, level: number): number {
    this.wError = this.accErr[access]!;
    this.wLevel = level;
    return HOT_FAULT;
  }

  private reserved(access: number, level: number): number {
    this.wError = this.accErr[access]! | 9; // P | RSVD
    this.wLevel = level;
    return HOT_FAULT;
  }

  /**
   * A data access whose word crosses into the next page: both pages are translated (the lower first)
   * before any byte moves, so a fault on the second page leaves memory untouched. Returns the value
   * read (reads), 0 (writes) or FAULT.
   */
  private crossPage(access: number, op: number): number {
    const io = this.io;
    const va = io[0]!;
    const value = io[1]!;
    const off = va & 0xfff; // ToInt32 keeps the low bits of any integer va
    if (this.slowAccess(access, OP_TRANSLATE) < 0) return HOT_FAULT;
    const pa = io[2]!;
    let va2 = va - off + PAGE_SIZE_4K;
    if (va2 === VIRT_SPACE_END / 2) {
      const f = this.fault;
      f.vector = VECTOR_GP;
      f.address = va as VirtAddr;
      f.value = undefined;
      f.errorCode = 0;
      f.level = 0;
      this.cnt[C_FAULTS]!++;
      return HOT_FAULT;
    }
    if (va2 === VIRT_SPACE_END) va2 = 0;
    io[0] = va2;
    if (this.slowAccess(access, OP_TRANSLATE) < 0) return HOT_FAULT;
    const pa2 = io[2]!;
    const first = PAGE_SIZE_4K - off;
    let v = 0;
    for (let b = 0; b < 4; b++) {
      const p = b < first ? pa + b : pa2 + b - first;
      const inRam = p < this.memSize;
      if (op === OP_READ32) v |= (inRam ? this.mem.read8(p) : 0xff) << (8 * b);
      else if (inRam) this.mem.write8(p, (value >>> (8 * b)) & 0xff);
    }
    if (op === OP_READ32) this.io32[8] = v;
    return 0;
  }

  private readWord(pa: number): number {
    return pa + 4 <= this.memSize ? this.mem.read32(pa) : OPEN_BUS;
  }

  private writeWord(pa: number, v: number): void {
    if (pa + 4 > this.memSize) return;
    this.mem.write32(pa, v);
  }

  /** Recomputes everything derived from the registers (tables of the access path) and re-tags the TLB. */
  private derive(): void {
    const cr0 = this._cr0;
    const cr4 = this._cr4;
    const nxe = (this._efer & EFER_NXE) !== 0;
    this.pagingOn = (cr0 & CR0_PG) !== 0 ? 1 : 0;
    this.pgeOn = (cr4 & CR4_PGE) !== 0 ? 1 : 0;
    let st = 0;
    if ((cr0 & CR0_WP) !== 0) st |= ST_WP;
    if ((cr4 & CR4_SMEP) !== 0) st |= ST_SMEP;
    if ((cr4 & CR4_SMAP) !== 0) st |= ST_SMAP;
    if (nxe) st |= ST_NXE;
    if ((cr4 & CR4_PKE) !== 0) st |= ST_PKE;
    this.st = st;
    const m = this.maxPhyAddr;
    // hi-word bits 19..(M-32) are physical-address bits 51..M; bit 31 (XD) is reserved without NXE.
    let rsvd = m >= 52 ? 0 : (0xfffff >>> (m - 32)) << (m - 32);
    if (!nxe) rsvd |= 0x8000_0000;
    this.rsvdHi = rsvd;
    classTable(this._ac, this.cls);
    const idBit = (cr4 & CR4_SMEP) !== 0 || nxe ? PF_ID : 0;
    for (let a = 0; a < ACCESS_LIMIT; a++) {
      const c = this.cls[a]!;
      let e = 0;
      if (classIsWrite(c)) e |= PF_W;
      if (c >= 3 && c <= 5) e |= PF_U;
      if (c === 2 || c === 5) e |= idBit;
      this.accErr[a] = e;
    }
    for (let ri = 0; ri < 128; ri++) {
      const eff = (ri & 7) | ((ri >>> 3) << EFF_PK_SHIFT);
      let mask = 0;
      for (let c = 0; c < CLASS_COUNT; c++) {
        const r = rightsCheck(c, eff, st, this._pkru);
        this.rights[(ri << 3) | c] = r;
        if (r === 0) mask |= 1 << c;
      }
      this.allow[ri] = mask;
    }
    const allow = this.allow;
    this.tlb.retag((eff) => {
      let mk = allow[rIndex(eff)]!;
      if ((eff & EFF_D) === 0) mk &= ~WRITE_CLASS_MASK;
      return mk;
    });
  }
}

/** Index of the rights tables: RW/US/XD bits and the protection key. */
function rIndex(eff: number): number {
  return (eff & 7) | (((eff >>> EFF_PK_SHIFT) & 15) << 3);
}

/**
 * Accepts a 32-bit register value as an unsigned integer or as the int32 that `|` of the bit constants
 * produces (e.g. `CR0_PE | CR0_WP | CR0_PG` is negative), returns it unsigned.
 */
function check32(value: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value))
    fail('E_INVALID', `${what} ${describeValue(value)} is not an integer Number`, { value });
  if (value < -0x8000_0000 || value >= TWO32)
    fail('E_RANGE', `${what} ${describeValue(value)} is not a 32-bit value`, { value });
  return value >>> 0;
}

function checkVa(va: unknown): void {
  checkVirtAddr(va);
}
