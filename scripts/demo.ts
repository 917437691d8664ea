// `pnpm demo`: a small, real demonstration of the lower vmkit packages (addr, paging, memory-set), printing what it
// does. (`pnpm start` runs the simulated kernel, which composes every package.)
//
// It builds one address space the way a kernel would: @vmkit/addr for the addresses, @vmkit/paging-x86_64
// for RAM, page tables, the MMU and its TLB, and @vmkit/memory-set for the areas behind mmap / munmap /
// mprotect, with a heap that is populated on demand by the page-fault path.
import {
  AddrRange,
  formatVirtAddr,
  formatVirtRange,
  isVmkitError,
  PAGE_SIZE_2M,
  PAGE_SIZE_4K,
  pdIndex,
  pdptIndex,
  pml4Index,
  ptIndex,
  type VirtAddr,
  virtAdd,
  virtAddr,
} from '@vmkit/addr';
import { MemoryArea, MemorySet } from '@vmkit/memory-set';
import { AllocBackend, handlePageFault, LinearBackend } from '@vmkit/memory-set/x86_64';
import {
  ACCESS_USER,
  BitmapFrameAllocator,
  FAULT,
  formatInfoMem,
  Mmu,
  type PageFlags,
  PageMapper,
  PhysicalMemory,
} from '@vmkit/paging-x86_64';

function section(title: string): void {
  console.log(`\n== ${title}`);
}

section('@vmkit/addr: canonical addresses, both halves, exact');
for (const text of ['0x401000', '0x7fffffffe000', '0xffff800000000000', '0xffffffff80000000']) {
  const va = virtAddr(text);
  console.log(
    `${formatVirtAddr(va, true)}  PML4 ${pml4Index(va)} PDPT ${pdptIndex(va)} PD ${pdIndex(va)} PT ${ptIndex(va)}`,
  );
}
for (const text of ['0x0000800000000000', '0xffff7fffffffffff']) {
  try {
    virtAddr(text);
  } catch (e) {
    if (isVmkitError(e)) console.log(`${text}: ${e.code}`);
  }
}
const kernelText = AddrRange.virtFromSize(virtAddr('0xffffffff80000000'), 4 * PAGE_SIZE_2M);
const [head, tail] = kernelText.splitAt(virtAdd(kernelText.start, PAGE_SIZE_2M));
console.log(
  `kernel text ${formatVirtRange(kernelText)} splits into ${formatVirtRange(head)} + ${formatVirtRange(tail)}`,
);

section('@vmkit/paging-x86_64 + @vmkit/memory-set: one address space, faults served on demand');
const mem = new PhysicalMemory(64 << 20); // 64 MiB of simulated RAM
const frames = new BitmapFrameAllocator(mem, { start: 8 << 20 }); // the first 8 MiB: "firmware"
const pt = new PageMapper(mem, frames);
const mmu = new Mmu(mem);
mmu.writeCr3(pt.root);
pt.flushHook = (va) => mmu.invlpg(va);
const areas = new MemorySet<PageFlags, PageMapper>();
console.log(`RAM ${mem.size >> 20} MiB, ${frames.freeFrames} free frames, CR3 = 0x${pt.root.toString(16)}`);

// The kernel's direct map of the first 8 MiB (2 MiB pages) and a user heap populated on first touch.
const directMap = virtAddr('0xffff800000000000');
const kernelRW: PageFlags = { writable: true, user: false, executable: false };
areas.map(
  new MemoryArea(directMap, 8 << 20, kernelRW, new LinearBackend(directMap, PAGE_SIZE_2M)),
  pt,
  false,
);
const heap = virtAddr(0x1000_0000);
const userRW: PageFlags = { writable: true, user: true, executable: false };
areas.map(new MemoryArea(heap, 64 * PAGE_SIZE_4K, userRW, new AllocBackend(false)), pt, false);
for (const a of areas) console.log(`area ${formatVirtRange(a.vaRange)} ${a.size >> 10} KiB`);

/** A user-mode store: on a page fault, ask the memory set to populate the page, then retry once. */
function userStore(va: VirtAddr, value: number): void {
  if (mmu.write32(va, value, ACCESS_USER)) return;
  const f = mmu.fault;
  const served = handlePageFault(areas, va, pt);
  console.log(`  ${f.toString()} -> ${served ? 'page populated, retry' : 'SIGSEGV'}`);
  if (served && !mmu.write32(va, value, ACCESS_USER)) console.log(`  retry failed: ${mmu.fault.toString()}`);
}

const before = frames.freeFrames;
console.log('user stores to three heap pages (two on the same page):');
userStore(heap, 0x1111);
userStore(virtAdd(heap, 0x10), 0x2222);
userStore(virtAdd(heap, 5 * PAGE_SIZE_4K), 0x3333);
console.log(`read back: 0x${mmu.read32(virtAdd(heap, 0x10), ACCESS_USER).toString(16)}`);
console.log(`frames used: ${before - frames.freeFrames} (2 heap pages + a PDPT, a PD and a PT for them)`);

console.log('mprotect(heap, 4 KiB, read-only), then a store there:');
areas.protect(heap, PAGE_SIZE_4K, () => ({ ...userRW, writable: false }), pt);
userStore(heap, 0x4444);
mem.write32(0x1000, 0xfeedface); // physical memory, written directly
console.log(
  `a kernel read at ${formatVirtAddr(virtAdd(directMap, 0x1000))} (direct map of physical 0x1000): 0x${mmu.read32(virtAdd(directMap, 0x1000)).toString(16)}`,
);
console.log(
  `the same read from user mode: ${mmu.read32(virtAdd(directMap, 0x1000), ACCESS_USER) === FAULT ? mmu.fault.toString() : 'allowed?!'}`,
);

console.log('info mem (QEMU format):');
for (const line of formatInfoMem(mem, pt.root).split('\n')) console.log(`  ${line}`);

areas.unmap(heap, 64 * PAGE_SIZE_4K, pt);
const s = mmu.stats();
console.log(`munmap(heap): ${areas.len()} area(s) left, frames back: ${frames.freeFrames === before}`);
console.log(
  `MMU: ${s.hits} TLB hits, ${s.walks} walks, ${s.faults} faults (${s.faultsNotPresent} not present, ${s.faultsProtection} protection), ${s.flushes.invlpg} INVLPG`,
);
