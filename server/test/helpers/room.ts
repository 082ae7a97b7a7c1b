/** The options a unit test's Room runs with: a silent logger, fresh metrics, small limits. */
import { createMetrics } from '../../src/metrics.js';
import type { RoomOptions } from '../../src/hub/room.js';
import type { Store } from '../../src/storage/store.js';
import { silentLogger } from './node.js';

export const roomOptions = (store: Store): RoomOptions => ({
  store,
  logger: silentLogger(),
  metrics: createMetrics({ collectDefault: false }),
  maxDocBytes: 1 << 20,
  maxConnectionsPerDoc: 10,
  compactAfterUpdates: 100,
});
