// `pnpm start`: a small, real demonstration of the vmkit packages that exist today, printing what it
// does. (When @vmkit/sim lands, `pnpm start` runs the simulated kernel on its default workload.)
import {
  AddrRange,
  formatVirtAddr,
  formatVirtRange,
  isVmkitError,
  PAGE_SIZE_2M,
  pdIndex,
  pdptIndex,
  pml4Index,
  ptIndex,
  virtAdd,
  virtAddr,
} from '@vmkit/addr';

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
    if (isVmkitError(e)) console.log(`${text}: ${e.code} (${e.message.split(': ')[1]})`);
  }
}
const kernelText = AddrRange.virtFromSize(virtAddr('0xffffffff80000000'), 4 * PAGE_SIZE_2M);
const [head, tail] = kernelText.splitAt(virtAdd(kernelText.start, PAGE_SIZE_2M));
console.log(
  `kernel text ${formatVirtRange(kernelText)} split into ${formatVirtRange(head)} and ${formatVirtRange(tail)}`,
);
