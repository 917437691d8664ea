export { type BenchTask, bestNs, measure, type Metrics, nsPerCall, reportMetrics } from './bench.js';
export { FaultInjector } from './faults.js';
export { type ReadmeExample, readmeExamples, runReadmeExample } from './readme.js';
