/**
 * Linux error numbers (x86-64 values) and the constants of the system calls the simulated kernel
 * implements. A system call returns a non-negative result or `-errno`, as the Linux syscall ABI does.
 *
 * @module
 */

/** Linux `errno` values (asm-generic/errno-base.h, errno.h). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EEXIST: 17,
  ENODEV: 19,
  EISDIR: 21,
  EINVAL: 22,
  EMFILE: 24,
  ENOSPC: 28,
  ESPIPE: 29,
  ENOSYS: 38,
  EOVERFLOW: 75,
} as const;

/** One of the names of {@link Errno}. */
export type ErrnoName = keyof typeof Errno;

const NAMES = new Map<number, ErrnoName>(Object.entries(Errno).map(([k, v]) => [v, k as ErrnoName]));

/** The name of an error number (`12` → `'ENOMEM'`); `errno N` for one this kernel never returns. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno ${errno}`;
}

/** `PROT_*` bits of mmap/mprotect. */
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
/** Every protection bit the kernel accepts. */
export const PROT_MASK = 7;

/** `MAP_*` flags of mmap (Linux x86-64 values). */
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_FIXED_NOREPLACE = 0x10_0000;
/** Flags the kernel knows (others are ignored by plain MAP_SHARED/MAP_PRIVATE, as Linux does). */
export const MAP_KNOWN =
  MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE | MAP_FIXED_NOREPLACE;

/** `open` flags. */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_ACCMODE = 3;
export const O_CREAT = 0x40;
export const O_TRUNC = 0x200;

/** Signal numbers used in exit statuses. */
export const SIGKILL = 9;
export const SIGSEGV = 11;
export const SIGBUS = 7;

/** The user address-space limit of x86-64 Linux with 4-level paging (`TASK_SIZE`). */
export const TASK_SIZE = 0x7fff_ffff_f000;
/** Lowest address mmap hands out or accepts for a hint (`vm.mmap_min_addr` default). */
export const MMAP_MIN_ADDR = 0x1_0000;
/** Where top-down mmap placement starts (below the simulated stack). */
export const MMAP_BASE = 0x7f00_0000_0000;
/** Start of the brk heap. */
export const BRK_START = 0x0100_0000;

/** `prot` as Linux prints it in /proc/PID/maps (`r-x`). */
export function formatProt(prot: number): string {
  return `${prot & PROT_READ ? 'r' : '-'}${prot & PROT_WRITE ? 'w' : '-'}${prot & PROT_EXEC ? 'x' : '-'}`;
}

/** Linux wait status of a normal exit with `code` (`WEXITSTATUS` = code & 0xff). */
export function exitStatus(code: number): number {
  return (code & 0xff) << 8;
}

/** Linux wait status of a death by `signal` (`WTERMSIG`). */
export function signalStatus(signal: number): number {
  return signal & 0x7f;
}

/** Describes a wait status: `exit 0`, `killed by SIGSEGV`. */
export function describeStatus(status: number): string {
  const sig = status & 0x7f;
  if (sig === 0) return `exit ${(status >> 8) & 0xff}`;
  const name =
    sig === SIGSEGV ? 'SIGSEGV' : sig === SIGBUS ? 'SIGBUS' : sig === SIGKILL ? 'SIGKILL' : `signal ${sig}`;
  return `killed by ${name}`;
}
