import { defineConfig } from 'vitest/config';

// Generous default timeouts: CI runs on a 2-core machine that is often loaded (a test that takes 1 s
// alone can take 10 s there). Property tests size their runs with @vmkit/testkit's propertyRuns and set
// their own timeouts; this default is for everything else.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
