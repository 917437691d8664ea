import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>;
  scripts: Record<string, string>;
};

describe('package entry points (issue #9, section 6)', () => {
  it('every export has types, import and default', () => {
    expect(pkg.exports['.']).toEqual({
      types: './dist/index.d.ts',
      import: './dist/index.js',
      default: './dist/index.js',
    });
    expect(pkg.scripts.prepack).toBe('pnpm run build');
    expect(pkg.scripts.publint).toContain('attw --pack . --profile esm-only');
  });
  it('require("@vmkit/addr") works from the built dist (Node >= 20.19) and matches import', async () => {
    const entry = join(pkgDir, 'dist/index.js');
    expect(existsSync(entry), 'dist/ is missing: run `pnpm exec turbo run build --filter=@vmkit/addr`').toBe(
      true,
    );
    const required = createRequire(join(pkgDir, 'package.json'))('@vmkit/addr') as Record<string, unknown>;
    const imported = (await import(/* @vite-ignore */ pathToFileURL(entry).href)) as Record<string, unknown>;
    expect(Object.keys(required).sort()).toEqual(Object.keys(imported).sort());
    const { virtAddr, formatVirtAddr, checkVirtRange } = required as {
      virtAddr: (v: string) => number;
      formatVirtAddr: (v: number) => string;
      checkVirtRange: (s: unknown, z: unknown) => void;
    };
    expect(formatVirtAddr(virtAddr('0xffff800000000000'))).toBe('0xffff800000000000');
    expect(typeof checkVirtRange).toBe('function');
  });
});
