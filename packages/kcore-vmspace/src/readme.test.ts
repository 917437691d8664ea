import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runReadmeExample } from '@vmkit/testkit';
import { describe, expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const examples = readmeExamples(join(pkgDir, 'README.md'));

describe('README examples run and print what the README shows', () => {
  it('has at least one example with its output', () => {
    expect(examples.length).toBeGreaterThan(0);
    expect(examples.every((e) => e.expectedOutput !== undefined)).toBe(true);
  });
  for (const ex of examples) {
    it(`example ${ex.index}`, async () => {
      expect(await runReadmeExample(pkgDir, ex, '@vmkit/kcore-vmspace')).toEqual(ex.expectedOutput);
    }, 20_000);
  }
});
