export { bestNs, type Metrics, reportMetrics } from './bench.js';
export { LONG_FACTOR, LONG_RUN, propertyRuns, testTimeout } from './budget.js';
export { type CodedError, errorCode, expectVmkitError } from './errors.js';
export { FaultInjector } from './faults.js';
export { seededRandom } from './random.js';
export {
  formatLikeConsole,
  README_EXAMPLE_DIR,
  type ReadmeExample,
  readmeExamples,
  runReadmeExample,
} from './readme.js';
