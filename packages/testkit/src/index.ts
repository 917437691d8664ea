export { bestNs, type Metrics, reportMetrics } from './bench.js';
export { type CodedError, errorCode, expectVmkitError } from './errors.js';
export { FaultInjector } from './faults.js';
export { type ReadmeExample, readmeExamples, runReadmeExample } from './readme.js';
