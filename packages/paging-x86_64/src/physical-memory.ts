import {
  checkAligned,
  checkUint,
  describeValue,
  fail,
  formatHex,
  PAGE_SIZE_4K,
  type PhysAddr,
} from '@vmkit/addr';

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('@vmkit/paging-x86_64 needs a little-endian host (typed arrays are used as x86 memory)');
}

/** The largest single ArrayBuffer the memory uses; larger memories are split into chunks of this size. */
export const PHYS_CHUNK_SIZE = 0x4000_0000; // 1 GiB
const CHUNK_SHIFT_DIV = PHYS_CHUNK_SIZE;

/** Options of {@link PhysicalMemory}. */
export interface PhysicalMemoryOptions {
  /** Bytes of RAM, a positive multiple of 4 KiB (at most 2^52). */
  size: number;
}

/**
 * Simulated RAM: `size` bytes at physical addresses `[0, size)`, held in typed arrays (one
 * `ArrayBuffer` up to 1 GiB, several past that), little-endian like x86. Byte 0 is physical address 0.
 *
 * Every access is bounds-checked against `size` and throws `E_RANGE` outside it (an emulator maps that
 * to a machine check or ignores it; the MMU never produces such an address from valid tables). Word
 * accesses (`read32`, `read64Words`) at a 4-byte-aligned address are single typed-array reads.
 */
export class PhysicalMemory {
  /** Size in bytes. */
  readonly size: number;
  /** The chunks as bytes; `u8[0]` holds physical addresses `[0, min(size, 1 GiB))`. */
  readonly u8: readonly Uint8Array[];
  /** The same chunks as 32-bit little-endian words (index = (pa mod 1 GiB) / 4). */
  readonly u32: readonly Uint32Array[];
  /** With one chunk (size ≤ 1 GiB): its word view, for the fastest paths; else undefined. */
  readonly flat32: Uint32Array | undefined;
  /** With one chunk: its byte view; else undefined. */
  readonly flat8: Uint8Array | undefined;

  /**
   * @param options the size in bytes, or `{ size }`
   * @throws VmkitError `E_INVALID` for anything but a Number or an object with a Number `size` (the
   *   value is named as passed), `E_RANGE` unless the size is a positive integer up to 2^52,
   *   `E_UNALIGNED` unless it is a multiple of 4 KiB
   */
  constructor(options: PhysicalMemoryOptions | number) {
    let size: unknown = options;
    if (typeof options === 'object' && options !== null) size = (options as { size?: unknown }).size;
    if (typeof size !== 'number') {
      fail('E_INVALID', `memory size ${describeValue(options)} is not a Number of bytes or { size }`, {
        options,
      });
    }
    checkUint(size, 'memory size');
    if (size === 0) fail('E_RANGE', 'memory size 0 is not positive', { size });
    checkAligned(size, PAGE_SIZE_4K, 'memory size');
    if (size > 2 ** 52) fail('E_RANGE', `memory size ${formatHex(size)} passes 2^52`, { size });
    this.size = size;
    const u8: Uint8Array[] = [];
    const u32: Uint32Array[] = [];
    for (let off = 0; off < size; off += PHYS_CHUNK_SIZE) {
      const buf = new ArrayBuffer(Math.min(PHYS_CHUNK_SIZE, size - off));
      u8.push(new Uint8Array(buf));
      u32.push(new Uint32Array(buf));
    }
    this.u8 = u8;
    this.u32 = u32;
    this.flat32 = u32.length === 1 ? u32[0] : undefined;
    this.flat8 = u8.length === 1 ? u8[0] : undefined;
  }

  /**
   * Throws unless `[pa, pa + len)` lies inside the memory: `E_INVALID` for a `pa` or `len` that is not
   * an integer Number, `E_RANGE` for a negative one or a range outside `[0, size)`.
   */
  checkRange(pa: number, len: number): void {
    if (typeof pa !== 'number' || !Number.isInteger(pa))
      fail('E_INVALID', `physical address ${describeValue(pa)} is not an integer Number`, { pa, len });
    if (typeof len !== 'number' || !Number.isInteger(len))
      fail('E_INVALID', `length ${describeValue(len)} is not an integer Number`, { pa, len });
    if (!(pa >= 0 && len >= 0 && pa + len <= this.size)) {
      fail(
        'E_RANGE',
        `physical range [${describeValue(pa)}, +${describeValue(len)}) is outside memory of ${formatHex(this.size)} bytes`,
        { pa, len },
      );
    }
  }

  /**
   * Reads the byte at `pa`.
   *
   * @throws VmkitError `E_RANGE` unless `pa` is an integer in [0, size)
   */
  read8(pa: PhysAddr | number): number {
    // Fast path (one chunk, an integer inside it); everything else gets the full checks below.
    const f = this.flat8;
    if (f !== undefined && pa >>> 0 === pa && pa < f.length) return f[pa]!;
    this.checkRange(pa, 1);
    return this.u8[Math.floor(pa / CHUNK_SHIFT_DIV)]![pa % CHUNK_SHIFT_DIV]!;
  }

  /**
   * Writes the byte `value` at `pa`.
   *
   * @param value an integer in [0, 255] (nothing is truncated)
   * @throws VmkitError `E_RANGE` unless `pa` is an integer in [0, size) and `value` in [0, 255],
   *   `E_INVALID` for a non-integer
   */
  write8(pa: PhysAddr | number, value: number): void {
    const f = this.flat8;
    if (f !== undefined && pa >>> 0 === pa && pa < f.length && (value & 0xff) === value) {
      f[pa] = value;
      return;
    }
    this.checkRange(pa, 1);
    checkByte(value, 'byte');
    this.u8[Math.floor(pa / CHUNK_SHIFT_DIV)]![pa % CHUNK_SHIFT_DIV] = value;
  }

  /**
   * Reads the unsigned little-endian 32-bit word at `pa` (any alignment).
   *
   * @throws VmkitError `E_RANGE` unless `[pa, pa + 4)` lies inside the memory (`pa` an integer)
   */
  read32(pa: PhysAddr | number): number {
    // Fast path (one chunk, 4-byte aligned, inside it): `w * 4 === pa` holds only for an integer
    // multiple of 4 in [0, 2^32), `w < length` puts the word in range. The rest takes the full checks.
    const f = this.flat32;
    const w = pa >>> 2;
    if (f !== undefined && w * 4 === pa && w < f.length) return f[w]!;
    this.checkRange(pa, 4);
    if ((pa & 3) === 0) return this.u32[Math.floor(pa / CHUNK_SHIFT_DIV)]![(pa % CHUNK_SHIFT_DIV) / 4]!;
    return (
      (this.read8(pa) |
        (this.read8(pa + 1) << 8) |
        (this.read8(pa + 2) << 16) |
        (this.read8(pa + 3) << 24)) >>>
      0
    );
  }

  /**
   * Writes `value` as a little-endian 32-bit word at `pa` (any alignment).
   *
   * @param value an integer in [0, 2^32), or a negative int32 in [-2^31, 0) (what `|` of flag bits
   *   gives), stored as its two's complement; nothing else is truncated
   * @throws VmkitError `E_RANGE` unless `[pa, pa + 4)` lies inside the memory and `value` is in
   *   [-2^31, 2^32), `E_INVALID` for a non-integer `pa` or `value`
   */
  write32(pa: PhysAddr | number, value: number): void {
    const f = this.flat32;
    const w = pa >>> 2;
    if (f !== undefined && w * 4 === pa && w < f.length && (value >>> 0 === value || (value | 0) === value)) {
      f[w] = value;
      return;
    }
    this.checkRange(pa, 4);
    checkWord(value);
    if ((pa & 3) === 0) {
      this.u32[Math.floor(pa / CHUNK_SHIFT_DIV)]![(pa % CHUNK_SHIFT_DIV) / 4] = value;
      return;
    }
    for (let i = 0; i < 4; i++) this.write8(pa + i, (value >>> (8 * i)) & 0xff);
  }

  /** Reads the 64-bit value at `pa` as a BigInt (edges only; hot paths read two words with {@link read32}). */
  read64(pa: PhysAddr | number): bigint {
    return (BigInt(this.read32(pa + 4)) << 32n) | BigInt(this.read32(pa));
  }

  /**
   * Writes a 64-bit BigInt at `pa`, little-endian.
   *
   * @param value a BigInt in [-2^63, 2^64) (a negative one is stored as its two's complement)
   * @throws VmkitError `E_INVALID` for a value that is not a BigInt, `E_RANGE` outside that range or
   *   for `[pa, pa + 8)` outside the memory
   */
  write64(pa: PhysAddr | number, value: bigint): void {
    this.checkRange(pa, 8);
    if (typeof value !== 'bigint')
      fail('E_INVALID', `64-bit value ${describeValue(value)} is not a BigInt`, { pa, value });
    if (value < -(1n << 63n) || value >= 1n << 64n)
      fail('E_RANGE', `64-bit value ${describeValue(value)} is not in [-2^63, 2^64)`, { pa, value });
    this.write32(pa, Number(value & 0xffff_ffffn));
    this.write32(pa + 4, Number((value >> 32n) & 0xffff_ffffn));
  }

  /** Copies `len` bytes out of memory starting at `pa` into a new array. @throws as {@link checkRange} */
  readBytes(pa: PhysAddr | number, len: number): Uint8Array {
    this.checkRange(pa, len);
    const out = new Uint8Array(len);
    this.forEachSpan(pa, len, (chunk, off, n, done) => out.set(chunk.subarray(off, off + n), done));
    return out;
  }

  /**
   * Copies `len` bytes from memory at `pa` into `out` at `outOffset` (no allocation).
   *
   * @throws VmkitError `E_RANGE` if the source is outside memory or the bytes do not fit in `out`
   */
  readInto(pa: PhysAddr | number, out: Uint8Array, outOffset: number, len: number): void {
    this.checkRange(pa, len);
    checkBytes(out, 'out');
    if (!(Number.isInteger(outOffset) && outOffset >= 0 && outOffset + len <= out.length)) {
      fail('E_RANGE', `${len} bytes do not fit at offset ${outOffset} of a ${out.length}-byte array`, {
        outOffset,
        len,
      });
    }
    this.forEachSpan(pa, len, (chunk, off, n, done) =>
      out.set(chunk.subarray(off, off + n), outOffset + done),
    );
  }

  /**
   * Copies `data` into memory at `pa`.
   *
   * @throws VmkitError `E_INVALID` for `data` that is not a Uint8Array (an array of numbers is not
   *   taken: its values could be anything), and as {@link checkRange}; nothing is written on error
   */
  writeBytes(pa: PhysAddr | number, data: Uint8Array): void {
    checkBytes(data, 'data');
    this.checkRange(pa, data.length);
    this.forEachSpan(pa, data.length, (chunk, off, n, done) => chunk.set(data.subarray(done, done + n), off));
  }

  /**
   * Sets `len` bytes at `pa` to `byte` (default 0).
   *
   * @throws VmkitError `E_RANGE`/`E_INVALID` for a `byte` that is not an integer in [0, 255], and as
   *   {@link checkRange}
   */
  fill(pa: PhysAddr | number, len: number, byte = 0): void {
    this.checkRange(pa, len);
    checkByte(byte, 'fill byte');
    this.forEachSpan(pa, len, (chunk, off, n) => chunk.fill(byte, off, off + n));
  }

  /** Copies `len` bytes from `src` to `dst` (overlap-safe, like memmove). @throws as {@link checkRange} */
  copy(dst: PhysAddr | number, src: PhysAddr | number, len: number): void {
    this.checkRange(src, len);
    this.checkRange(dst, len);
    if (this.u8.length === 1) {
      this.u8[0]!.copyWithin(dst, src, src + len);
      return;
    }
    this.writeBytes(dst, this.readBytes(src, len));
  }

  /** The whole memory as one raw little-endian image (byte 0 = physical address 0), a copy. */
  exportImage(): Uint8Array {
    return this.readBytes(0, this.size);
  }

  /**
   * Loads a raw image at physical address 0 (the rest of memory is left as it is): whole 4 KiB pages,
   * as {@link exportImage} or another tool's dump gives them.
   *
   * @throws VmkitError `E_INVALID` for an image that is not a Uint8Array, `E_UNALIGNED` for an empty
   *   image or one whose length is not a multiple of 4 KiB (a truncated image), `E_RANGE` for one larger
   *   than the memory. Nothing is written on error.
   */
  importImage(image: Uint8Array): void {
    checkBytes(image, 'image');
    if (image.length === 0 || image.length % PAGE_SIZE_4K !== 0) {
      fail(
        'E_UNALIGNED',
        `image of ${image.length} bytes is not a positive multiple of 4 KiB (whole pages)`,
        {
          length: image.length,
        },
      );
    }
    if (image.length > this.size) {
      fail(
        'E_RANGE',
        `image of ${formatHex(image.length)} bytes is larger than the memory (${formatHex(this.size)})`,
        {
          length: image.length,
        },
      );
    }
    this.writeBytes(0, image);
  }

  private forEachSpan(
    pa: number,
    len: number,
    fn: (chunk: Uint8Array, off: number, n: number, done: number) => void,
  ): void {
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const c = Math.floor(a / CHUNK_SHIFT_DIV);
      const off = a % CHUNK_SHIFT_DIV;
      const n = Math.min(len - done, PHYS_CHUNK_SIZE - off);
      fn(this.u8[c]!, off, n, done);
      done += n;
    }
  }
}

function checkByte(v: unknown, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v))
    fail('E_INVALID', `${what} ${describeValue(v)} is not an integer Number`, { value: v });
  if (v < 0 || v > 255) fail('E_RANGE', `${what} ${describeValue(v)} is not in [0, 255]`, { value: v });
}

function checkWord(v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v))
    fail('E_INVALID', `32-bit value ${describeValue(v)} is not an integer Number`, { value: v });
  if (v < -0x8000_0000 || v >= 0x1_0000_0000)
    fail('E_RANGE', `32-bit value ${describeValue(v)} is not in [-2^31, 2^32)`, { value: v });
}

function checkBytes(v: unknown, what: string): void {
  if (!(v instanceof Uint8Array))
    fail('E_INVALID', `${what} ${describeValue(v)} is not a Uint8Array`, { value: v });
}
