/**
 * Work deferred to the end of the current event-loop turn.
 *
 * Every frame that arrived in one poll phase has been handled by the time the
 * check phase runs, so a job queued here sees all of them: a room applies the
 * updates of a turn in one Yjs transaction and fans them out as one frame, and
 * sockets corked during the turn are uncorked once. One setImmediate serves all
 * jobs; jobs queued while they run (a room's fan-out corking a socket) run in the
 * same pass, in order, so nothing waits for another loop iteration.
 *
 * Jobs must not throw: one that does is reported as an uncaught exception after
 * the others have run.
 */
let jobs: Array<() => void> = [];

const runJobs = (): void => {
  let failure: unknown;
  let failed = false;
  // Not a for-of over a copy: jobs queued by a job belong to this pass.
  for (let i = 0; i < jobs.length; i++) {
    try {
      jobs[i]!();
    } catch (err) {
      if (!failed) failure = err;
      failed = true;
    }
  }
  jobs = [];
  if (failed) throw failure;
};

export const atEndOfTurn = (job: () => void): void => {
  if (jobs.length === 0) setImmediate(runJobs);
  jobs.push(job);
};
