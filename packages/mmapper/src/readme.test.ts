import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runReadmeExample } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
// Written, pointed at the sources (subpaths too) and type-checked strictly when collected.
const examples = readmeExamples(join(pkgDir, 'README.md'));

describe('README examples type-check, run and print what the README shows', () => {
  it('has examples, each with its output', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
    expect(examples.every((e) => e.expectedOutput !== undefined)).toBe(true);
  });
  for (const ex of examples) {
    it(`example ${ex.index}`, async () => {
      expect(await runReadmeExample(pkgDir, ex, '@vmkit/mmapper')).toEqual(ex.expectedOutput);
    }, 30_000);
  }
});
