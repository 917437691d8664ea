/**
 * Control-register, EFER and RFLAGS bits the MMU reads (Intel SDM Vol. 3A §2.5, §4.1.3). Registers are
 * held as Numbers; CR0 and CR4 fit in 32 bits. CR3 is held as `base + low 12 bits` (the PCID when
 * CR4.PCIDE = 1, PWT/PCD otherwise); its bit 63 (the "no flush" bit of MOV to CR3) is a separate
 * argument of `Mmu.writeCr3`, since it never stays in the register.
 *
 * @module
 */

/** CR0 bit 0, PE: protection enable (paging needs it). */
export const CR0_PE = 1 << 0;
/** CR0 bit 16, WP: supervisor writes honour read-only pages. */
export const CR0_WP = 1 << 16;
/** CR0 bit 31, PG: paging enable (a Number ≥ 2^31; compare with `!== 0` after `&`). */
export const CR0_PG = 0x8000_0000;

/** CR0 bit 29, NW: not write-through (with CD = 0 it is #GP). */
export const CR0_NW = 1 << 29;
/** CR0 bit 30, CD: cache disable. */
export const CR0_CD = 1 << 30;
/**
 * CR0 bits that are reserved (Intel SDM Vol. 3A §2.5): 15..6, 17 and 28..19. Setting one is #GP(0)
 * (`E_GP`). The defined bits are PE, MP, EM, TS, ET, NE (5..0), WP (16), AM (18), NW, CD, PG (31..29);
 * only PE, WP and PG change what the MMU does, the others are kept as written.
 */
export const CR0_RESERVED = 0x1ffa_ffc0;

/** CR3 bit 3, PWT (when CR4.PCIDE = 0). */
export const CR3_PWT = 1 << 3;
/** CR3 bit 4, PCD (when CR4.PCIDE = 0). */
export const CR3_PCD = 1 << 4;
/** CR3 bits 11..0: the PCID when CR4.PCIDE = 1. */
export const CR3_PCID_MASK = 0xfff;

/** CR4 bit 5, PAE (4-level paging needs it). */
export const CR4_PAE = 1 << 5;
/** CR4 bit 7, PGE: global pages survive CR3 loads. */
export const CR4_PGE = 1 << 7;
/** CR4 bit 12, LA57: 5-level paging (not modelled; setting it is `E_UNSUPPORTED`). */
export const CR4_LA57 = 1 << 12;
/** CR4 bit 17, PCIDE: process-context identifiers. */
export const CR4_PCIDE = 1 << 17;
/** CR4 bit 20, SMEP: supervisor instruction fetches from user-mode pages fault. */
export const CR4_SMEP = 1 << 20;
/** CR4 bit 21, SMAP: supervisor data accesses to user-mode pages fault (unless RFLAGS.AC for explicit ones). */
export const CR4_SMAP = 1 << 21;
/** CR4 bit 22, PKE: protection keys for user-mode pages (PKRU). */
export const CR4_PKE = 1 << 22;
/** CR4 bit 24, PKS: protection keys for supervisor pages (not modelled; setting it is `E_UNSUPPORTED`). */
export const CR4_PKS = 1 << 24;

/**
 * CR4 bits that are reserved (Intel SDM Vol. 3A §2.5): bit 15, 26 and 31..29. Setting one is #GP(0)
 * (`E_GP`). Bits 27 (LASS) and 28 (LAM_SUP) of newer processors are accepted and not modelled.
 */
export const CR4_RESERVED = 0xe400_8000 | 0;

/** IA32_EFER bit 0, SCE: SYSCALL enable (kept, not modelled). */
export const EFER_SCE = 1 << 0;
/** IA32_EFER bit 8, LME: long mode enable. */
export const EFER_LME = 1 << 8;
/** IA32_EFER bit 10, LMA: long mode active (read-only: LME and CR0.PG). */
export const EFER_LMA = 1 << 10;
/** IA32_EFER bit 11, NXE: the XD bit of paging entries is honoured (reserved when 0). */
export const EFER_NXE = 1 << 11;
/**
 * IA32_EFER bits that are reserved on Intel processors (SDM Vol. 4, MSR C000_0080H): 7..1, 9 and
 * 31..12 (the model's EFER is 32 bits). Setting one is #GP(0) (`E_GP`). LMA (bit 10) is read-only:
 * a value written there is ignored.
 */
export const EFER_RESERVED = 0xffff_f2fe | 0;

/** RFLAGS bit 18, AC: with CR4.SMAP, explicit supervisor data accesses to user pages are allowed. */
export const RFLAGS_AC = 1 << 18;

/** INVPCID type 0: one linear address in one PCID (global translations kept). */
export const INVPCID_ADDRESS = 0;
/** INVPCID type 1: every non-global translation of one PCID. */
export const INVPCID_SINGLE_CONTEXT = 1;
/** INVPCID type 2: every translation, global ones included, of every PCID. */
export const INVPCID_ALL_INCLUDING_GLOBAL = 2;
/** INVPCID type 3: every non-global translation of every PCID. */
export const INVPCID_ALL_NON_GLOBAL = 3;
