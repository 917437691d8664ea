import { PAGE_SIZE_2M, PAGE_SIZE_4K, type PhysAddr, type VirtAddr, virtAddr } from '@vmkit/addr';
import { MemoryArea, MemorySet } from '@vmkit/memory-set';
import { LinearBackend } from '@vmkit/memory-set/x86_64';
import {
  BitmapFrameAllocator,
  CR4_PAE,
  CR4_PCIDE,
  CR4_PGE,
  Mmu,
  type PageFlags,
  PageMapper,
  PhysicalMemory,
} from '@vmkit/paging-x86_64';
import { simFail } from './errors.js';

/** Machine and kernel sizes and costs (all optional; see {@link DEFAULT_CONFIG}). */
export interface MachineConfig {
  /** RAM in bytes, a multiple of 4 KiB, at least 2 MiB. */
  ramBytes: number;
  /** CPUs (1–32). */
  cpus: number;
  /** TLB entries per CPU (a power of two). */
  tlbEntries: number;
  /** Time slice in simulated ns. */
  sliceNs: number;
  /** Simulated ns per memory access. */
  accessNs: number;
  /** Simulated ns the kernel spends on a page fault. */
  faultNs: number;
  /** Simulated ns per system call. */
  syscallNs: number;
  /** Simulated ns per context switch. */
  switchNs: number;
  /** Disk latency per request, ns. */
  diskLatencyNs: number;
  /** Disk bandwidth, bytes per second. */
  diskBytesPerSec: number;
  /** Seed of the run's PRNG. */
  seed: number;
}

/** Defaults: 64 MiB, 2 CPUs, 4096-entry TLBs, 1 ms slices, a 4 ms / 50 MB/s disk. */
export const DEFAULT_CONFIG: Readonly<MachineConfig> = Object.freeze({
  ramBytes: 64 * 2 ** 20,
  cpus: 2,
  tlbEntries: 4096,
  sliceNs: 1_000_000,
  accessNs: 1,
  faultNs: 1_000,
  syscallNs: 300,
  switchNs: 500,
  diskLatencyNs: 4_000_000,
  diskBytesPerSec: 50_000_000,
  seed: 1,
});

/** Physical memory below this is the firmware and kernel image: never handed out. */
export const RESERVED_LOW = 0x10_0000;
/** Where the kernel maps all of RAM (the direct map, as Linux's `PAGE_OFFSET`). */
export const DIRECT_MAP = virtAddr('0xffff888000000000');

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    simFail('E_CONFIG', `${name} ${String(v)} is not an integer in [${min}, ${max}]`, { [name]: v });
  return v;
}

/** Validates and completes a configuration. @throws SimError `E_CONFIG` naming the bad value */
export function resolveConfig(partial: Partial<MachineConfig> = {}): MachineConfig {
  const c = { ...DEFAULT_CONFIG, ...partial };
  checkInt('ramBytes', c.ramBytes, 2 ** 21, 2 ** 34);
  if (c.ramBytes % PAGE_SIZE_4K !== 0)
    simFail('E_CONFIG', `ramBytes ${c.ramBytes} is not a multiple of 4096`, { ramBytes: c.ramBytes });
  checkInt('cpus', c.cpus, 1, 32);
  checkInt('tlbEntries', c.tlbEntries, 1, 2 ** 20);
  if ((c.tlbEntries & (c.tlbEntries - 1)) !== 0)
    simFail('E_CONFIG', `tlbEntries ${c.tlbEntries} is not a power of two`, { tlbEntries: c.tlbEntries });
  checkInt('sliceNs', c.sliceNs, 1, 1e12);
  checkInt('accessNs', c.accessNs, 0, 1e6);
  checkInt('faultNs', c.faultNs, 0, 1e9);
  checkInt('syscallNs', c.syscallNs, 0, 1e9);
  checkInt('switchNs', c.switchNs, 0, 1e9);
  checkInt('diskLatencyNs', c.diskLatencyNs, 0, 1e12);
  checkInt('diskBytesPerSec', c.diskBytesPerSec, 1, 1e12);
  checkInt('seed', c.seed, 0, Number.MAX_SAFE_INTEGER);
  return c;
}

/** One simulated CPU: its MMU/TLB (PCIDs on) and what it runs. */
export interface Cpu {
  readonly id: number;
  readonly mmu: Mmu;
  /** Shootdown IPIs this CPU received. */
  shootdownsReceived: number;
  /** Pages invalidated on this CPU by shootdowns. */
  pagesShotDown: number;
}

/**
 * The hardware: RAM, the frame allocator (reference counts), CPUs each with an MMU and TLB of
 * `@vmkit/paging-x86_64` with CR4.PCIDE set, and the kernel's own page table: a `@vmkit/memory-set`
 * holding the direct map of all RAM in the higher half (linear backend, 2 MiB pages), whose PML4
 * entries every process's table shares.
 */
export class Machine {
  readonly config: MachineConfig;
  readonly mem: PhysicalMemory;
  readonly frames: BitmapFrameAllocator;
  readonly cpus: Cpu[];
  readonly kernelTable: PageMapper;
  readonly kernelAreas = new MemorySet<PageFlags, PageMapper>();
  /** Frames in use once the kernel's tables exist (the census baseline). */
  readonly baselineFrames: number;

  constructor(config: Partial<MachineConfig> = {}) {
    this.config = resolveConfig(config);
    const c = this.config;
    this.mem = new PhysicalMemory(c.ramBytes);
    this.frames = new BitmapFrameAllocator(this.mem, { start: RESERVED_LOW });
    this.kernelTable = new PageMapper(this.mem, this.frames);
    const big = c.ramBytes % PAGE_SIZE_2M === 0;
    this.kernelAreas.map(
      new MemoryArea(
        DIRECT_MAP,
        c.ramBytes,
        { writable: true, user: false, executable: false, global: true },
        new LinearBackend(DIRECT_MAP, big ? PAGE_SIZE_2M : PAGE_SIZE_4K),
      ),
      this.kernelTable,
      false,
    );
    this.cpus = [];
    for (let i = 0; i < c.cpus; i++) {
      const mmu = new Mmu(this.mem, {
        tlbSize: c.tlbEntries,
        cr4: CR4_PAE | CR4_PGE | CR4_PCIDE,
        cr3: this.kernelTable.root,
      });
      this.cpus.push({ id: i, mmu, shootdownsReceived: 0, pagesShotDown: 0 });
    }
    this.baselineFrames = this.frames.usedFrames;
  }

  /** The kernel's PML4. */
  get kernelRoot(): PhysAddr {
    return this.kernelTable.root as PhysAddr;
  }

  /** Kernel virtual address of a physical address (direct map). */
  directMap(pa: number): VirtAddr {
    return (DIRECT_MAP + pa) as VirtAddr;
  }
}
