import {
  AddrRange,
  checkVirtRange,
  EXACT_LIMIT,
  formatPhysAddr,
  formatVirtRange,
  HIGHER_HALF_BITS,
  PHYS_SPACE_END,
  type PhysAddr,
  type VirtAddr,
} from '@vmkit/addr';
import { show, vmmFail } from './errors.js';
import type { MemoryMappingOps } from './owner.js';
import { checkPermissions, formatPermissions } from './permissions.js';

/** A half-open range `[start, end)` as callers write it (an {@link AddrRange} fits). */
export interface RangeLike {
  readonly start: number;
  readonly end: number;
}

/** What {@link VirtualMemoryMap}'s constructor takes. */
export interface VirtualMemoryMapInit {
  /** The virtual range `[start, end)` (half-open: the seed's inclusive `end` plus one). */
  vmarea: RangeLike;
  /**
   * The physical range `[start, end)` behind it, or `undefined` for a map with no physical area (resolved
   * through its owner on a fault, or never present). Same size as `vmarea` when given.
   */
  pmarea?: RangeLike | undefined;
  /** OR of {@link VirtualMemoryPermission} bits. */
  permissions: number;
  /** Shared (`MAP_SHARED`) or private; default `false`. */
  isShared?: boolean | undefined;
  /** The object the map belongs to, if any: it resolves faults (see {@link MemoryMappingOps}). */
  owner?: MemoryMappingOps | undefined;
  /**
   * The start the mapping had when it was created: the owner's page indexes count from it. Default
   * `vmarea.start`; parts of a split map keep their original's.
   */
  vmStart?: number | undefined;
}

/**
 * One memory map of an address space (Scarlet's `VirtualMemoryMap`): a virtual range, the physical range
 * behind it (or none), permissions, shared or private, and an optional owner. Immutable: the manager
 * replaces maps when it splits, shrinks, grows or merges them, so a map you hold keeps describing what it
 * described.
 *
 * Ranges are half-open: the seed's `MemoryArea { start: 0x1000, end: 0x1fff }` is
 * `{ start: 0x1000, end: 0x2000 }` here.
 */
export class VirtualMemoryMap {
  /** The virtual range `[start, end)`. */
  readonly vmarea: AddrRange<VirtAddr>;
  /** The physical range `[start, end)`, or `undefined` when the map has no physical area. */
  readonly pmarea: AddrRange<PhysAddr> | undefined;
  /** OR of {@link VirtualMemoryPermission} bits. */
  readonly permissions: number;
  /** Shared between address spaces (`MAP_SHARED`) or private. */
  readonly isShared: boolean;
  /** The object that resolves this map's faults, if any. */
  readonly owner: MemoryMappingOps | undefined;
  /** Where the owner's page index 0 is (the original start of the mapping). */
  readonly vmStart: VirtAddr;

  /**
   * Builds a map after checking every field's type and bounds. Alignment and overlap are checked when it
   * is added to a manager (with the seed's messages).
   *
   * @throws VmmError `E_INVALID` for a field of the wrong type, non-integers, unknown permission bits, a
   *   `pmarea` of another size than `vmarea`, or a `vmStart` above `vmarea.start` or in the other half;
   *   `E_RANGE` for an `end` below its `start`, a physical range outside `[0, 2^52)`; the codes of
   *   `checkVirtRange` (`E_RANGE`, `E_OVERFLOW`, `E_NONCANONICAL`) for a virtual range outside
   *   `[0, 2^48)` or across the canonical hole
   */
  constructor(init: VirtualMemoryMapInit) {
    if (typeof init !== 'object' || init === null) {
      vmmFail(
        'E_INVALID',
        'a memory map needs { vmarea, pmarea?, permissions, isShared?, owner?, vmStart? }',
        `got ${show(init)}`,
      );
    }
    const vm = checkRangeLike(init.vmarea, 'vmarea');
    const size = vm.end - vm.start;
    if (size < 0) vmmFail('E_RANGE', 'vmarea end is below its start', rangeText(vm), { vmarea: vm });
    checkVirtRange(vm.start, size, 'vmarea');
    let pm: AddrRange<PhysAddr> | undefined;
    if (init.pmarea !== undefined) {
      const p = checkRangeLike(init.pmarea, 'pmarea');
      if (p.end < p.start) vmmFail('E_RANGE', 'pmarea end is below its start', rangeText(p), { pmarea: p });
      if (p.start < 0 || p.end > PHYS_SPACE_END) {
        vmmFail('E_RANGE', 'pmarea must lie in the physical space [0, 2^52)', rangeText(p), { pmarea: p });
      }
      if (p.end - p.start !== size) {
        vmmFail(
          'E_INVALID',
          'pmarea and vmarea must have the same size',
          `${rangeText(p)} vs ${rangeText(vm)}`,
          {
            pmarea: p,
            vmarea: vm,
          },
        );
      }
      pm = AddrRange.of(p.start as PhysAddr, p.end) as AddrRange<PhysAddr>;
    }
    checkPermissions(init.permissions);
    const shared = init.isShared === undefined ? false : init.isShared;
    if (typeof shared !== 'boolean')
      vmmFail('E_INVALID', 'isShared must be a boolean', `got ${show(shared)}`);
    const owner = init.owner;
    if (owner !== undefined && (typeof owner !== 'object' || owner === null)) {
      vmmFail('E_INVALID', 'owner must be an object implementing MemoryMappingOps', `got ${show(owner)}`);
    }
    const vmStart = init.vmStart === undefined ? vm.start : init.vmStart;
    if (
      typeof vmStart !== 'number' ||
      !Number.isInteger(vmStart) ||
      vmStart < 0 ||
      vmStart > vm.start ||
      vmStart < HIGHER_HALF_BITS !== vm.start < HIGHER_HALF_BITS
    ) {
      vmmFail(
        'E_INVALID',
        'vmStart must be an address at or below vmarea.start, in the same half',
        `vmStart ${show(vmStart)}, vmarea ${rangeText(vm)}`,
        { vmStart },
      );
    }
    this.vmarea = AddrRange.virt(vm.start as VirtAddr, vm.end);
    this.pmarea = pm;
    this.permissions = init.permissions;
    this.isShared = shared;
    this.owner = owner;
    this.vmStart = vmStart as VirtAddr;
  }

  /** First virtual address (`vmarea.start`). */
  get start(): VirtAddr {
    return this.vmarea.start;
  }

  /** One past the last virtual address (`vmarea.end`, exclusive). */
  get end(): number {
    return this.vmarea.end;
  }

  /** Size in bytes. */
  get size(): number {
    return this.vmarea.end - this.vmarea.start;
  }

  /**
   * The physical address of `vaddr` through the physical area (the seed's `get_paddr`), or `undefined`
   * when `vaddr` is outside the map or the map has no physical area.
   */
  getPaddr(vaddr: number): PhysAddr | undefined {
    if (this.pmarea === undefined || !(vaddr >= this.vmarea.start && vaddr < this.vmarea.end))
      return undefined;
    return (this.pmarea.start + (vaddr - this.vmarea.start)) as PhysAddr;
  }

  /** `VirtualMemoryMap([0x1000, 0x2000) -> 0x80000000 rw-u private)`. */
  toString(): string {
    const pm = this.pmarea === undefined ? 'no physical area' : `-> ${formatPhysAddr(this.pmarea.start)}`;
    const owner = this.owner === undefined ? '' : ` owner ${this.owner.mmapOwnerName?.() ?? 'object'}`;
    return `VirtualMemoryMap(${formatVirtRange(this.vmarea)} ${pm} ${formatPermissions(this.permissions)} ${
      this.isShared ? 'shared' : 'private'
    }${owner})`;
  }

  /** @internal Builds a map from trusted parts (no checks). */
  static trusted(
    start: number,
    end: number,
    pmStart: number | undefined,
    permissions: number,
    isShared: boolean,
    owner: MemoryMappingOps | undefined,
    vmStart: number,
  ): VirtualMemoryMap {
    const m = Object.create(VirtualMemoryMap.prototype) as {
      -readonly [K in keyof VirtualMemoryMap]: VirtualMemoryMap[K];
    };
    m.vmarea = AddrRange.virt(start as VirtAddr, end);
    m.pmarea =
      pmStart === undefined
        ? undefined
        : (AddrRange.of(pmStart as PhysAddr, pmStart + (end - start)) as AddrRange<PhysAddr>);
    m.permissions = permissions;
    m.isShared = isShared;
    m.owner = owner;
    m.vmStart = vmStart as VirtAddr;
    return m as VirtualMemoryMap;
  }
}

function checkRangeLike(r: unknown, what: string): RangeLike {
  if (typeof r !== 'object' || r === null) {
    vmmFail('E_INVALID', `${what} must be a range { start, end } (half-open)`, `got ${show(r)}`, {
      [what]: r,
    });
  }
  const { start, end } = r as { start: unknown; end: unknown };
  for (const [k, v] of [
    ['start', start],
    ['end', end],
  ] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      vmmFail('E_INVALID', `${what}.${k} must be an integer`, `got ${show(v)}`, { [what]: r });
    }
    if (v < 0) vmmFail('E_RANGE', `${what}.${k} is negative`, `got ${show(v)}`, { [what]: r });
    if (v >= EXACT_LIMIT)
      vmmFail('E_OVERFLOW', `${what}.${k} is not below 2^53`, `got ${show(v)}`, { [what]: r });
  }
  return { start: start as number, end: end as number };
}

function rangeText(r: RangeLike): string {
  return `[${show(r.start)}, ${show(r.end)})`;
}
