import { formatProt } from './errno.js';
import type { AreaInfo } from './personality.js';

/**
 * Merges adjacent areas that Linux would show as one VMA: same protection, sharing, backing object
 * and label, and (for a file) contiguous offsets.
 */
export function mergeAreas(areas: readonly AreaInfo[]): AreaInfo[] {
  const out: AreaInfo[] = [];
  for (const a of areas) {
    const prev = out[out.length - 1];
    if (
      prev !== undefined &&
      prev.end === a.start &&
      prev.prot === a.prot &&
      prev.shared === a.shared &&
      prev.file === a.file &&
      prev.label === a.label &&
      prev.mayWrite === a.mayWrite &&
      (a.file === undefined || prev.offset + (prev.end - prev.start) === a.offset)
    ) {
      out[out.length - 1] = { ...prev, end: a.end };
    } else out.push({ ...a });
  }
  return out;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * The areas in the format of Linux's `/proc/PID/maps` (fs/proc/task_mmu.c): `start-end perms offset
 * dev inode` and the path padded to column 73; anonymous areas end after the inode.
 */
export function formatMaps(areas: readonly AreaInfo[]): string {
  const lines: string[] = [];
  for (const a of mergeAreas(areas)) {
    const f = a.file;
    const dev = f === undefined ? '00:00' : f.anonymous ? '00:01' : '08:01';
    const inode = f === undefined ? 0 : f.id;
    const head = `${hex8(a.start)}-${hex8(a.end)} ${formatProt(a.prot)}${a.shared ? 's' : 'p'} ${hex8(
      f === undefined ? 0 : a.offset,
    )} ${dev} ${inode} `;
    const name = a.label ?? f?.path;
    lines.push(name === undefined ? head : `${head.padEnd(73, ' ')}${name}`);
  }
  return lines.join('\n');
}
