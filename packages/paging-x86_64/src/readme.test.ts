import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runReadmeExample } from '@vmkit/testkit';
import { expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');

// Every ```ts example of the README (both the tables and the MMU sections), with its ```text output.
for (const ex of readmeExamples(join(pkgDir, 'README.md'))) {
  it(`README example ${ex.index}`, async () => {
    const out = await runReadmeExample(pkgDir, ex, '@vmkit/paging-x86_64');
    expect(out).toEqual(ex.expectedOutput);
  }, 30_000);
}
