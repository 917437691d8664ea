// @vmkit/mmapper (issue 13): the lock-free fast paths of the two-level mapper (the one for the 48-bit
// space) against a plain typed-array read, measured in the same run, interleaved (in fast-paths.ts).
// Run: pnpm --filter @vmkit/mmapper bench   (or `pnpm bench mmapper` from the repository root)

import { reportMetrics } from '@vmkit/testkit';
import { TwoLevelMmapper } from '../src/index.js';
import { fastPaths } from './fast-paths.js';

const two = fastPaths('two-level', (os) => new TwoLevelMmapper(os), 0x200_0000_0000, 64);
reportMetrics({
  'mmapper.fastPathRatio': two.ensureNs / two.isMappedNs,
  'mmapper.isMappedRatio': two.isMappedNs / two.plainNs,
  'mmapper.isMappedNs': two.isMappedNs,
  'mmapper.ensureMappedFastNs': two.ensureNs,
  'mmapper.plainReadNs': two.plainNs,
  'mmapper.isMappedRatioVsIndexedRead': two.isMappedNs / two.indexedNs,
});
