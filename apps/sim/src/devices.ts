import { PAGE_SIZE_4K, type PhysAddr } from '@vmkit/addr';
import type { FrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';
import type { EventEngine } from './engine.js';

/** Where a file's bytes live: RAM (no latency) or the simulated disk. */
export type FileDevice = 'memory' | 'disk';

/** Disk counters. */
export interface DiskStats {
  requests: number;
  bytes: number;
  /** Simulated ns the disk spent serving requests. */
  busyNs: number;
}

/**
 * A disk with a fixed latency per request and a bandwidth, serving requests one at a time in arrival
 * order. A request completes as an event of the {@link EventEngine} at
 * `max(now, previous completion) + latency + bytes / bandwidth`.
 */
export class Disk {
  readonly stats: DiskStats = { requests: 0, bytes: 0, busyNs: 0 };
  private freeAt = 0;

  /**
   * @param engine the event loop the completions are posted to
   * @param latencyNs per-request latency in ns
   * @param bytesPerSec bandwidth in bytes per second
   */
  constructor(
    private readonly engine: EventEngine,
    readonly latencyNs: number,
    readonly bytesPerSec: number,
  ) {}

  /**
   * Submits a transfer of `bytes`; the promise resolves inside the event loop when it completes.
   * `onStart` (if given) is called with the completion time, for observers.
   */
  transfer(bytes: number): Promise<number> {
    const engine = this.engine;
    const start = Math.max(engine.now, this.freeAt);
    const service = this.latencyNs + Math.ceil((bytes * 1e9) / this.bytesPerSec);
    const done = start + service;
    this.freeAt = done;
    this.stats.requests++;
    this.stats.bytes += bytes;
    this.stats.busyNs += service;
    return new Promise<number>((resolve) => {
      engine.post(
        done,
        (r: (t: number) => void) => {
          engine.wantDrain();
          r(done);
        },
        resolve,
      );
    });
  }
}

/**
 * A file of the in-memory file store, with its page cache: frames of simulated RAM holding its pages
 * while someone maps or reads them. The cache holds one reference on each frame; every page-table
 * entry mapping a cached frame holds another (so a count of 1 means "cached, mapped by nobody").
 */
export class SimFile {
  /** The file's bytes as stored (the page cache may hold newer data until it is written back). */
  data: Uint8Array;
  /** Length in bytes. */
  size: number;
  /** Open file descriptions referring to this file. */
  opens = 0;
  /** Frames of the page cache, by page index. */
  readonly cache = new Map<number, PhysAddr>();
  private readonly loading = new Map<number, Promise<PhysAddr>>();

  /**
   * @param path the path (`/dev/zero (deleted)` for shared anonymous memory, as Linux prints it)
   * @param id an inode number for /proc/PID/maps
   * @param device where the bytes live
   */
  constructor(
    readonly path: string,
    readonly id: number,
    readonly device: FileDevice,
    data: Uint8Array = new Uint8Array(0),
    readonly anonymous = false,
  ) {
    this.data = data;
    this.size = data.length;
  }

  /** Grows the stored bytes to at least `n` (the size is set by the caller). */
  reserve(n: number): void {
    if (n <= this.data.length) return;
    const next = new Uint8Array(Math.max(n, this.data.length * 2, 4096));
    next.set(this.data);
    this.data = next;
  }

  /** Contents as stored plus the cache (what a reader sees), `[0, size)`. */
  contents(mem: PhysicalMemory): Uint8Array {
    const out = this.data.slice(0, this.size);
    for (const [idx, pa] of this.cache) {
      const off = idx * PAGE_SIZE_4K;
      if (off >= this.size) continue;
      const n = Math.min(PAGE_SIZE_4K, this.size - off);
      mem.readInto(pa, out, off, n);
    }
    return out;
  }

  /**
   * Copies bytes `[pos, pos + n)` as a reader sees them (a cached page from its frame, others as
   * stored; bytes past the stored data are left as they are in `out`) into `out` at `outOff`.
   */
  readAt(mem: PhysicalMemory, pos: number, out: Uint8Array, outOff: number, n: number): void {
    let done = 0;
    while (done < n) {
      const at = pos + done;
      const idx = Math.floor(at / PAGE_SIZE_4K);
      const off = at % PAGE_SIZE_4K;
      const k = Math.min(PAGE_SIZE_4K - off, n - done);
      const pa = this.cache.get(idx);
      if (pa !== undefined) mem.readInto(pa + off, out, outOff + done, k);
      else out.set(this.data.subarray(at, at + k), outOff + done);
      done += k;
    }
  }

  /**
   * Stores `bytes` at byte `pos` of the stored data (grown as needed) and of the cached pages they
   * touch. The size is the caller's to change.
   */
  store(mem: PhysicalMemory, pos: number, bytes: Uint8Array): void {
    this.reserve(pos + bytes.length);
    this.data.set(bytes, pos);
    let done = 0;
    while (done < bytes.length) {
      const at = pos + done;
      const idx = Math.floor(at / PAGE_SIZE_4K);
      const off = at % PAGE_SIZE_4K;
      const k = Math.min(PAGE_SIZE_4K - off, bytes.length - done);
      const pa = this.cache.get(idx);
      if (pa !== undefined) mem.writeBytes(pa + off, bytes.subarray(done, done + k));
      done += k;
    }
  }

  /** A cached page or `undefined`. */
  cached(idx: number): PhysAddr | undefined {
    return this.cache.get(idx);
  }

  /**
   * The frame of page `idx`, loading it into the cache if needed: at once for a file in memory, after a
   * disk transfer for a file on disk (a promise; concurrent requests for one page share the transfer).
   * Throws the allocator's `E_NOMEM` when no frame is left.
   */
  page(idx: number, io: FileIo): PhysAddr | Promise<PhysAddr> {
    const hit = this.cache.get(idx);
    if (hit !== undefined) return hit;
    if (this.device === 'memory') return this.fill(idx, io);
    let p = this.loading.get(idx);
    if (p === undefined) {
      p = io.disk.transfer(PAGE_SIZE_4K).then(() => {
        this.loading.delete(idx);
        const again = this.cache.get(idx);
        return again !== undefined ? again : this.fill(idx, io);
      });
      this.loading.set(idx, p);
    }
    return p;
  }

  /** True when page `idx` needs the disk before it can be mapped. */
  needsIo(idx: number): boolean {
    return this.device === 'disk' && !this.cache.has(idx);
  }

  private fill(idx: number, io: FileIo): PhysAddr {
    const pa = io.frames.allocFrame();
    const off = idx * PAGE_SIZE_4K;
    if (off < this.size) {
      const n = Math.min(PAGE_SIZE_4K, this.size - off, Math.max(0, this.data.length - off));
      if (n > 0) io.mem.writeBytes(pa, this.data.subarray(off, off + n));
    }
    this.cache.set(idx, pa);
    return pa;
  }

  /** Writes every cached page back to the stored bytes (up to the size). */
  writeBack(mem: PhysicalMemory): void {
    for (const [idx, pa] of this.cache) this.writeBackPage(mem, idx, pa);
  }

  private writeBackPage(mem: PhysicalMemory, idx: number, pa: PhysAddr): void {
    const off = idx * PAGE_SIZE_4K;
    if (off >= this.size) return;
    const n = Math.min(PAGE_SIZE_4K, this.size - off);
    this.reserve(off + n);
    mem.readInto(pa, this.data, off, n);
  }

  /**
   * Drops cached pages nobody maps (reference count 1), writing them back first.
   * @returns frames released
   */
  trim(io: FileIo): number {
    let n = 0;
    for (const [idx, pa] of this.cache) {
      if (io.frames.refCount(pa) !== 1) continue;
      this.writeBackPage(io.mem, idx, pa);
      this.cache.delete(idx);
      io.frames.decRef(pa);
      n++;
    }
    return n;
  }
}

/** What file I/O needs from the machine. */
export interface FileIo {
  readonly mem: PhysicalMemory;
  readonly frames: FrameAllocator;
  readonly disk: Disk;
}

/**
 * The in-memory file store: paths to {@link SimFile}s. `/dev/zero` is a device (reads zeros, mapping it
 * gives anonymous memory) and is not stored. Files under `/disk/` live on the slow disk; others in memory.
 */
export class FileStore {
  private readonly files = new Map<string, SimFile>();
  private readonly anons: SimFile[] = [];
  private nextId = 2;

  /** The file at `path`, or `undefined`. */
  get(path: string): SimFile | undefined {
    return this.files.get(path);
  }

  /** Creates (or replaces) a file with the given contents; on the disk if the path starts with `/disk/`. */
  create(path: string, data: Uint8Array = new Uint8Array(0)): SimFile {
    const f = new SimFile(path, this.nextId++, path.startsWith('/disk/') ? 'disk' : 'memory', data.slice());
    this.files.set(path, f);
    return f;
  }

  /** A fresh unnamed in-memory object for shared anonymous memory. */
  anonymous(): SimFile {
    const f = new SimFile('/dev/zero (deleted)', this.nextId++, 'memory', new Uint8Array(0), true);
    this.anons.push(f);
    return f;
  }

  /** Every stored file, by path order. */
  list(): SimFile[] {
    return [...this.files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /** Drops unmapped cached pages of every file; returns the frames released. */
  trim(io: FileIo): number {
    let n = 0;
    for (const f of this.files.values()) n += f.trim(io);
    for (const f of this.anons) n += f.trim(io);
    return n;
  }

  /** Frames held by page caches. */
  cachedFrames(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.cache.size;
    for (const f of this.anons) n += f.cache.size;
    return n;
  }
}
