import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runReadmeExample } from '@vmkit/testkit';
import { expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

for (const ex of readmeExamples(join(pkgDir, 'README.md'))) {
  it(`README example ${ex.index}`, async () => {
    expect(ex.expectedOutput).toBeDefined();
    expect(await runReadmeExample(pkgDir, ex, '@vmkit/memory-set')).toEqual(ex.expectedOutput);
  }, 30_000);
}
