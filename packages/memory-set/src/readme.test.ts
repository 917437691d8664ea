import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runReadmeExample } from '@vmkit/testkit';
import { expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

for (const ex of readmeExamples(join(pkgDir, 'README.md'))) {
  it(`README example ${ex.index}`, async () => {
    // The `./x86_64` entry point is pointed at its source too (the example file lives in .vitest-readme/).
    const code = ex.code.replace(/(['"])@vmkit\/memory-set\/x86_64\1/g, "'../src/backends/index.ts'");
    const out = await runReadmeExample(pkgDir, { ...ex, code }, '@vmkit/memory-set');
    expect(ex.expectedOutput).toBeDefined();
    expect(out).toEqual(ex.expectedOutput);
  });
}
