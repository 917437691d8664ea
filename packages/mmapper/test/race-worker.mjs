// Worker entry of worker.test.ts: plain JavaScript, so that Node can start it as a worker; it registers
// tsx (a root devDependency) and runs the TypeScript worker against the package's source, so the test
// needs no build of this package.
import { register } from 'tsx/esm/api';

register();
await import('./race-worker.ts');
