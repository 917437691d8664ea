import { defineConfig } from 'vitest/config';

// Generous default timeouts: the CI machine has 2 cores and is often loaded (property tests that take
// 1 s alone take 5-10 s there). The slow tests set their own budgets (test/budget.ts).
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
