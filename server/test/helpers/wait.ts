/** Polls `check` until it returns truthy or `timeoutMs` passes (then throws with `what`). */
export const waitFor = async <T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
  intervalMs = 10,
): Promise<NonNullable<T>> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
};

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `promise`, or a failure naming `what` after `ms`: a guarantee that breaks (a
 * close that never comes, an ack that is never sent) fails the test with a
 * message instead of holding it until the runner's timeout.
 */
export const withTimeout = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
};
