/**
 * The demo's function types, derived from the definitions in demo-app/functions:
 * the input is what each function's zod schema accepts, the output what its
 * handler returns. Type-only imports: nothing of the functions reaches the bundle.
 */
import type { FunctionTypesOf } from '@stateweave/server/define';
import type bookSeat from '../functions/bookSeat.js';
import type can from '../functions/can.js';
import type joinSensors from '../functions/joinSensors.js';
import type trackVisit from '../functions/trackVisit.js';

export type { Pair, Reading } from '../functions/joinSensors.js';

export type DemoFunctions = FunctionTypesOf<{
  bookSeat: typeof bookSeat;
  can: typeof can;
  joinSensors: typeof joinSensors;
  trackVisit: typeof trackVisit;
}>;
