/**
 * A managed-runtime workload: a heap managed by `@vmkit/mmapper` (MMTk's chunk mmapper) over the
 * process's own mmap and mprotect. The runtime reserves its heap with one no-access mapping, maps 4 MiB
 * chunks on demand as it allocates (each chunk one `mmap(MAP_FIXED)` over the reservation, whatever the
 * number of allocations in it), protects a chunk (as a collector protects from-space) and maps it back.
 *
 * @module
 */
import type { VirtAddr } from '@vmkit/addr';
import {
  MmapAnnotation as Anno,
  formatMmapAnnotation,
  type MmapAnnotation,
  type MmapOs,
  type MmapProtection,
  type MmapStrategy,
  type OsResult,
  protectionToNativeFlags,
  MmapStrategy as Strategy,
  TwoLevelMmapper,
} from '@vmkit/mmapper';
import {
  errnoName,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_NONE,
} from './errno.js';
import type { Kernel } from './kernel.js';
import { cpu, program, sys } from './program.js';
import type { BuiltinProgram } from './workloads.js';

/**
 * `@vmkit/mmapper`'s OS interface over a simulated process's own system calls (made synchronously
 * inside the process's step with {@link Kernel.syscallNow}; counted, charged and traced as its calls).
 */
export class ProcessMmapOs implements MmapOs {
  /** OS calls made, by name. */
  readonly calls: Record<string, number> = {};
  constructor(
    private readonly k: Kernel,
    private readonly pid: number,
  ) {}

  private result(name: string, r: number): OsResult {
    this.calls[name] = (this.calls[name] ?? 0) + 1;
    return r < 0 ? { errno: errnoName(-r) } : undefined;
  }

  private map(
    name: string,
    start: VirtAddr,
    bytes: number,
    prot: number,
    flags: number,
    anno: MmapAnnotation,
  ): OsResult {
    const r = this.k.syscallNow(
      this.pid,
      {
        call: 'mmap',
        addr: start,
        len: bytes,
        prot,
        flags: flags | MAP_PRIVATE | MAP_ANONYMOUS,
        fd: -1,
        offset: 0,
      },
      formatMmapAnnotation(anno),
    );
    return this.result(name, r);
  }

  dzmmap(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.map('dzmmap', start, bytes, protectionToNativeFlags(strategy.prot), MAP_FIXED, anno);
  }
  dzmmapNoreplace(start: VirtAddr, bytes: number, strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.map(
      'dzmmapNoreplace',
      start,
      bytes,
      protectionToNativeFlags(strategy.prot),
      MAP_FIXED_NOREPLACE,
      anno,
    );
  }
  mmapNoreserve(start: VirtAddr, bytes: number, _strategy: MmapStrategy, anno: MmapAnnotation): OsResult {
    return this.map('mmapNoreserve', start, bytes, PROT_NONE, MAP_NORESERVE | MAP_FIXED_NOREPLACE, anno);
  }
  mprotect(start: VirtAddr, bytes: number): OsResult {
    const r = this.k.syscallNow(this.pid, { call: 'mprotect', addr: start, len: bytes, prot: PROT_NONE });
    return this.result('mprotect', r);
  }
  munprotect(start: VirtAddr, bytes: number, prot: MmapProtection): OsResult {
    const r = this.k.syscallNow(this.pid, {
      call: 'mprotect',
      addr: start,
      len: bytes,
      prot: protectionToNativeFlags(prot),
    });
    return this.result('munprotect', r);
  }
}

const HEAP = 0x2000_0000_0000 as VirtAddr; // 32 TiB: chunk (4 MiB) aligned
const CHUNK = 4 * 2 ** 20;
const MiB = 2 ** 20;

/** The built-in `managed-heap` program. */
export const managedHeap: BuiltinProgram = {
  name: 'managed-heap',
  description: 'a managed heap grown through @vmkit/mmapper: 64 MiB reserved, 4 MiB chunks mapped on demand',
  create: (k: Kernel) =>
    program('managed-heap', function* () {
      const pid = yield sys.getpid();
      const os = new ProcessMmapOs(k, pid);
      const mapper = new TwoLevelMmapper(os);
      const anno = Anno.space('immix');
      const strategy = Strategy.INTERNAL_MEMORY;
      mapper.quarantineAddressRange(HEAP, (64 * MiB) / 4096, strategy, anno);
      // Allocate 12 objects of 1 MiB with a bump pointer: three chunks get mapped, one call each.
      let top: number = HEAP;
      for (let i = 0; i < 12; i++) {
        mapper.ensureMapped(top as VirtAddr, MiB / 4096, strategy, anno);
        yield cpu.write(top, MiB, 4096, 1, 0x0b1ec7 + i);
        top += MiB;
      }
      // A collection: the first chunk is from-space; protect it, then reuse it (ensureMapped unprotects).
      mapper.protect(HEAP, CHUNK / 4096);
      const protectedNow = !mapper.isMappedAddress(HEAP);
      mapper.ensureMapped(HEAP, CHUNK / 4096, strategy, anno);
      yield cpu.read(HEAP, CHUNK);
      yield sys.maps();
      const calls = Object.entries(os.calls)
        .map(([n, c]) => `${n} ${c}`)
        .join(', ');
      yield sys.log(
        `managed heap: 12 MiB allocated in 3 chunks; protected during GC ${protectedNow}; OS calls: ${calls}`,
      );
    }),
};
