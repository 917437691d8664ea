// @vmkit/mmapper (issue 13): the same fast paths on the flat byte-map mapper (its own process, so that
// the shared base class sees one receiver kind). The measurement is in fast-paths.ts.
// Run: pnpm --filter @vmkit/mmapper bench   (or `pnpm bench mmapper` from the repository root)

import { reportMetrics } from '@vmkit/testkit';
import { ByteMapMmapper } from '../src/index.js';
import { fastPaths } from './fast-paths.js';

const byteMap = fastPaths('byte map', (os) => new ByteMapMmapper(os), 0x1_0000_0000, 64);
reportMetrics({
  'mmapper.byteMap.fastPathRatio': byteMap.ensureNs / byteMap.isMappedNs,
  'mmapper.byteMap.isMappedRatio': byteMap.isMappedNs / byteMap.plainNs,
  'mmapper.byteMap.isMappedRatioVsIndexedRead': byteMap.isMappedNs / byteMap.indexedNs,
});
