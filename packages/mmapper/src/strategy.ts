/**
 * How a chunk is mapped (MMTk's `MmapStrategy`, `MmapProtection`, `HugePageSupport`) and what the mapping
 * is for (`MmapAnnotation`, with MMTk's display strings, e.g. `mmtk:space:immix`).
 *
 * @module
 */
import { describeValue, mmapperFail } from './errors.js';

/** Access rights of a mapping (MMTk's `MmapProtection`). */
export const MmapProtection = {
  /** Read and write: `PROT_READ | PROT_WRITE`. */
  ReadWrite: 'ReadWrite',
  /** Read, write and execute: `PROT_READ | PROT_WRITE | PROT_EXEC`. */
  ReadWriteExec: 'ReadWriteExec',
  /** No access: `PROT_NONE`. */
  NoAccess: 'NoAccess',
} as const;
/** One of {@link MmapProtection}. */
export type MmapProtection = (typeof MmapProtection)[keyof typeof MmapProtection];

/** POSIX `PROT_*` bits of a protection (MMTk's `into_native_flags`): ReadWrite 3, ReadWriteExec 7, NoAccess 0. */
export function protectionToNativeFlags(prot: MmapProtection): number {
  checkProtection(prot, 'protection');
  return prot === 'ReadWrite' ? 3 : prot === 'ReadWriteExec' ? 7 : 0;
}

/** Huge-page policy of a mapping (MMTk's `HugePageSupport`). */
export const HugePageSupport = {
  /** No huge pages. */
  No: 'No',
  /** Ask for transparent huge pages (`madvise(MADV_HUGEPAGE)` on Linux). */
  TransparentHugePages: 'TransparentHugePages',
} as const;
/** One of {@link HugePageSupport}. */
export type HugePageSupport = (typeof HugePageSupport)[keyof typeof HugePageSupport];

/** How to map (MMTk's `MmapStrategy`): the huge-page policy and the protection. */
export interface MmapStrategy {
  readonly hugePage: HugePageSupport;
  readonly prot: MmapProtection;
}

/** Builds a strategy (MMTk's `MmapStrategy::new(transparent_hugepages, prot)`). Frozen. */
function newStrategy(transparentHugepages: boolean, prot: MmapProtection): MmapStrategy {
  if (typeof transparentHugepages !== 'boolean') {
    mmapperFail('E_INVALID', `transparentHugepages ${describeValue(transparentHugepages)} is not a boolean`, {
      transparentHugepages,
    });
  }
  checkProtection(prot, 'protection');
  return Object.freeze({ hugePage: transparentHugepages ? 'TransparentHugePages' : 'No', prot });
}

const INTERNAL_MEMORY: MmapStrategy = Object.freeze({ hugePage: 'No', prot: 'ReadWrite' });

/** Strategy constructor and MMTk's predefined strategies. */
export const MmapStrategy = {
  /** MMTk's `MmapStrategy::new`: `{ hugePage: transparentHugepages ? TransparentHugePages : No, prot }`. */
  new: newStrategy,
  /** MMTk's own internal memory: no huge pages, read-write. */
  INTERNAL_MEMORY,
  /** Side metadata: same as {@link MmapStrategy.INTERNAL_MEMORY}. */
  SIDE_METADATA: INTERNAL_MEMORY,
  /** Tests: same as {@link MmapStrategy.INTERNAL_MEMORY}. */
  TEST: INTERNAL_MEMORY,
} as const;

/**
 * What a mapping is for (MMTk's `MmapAnnotation`): passed to the OS interface so mappings can be named
 * (MMTk names them with `prctl(PR_SET_VMA_ANON_NAME)`). Print with {@link formatMmapAnnotation}.
 */
export type MmapAnnotation =
  | { readonly kind: 'Space'; readonly name: string }
  | { readonly kind: 'SideMeta'; readonly space: string; readonly meta: string }
  | { readonly kind: 'Test'; readonly file: string; readonly line: number }
  | { readonly kind: 'Misc'; readonly name: string };

/** Constructors of {@link MmapAnnotation} values (frozen objects). */
export const MmapAnnotation = {
  /** A space's memory: displays as `mmtk:space:NAME`. */
  space: (name: string): MmapAnnotation => checkedAnno({ kind: 'Space', name }),
  /** Side metadata `meta` of space `space`: `mmtk:sidemeta:SPACE:META`. */
  sideMeta: (space: string, meta: string): MmapAnnotation => checkedAnno({ kind: 'SideMeta', space, meta }),
  /** A test at `file:line`: `mmtk:test:FILE:LINE` (MMTk's `mmap_anno_test!()`). */
  test: (file: string, line: number): MmapAnnotation => checkedAnno({ kind: 'Test', file, line }),
  /** Anything else: `mmtk:misc:NAME`. */
  misc: (name: string): MmapAnnotation => checkedAnno({ kind: 'Misc', name }),
} as const;

function checkedAnno(a: MmapAnnotation): MmapAnnotation {
  checkAnnotation(a);
  return Object.freeze(a);
}

/**
 * MMTk's display string of an annotation: `mmtk:space:NAME`, `mmtk:sidemeta:SPACE:META`,
 * `mmtk:test:FILE:LINE`, `mmtk:misc:NAME`.
 *
 * @throws MmapperError `E_INVALID` for something that is not an annotation
 */
export function formatMmapAnnotation(anno: MmapAnnotation): string {
  checkAnnotation(anno);
  switch (anno.kind) {
    case 'Space':
      return `mmtk:space:${anno.name}`;
    case 'SideMeta':
      return `mmtk:sidemeta:${anno.space}:${anno.meta}`;
    case 'Test':
      return `mmtk:test:${anno.file}:${anno.line}`;
    default:
      return `mmtk:misc:${anno.name}`;
  }
}

/** @internal Throws `E_INVALID` unless `prot` is one of {@link MmapProtection}. */
export function checkProtection(prot: unknown, what: string): asserts prot is MmapProtection {
  if (prot !== 'ReadWrite' && prot !== 'ReadWriteExec' && prot !== 'NoAccess') {
    mmapperFail(
      'E_INVALID',
      `${what} ${describeValue(prot)} is not an MmapProtection (ReadWrite, ReadWriteExec, NoAccess)`,
      { prot },
    );
  }
}

/** @internal Throws `E_INVALID` unless `s` is an {@link MmapStrategy}. Cheap: two property reads. */
export function checkStrategy(s: unknown): asserts s is MmapStrategy {
  if (typeof s !== 'object' || s === null) {
    mmapperFail('E_INVALID', `strategy ${describeValue(s)} is not an MmapStrategy { hugePage, prot }`, {
      strategy: s,
    });
  }
  const { hugePage, prot } = s as { hugePage?: unknown; prot?: unknown };
  if (hugePage !== 'No' && hugePage !== 'TransparentHugePages') {
    mmapperFail(
      'E_INVALID',
      `strategy.hugePage ${describeValue(hugePage)} is not a HugePageSupport (No, TransparentHugePages)`,
      { strategy: s },
    );
  }
  checkProtection(prot, 'strategy.prot');
}

/** @internal Throws `E_INVALID` unless `a` is an {@link MmapAnnotation}. No allocation when it is one. */
export function checkAnnotation(a: unknown): asserts a is MmapAnnotation {
  if (typeof a === 'object' && a !== null) {
    const o = a as {
      kind?: unknown;
      name?: unknown;
      space?: unknown;
      meta?: unknown;
      file?: unknown;
      line?: unknown;
    };
    const k = o.kind;
    if ((k === 'Space' || k === 'Misc') && typeof o.name === 'string') return;
    if (k === 'SideMeta' && typeof o.space === 'string' && typeof o.meta === 'string') return;
    if (k === 'Test' && typeof o.file === 'string' && isLine(o.line)) return;
  }
  annotationFail(a);
}

function isLine(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

function annotationFail(a: unknown): never {
  const bad = (why: string): never =>
    mmapperFail('E_INVALID', `annotation ${describeValue(a)} ${why}`, { annotation: a });
  if (typeof a !== 'object' || a === null) return bad('is not an MmapAnnotation');
  const o = a as Record<string, unknown>;
  const fields: Record<string, readonly string[]> = {
    Space: ['name'],
    Misc: ['name'],
    SideMeta: ['space', 'meta'],
    Test: ['file'],
  };
  const need = typeof o.kind === 'string' ? fields[o.kind] : undefined;
  if (need === undefined) return bad('has no kind Space, SideMeta, Test or Misc');
  for (const f of need) {
    if (typeof o[f] !== 'string') bad(`has a ${f} ${describeValue(o[f])} that is not a string`);
  }
  return bad(`has a line ${describeValue(o.line)} that is not an integer in [0, 2^32)`);
}
