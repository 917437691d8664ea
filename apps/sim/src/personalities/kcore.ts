/**
 * The `kcore` personality: each process's address space is a `@vmkit/kcore-vmspace` `VmSpace` (seed
 * 001: channel-backed segments, an async fault handler, a page cache shared by every space of the
 * machine, fork with copy-on-write). Every operation is asynchronous: the kernel blocks the process on
 * it and runs others meanwhile.
 *
 * Files of the kernel's file store are channels through {@link SimFileDevice} (one device per file, so
 * that kcore's page cache shares one frame per file page across processes); pages of files on the
 * simulated disk cost a disk transfer (a major fault). Private anonymous memory is a private mapping of
 * a zero device; shared anonymous memory a shared mapping of an unnamed file.
 *
 * What the kernel keeps beside the spaces (kcore has no room for it): `[heap]` labels and which shared
 * file mappings came from a read-only descriptor (so that `mprotect(PROT_WRITE)` gets EACCES).
 *
 * @module
 */
import type { PhysAddr, VirtAddr } from '@vmkit/addr';
import {
  type Chan,
  type ChanDevice,
  type FaultAccess,
  isKcoreError,
  openChan,
  VmContext,
  VmSpace,
  ZeroDevice,
} from '@vmkit/kcore-vmspace';
import { PF_ID, PF_P, PF_RSVD, PF_W } from '@vmkit/paging-x86_64';
import type { FileIo, SimFile } from '../devices.js';
import {
  type AddressSpace,
  type AreaInfo,
  FaultKind,
  type MapRequest,
  type Personality,
  type SpaceContext,
} from '../personality.js';
import { type AreaTag, RangeTags, tagMapping } from './ranges.js';
import { dropKernelHalf, machineState, shareKernelHalf } from './shared.js';

const PAGE = 4096;

/** A file of the kernel's store as a kcore channel device (disk files wait for the simulated disk). */
export class SimFileDevice implements ChanDevice {
  readonly name: string;
  /** Transfers from the disk (counted for the fault classification). */
  diskReads = 0;
  constructor(
    readonly file: SimFile,
    private readonly io: FileIo,
  ) {
    this.name = `simfile(${file.path})`;
  }

  /**
   * Reads as a page of a Linux file mapping sees it: a range starting before the end of the file is
   * filled completely (zeros past the end); a range starting at or past the end reads 0 bytes (kcore
   * then reports a short read, and the kernel sends SIGBUS, as Linux does).
   */
  async read(buf: Uint8Array, offset: number): Promise<number> {
    const f = this.file;
    if (!f.anonymous && offset >= f.size) return 0;
    if (f.device === 'disk') {
      this.diskReads++;
      await this.io.disk.transfer(buf.length);
    }
    buf.fill(0);
    const n = Math.max(0, Math.min(buf.length, (f.anonymous ? f.data.length : f.size) - offset));
    f.readAt(this.io.mem, offset, buf, 0, n);
    return buf.length;
  }

  /** Stores what lies inside the file (bytes past its end are dropped, as Linux drops them). */
  async write(buf: Uint8Array, offset: number): Promise<number> {
    const f = this.file;
    const n = f.anonymous ? buf.length : Math.max(0, Math.min(buf.length, f.size - offset));
    if (n > 0) f.store(this.io.mem, offset, buf.subarray(0, n));
    return buf.length;
  }
}

/** Machine-wide state of the personality: one kcore context (page cache) and one channel per file. */
class KcoreMachine {
  readonly vm: VmContext;
  readonly zero: Chan = openChan(new ZeroDevice());
  private readonly chans = new WeakMap<SimFile, Chan>();
  readonly devices: SimFileDevice[] = [];
  constructor(readonly ctx: SpaceContext) {
    this.vm = new VmContext({ mem: ctx.mem, frames: ctx.frames });
  }
  chanOf(file: SimFile): Chan {
    let c = this.chans.get(file);
    if (c === undefined) {
      const d = new SimFileDevice(file, this.ctx.io);
      this.devices.push(d);
      c = openChan(d);
      this.chans.set(file, c);
    }
    return c;
  }
  diskReads(): number {
    let n = 0;
    for (const d of this.devices) n += d.diskReads;
    return n;
  }
}

/** A process's address space of the `kcore` personality. */
export class KcoreSpace implements AddressSpace {
  private readonly tags: RangeTags<AreaTag>;
  /**
   * The page of the fault in progress when it was not present: kcore invalidates the page it installs,
   * but no TLB can hold a translation that was not present (x86 caches none), so no CPU needs a flush.
   */
  private freshPage = -1;
  private constructor(
    readonly vm: VmSpace,
    private readonly ctx: SpaceContext,
    private readonly m: KcoreMachine,
    tags?: RangeTags<AreaTag>,
  ) {
    this.tags = tags ?? new RangeTags<AreaTag>();
    shareKernelHalf(ctx, vm.root);
    vm.tlb = {
      invalidatePage: (va) => {
        if (va !== this.freshPage) ctx.invalidate(va);
      },
      invalidateAll: () => ctx.invalidateAll(),
    };
  }

  /** A new empty space. */
  static create(ctx: SpaceContext): KcoreSpace {
    const m = machineState(ctx, 'kcore', (c) => new KcoreMachine(c));
    return new KcoreSpace(VmSpace.create(m.vm), ctx, m);
  }

  get root(): PhysAddr {
    return this.vm.root;
  }

  map(req: MapRequest): Promise<void> {
    const chan = req.file === undefined ? this.m.zero : this.m.chanOf(req.file);
    return this.vm
      .mmap(req.start, req.len, chan, req.offset, !req.shared, req.prot)
      .then(() => tagMapping(this.tags, req));
  }

  unmap(start: VirtAddr, len: number): Promise<void> {
    return this.vm.munmap(start, len).then(() => this.tags.cut(start, start + len));
  }

  protect(start: VirtAddr, len: number, prot: number): Promise<void> {
    return this.vm.protect(start, len, prot);
  }

  areas(): AreaInfo[] {
    return this.vm.segments().map((s) => {
      const dev = s.chan.device;
      const file = dev instanceof SimFileDevice ? dev.file : undefined;
      const tag = this.tags.at(s.start);
      return {
        start: s.start,
        end: s.end,
        prot: s.prot,
        shared: s.shared,
        file,
        offset: s.offset,
        mayWrite: tag?.readOnlyFile !== true,
        label: tag?.label,
      };
    });
  }

  areaAt(va: VirtAddr): AreaInfo | undefined {
    return this.areas().find((a) => a.start <= va && va < a.end);
  }

  areasIn(start: VirtAddr, end: number): AreaInfo[] {
    return this.areas().filter((a) => a.end > start && a.start < end);
  }

  fault(va: VirtAddr, ec: number): Promise<FaultKind> | FaultKind {
    if ((ec & PF_RSVD) !== 0) return FaultKind.SEGV;
    const access: FaultAccess = (ec & PF_W) !== 0 ? 'write' : (ec & PF_ID) !== 0 ? 'execute' : 'read';
    const reads = this.m.diskReads();
    const page = va - (va % PAGE);
    this.freshPage = (ec & PF_P) === 0 ? page : -1;
    return this.vm.fault(va, access).then(
      () => {
        this.freshPage = -1;
        if (this.m.diskReads() > reads) return FaultKind.MAJOR;
        return (ec & PF_P) !== 0 && access === 'write' ? FaultKind.COW : FaultKind.MINOR;
      },
      (e: unknown) => {
        this.freshPage = -1;
        if (!isKcoreError(e)) throw e;
        const kind = (e as { kind?: string }).kind;
        if (kind === 'OutOfMemory') return FaultKind.OOM;
        if (kind === 'InternalError') return FaultKind.BUS; // a short read: past the end of the file
        return FaultKind.SEGV;
      },
    );
  }

  fork(ctx: SpaceContext): Promise<AddressSpace> {
    return this.vm.fork().then((child) => new KcoreSpace(child, ctx, this.m, this.tags.clone()));
  }

  destroy(): Promise<void> {
    dropKernelHalf(this.ctx.mem, this.vm.root);
    return this.vm.free().then(() => undefined);
  }

  residentPages(): number {
    return this.vm.residentPages();
  }
}

/** The `kcore` personality (see the module comment). */
export const kcorePersonality: Personality = {
  name: 'kcore',
  coherentFileIo: false,
  description: '@vmkit/kcore-vmspace: channel-backed segments, async faults, page cache, copy-on-write fork',
  create: (ctx) => KcoreSpace.create(ctx),
};
