import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runReadmeExample } from '@vmkit/testkit';
import { expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

for (const ex of readmeExamples(join(pkgDir, 'README.md'))) {
  it(`README example ${ex.index}`, async () => {
    const out = await runReadmeExample(pkgDir, ex, '@vmkit/sim');
    expect(ex.expectedOutput).toBeDefined();
    expect(out).toEqual(ex.expectedOutput);
  }, 20_000);
}
