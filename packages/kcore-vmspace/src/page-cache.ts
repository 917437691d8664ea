/**
 * The shared page cache: one physical page per device page, across every address space of a
 * {@link VmContext}. A cached page's frame has one reference for the cache and one per leaf entry that
 * maps it; when the last mapper goes (count back to 1) the page is written back if some mapper dirtied
 * it, and dropped.
 *
 * @module
 */
import { formatHex, type PhysAddr } from '@vmkit/addr';
import type { FrameAllocator, PhysicalMemory } from '@vmkit/paging-x86_64';
import type { Chan, ChanDevice } from './chan.js';
import { KcoreError, kfail } from './errors.js';

const PAGE = 0x1000;
const LOADING = 0;
const READY = 1;
const FLUSHING = 2;

/** One cached device page (one JS object per cached *shared* page; private pages have none). */
interface Entry {
  frame: number;
  state: number;
  /** Some mapper that left wrote to it since the last write-back. */
  dirty: boolean;
  /** Resolves when a load ends (success or failure). */
  loaded: Promise<void> | undefined;
}

/** A view of the 4 KiB frame `pa` of `mem` (no copy). */
export function frameView(mem: PhysicalMemory, pa: number): Uint8Array {
  const chunk = Math.floor(pa / 0x4000_0000);
  const off = pa - chunk * 0x4000_0000;
  return mem.u8[chunk]!.subarray(off, off + PAGE);
}

/** Turns the allocator's `E_NOMEM` into `OutOfMemory`; rethrows anything else. */
export function asOutOfMemory(e: unknown, what: string): never {
  if (e instanceof KcoreError) throw e;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'E_NOMEM') kfail('OutOfMemory', 'alloc error', `no frame left for ${what}`, {}, e);
  throw e;
}

/** Counts of the cache's work (for tests and statistics). */
export interface PageCacheStats {
  /** Device pages read into the cache. */
  loads: number;
  /** Dirty pages written back. */
  writeBacks: number;
  /** Write-backs that failed or were short. */
  failedWriteBacks: number;
  /** Pages cached now. */
  cached: number;
}

/** The page cache of a {@link VmContext}. */
export class PageCache {
  private readonly mem: PhysicalMemory;
  private readonly frames: FrameAllocator;
  private readonly byDevice = new Map<ChanDevice, Map<number, Entry>>();
  private readonly counts = { loads: 0, writeBacks: 0, failedWriteBacks: 0, cached: 0 };

  constructor(mem: PhysicalMemory, frames: FrameAllocator) {
    this.mem = mem;
    this.frames = frames;
  }

  stats(): PageCacheStats {
    return { ...this.counts };
  }

  /** The frame caching page `pgIdx` of `device` when it is loaded, else -1 (no side effect). */
  peek(device: ChanDevice, pgIdx: number): number {
    const e = this.byDevice.get(device)?.get(pgIdx);
    return e === undefined || e.state === LOADING ? -1 : e.frame;
  }

  /**
   * The frame of device page `pgIdx`, with one more reference for the caller (who maps it). Loads the
   * page through `chan` when it is not cached; a concurrent caller waits for that one load.
   *
   * @throws KcoreError `OutOfMemory` (no frame), `InternalError` (read error or short read); nothing
   *   is cached or leaked then
   */
  async acquire(chan: Chan, pgIdx: number): Promise<number> {
    const device = chan.device;
    for (;;) {
      const e = this.byDevice.get(device)?.get(pgIdx);
      if (e === undefined) break;
      if (e.state === LOADING) {
        await e.loaded;
        continue;
      }
      this.frames.incRef(e.frame as PhysAddr);
      return e.frame;
    }
    let frame: number;
    try {
      frame = this.frames.allocFrame();
    } catch (err) {
      return asOutOfMemory(err, `page ${pgIdx} of ${device.name}`);
    }
    let done!: () => void;
    const entry: Entry = {
      frame,
      state: LOADING,
      dirty: false,
      loaded: new Promise<void>((r) => {
        done = r;
      }),
    };
    let pages = this.byDevice.get(device);
    if (pages === undefined) {
      pages = new Map();
      this.byDevice.set(device, pages);
    }
    pages.set(pgIdx, entry);
    this.counts.cached++;
    try {
      await readPage(chan, frameView(this.mem, frame), pgIdx);
    } catch (err) {
      this.remove(device, pgIdx);
      this.frames.decRef(frame as PhysAddr);
      done();
      throw err;
    }
    this.counts.loads++;
    entry.state = READY;
    entry.loaded = undefined;
    done();
    this.frames.incRef(frame as PhysAddr);
    return frame;
  }

  /**
   * Drops the caller's reference on the cached page `pgIdx` of `chan`'s device (frame `frame`), noting
   * `dirty`. When no mapper is left the page is written back through `chan` (if dirty) and dropped.
   *
   * @returns true when a write-back failed or was short (the data is lost; the page is dropped anyway)
   */
  async release(chan: Chan, pgIdx: number, frame: number, dirty: boolean): Promise<boolean> {
    const device = chan.device;
    const e = this.byDevice.get(device)?.get(pgIdx);
    if (e === undefined || e.frame !== frame) {
      throw new Error(
        `page cache: frame ${formatHex(frame)} is not the cached page ${pgIdx} of ${device.name} (accounting bug)`,
      );
    }
    if (dirty) e.dirty = true;
    if (this.frames.decRef(frame as PhysAddr) !== 1 || e.state === FLUSHING) return false;
    let bad = false;
    while (e.dirty && this.frames.refCount(frame as PhysAddr) === 1) {
      e.dirty = false;
      e.state = FLUSHING;
      this.counts.writeBacks++;
      let ok = false;
      try {
        const n = await chan.write(frameView(this.mem, frame), pgIdx * PAGE);
        ok = n === PAGE;
      } catch {
        ok = false;
      }
      if (!ok) {
        this.counts.failedWriteBacks++;
        bad = true;
      }
      e.state = READY;
    }
    if (this.frames.refCount(frame as PhysAddr) === 1) {
      this.remove(device, pgIdx);
      this.frames.decRef(frame as PhysAddr);
    }
    return bad;
  }

  private remove(device: ChanDevice, pgIdx: number): void {
    const pages = this.byDevice.get(device);
    if (pages?.delete(pgIdx)) this.counts.cached--;
    if (pages !== undefined && pages.size === 0) this.byDevice.delete(device);
  }
}

/**
 * Reads device page `pgIdx` into `view` (4 KiB).
 *
 * @throws KcoreError `InternalError` "read page from chan failed" on a device error or a short read
 */
export async function readPage(chan: Chan, view: Uint8Array, pgIdx: number): Promise<void> {
  let n: number;
  try {
    n = await chan.read(view, pgIdx * PAGE);
  } catch (err) {
    return kfail(
      'InternalError',
      'read page from chan failed',
      `reading page ${pgIdx} (offset ${formatHex(pgIdx * PAGE)}) of ${chan.device.name} failed: ${String(err)}`,
      { pgIdx },
      err,
    );
  }
  if (n !== PAGE) {
    kfail(
      'InternalError',
      'read page from chan failed',
      `short read of page ${pgIdx} (offset ${formatHex(pgIdx * PAGE)}) of ${chan.device.name}: ${String(n)} of 4096 bytes`,
      { pgIdx, count: n },
    );
  }
}
