/** Tiny zod-compatible validators (anything with `parse`), so the examples need no dependency. */
export const object = <T>(check: (v: Record<string, unknown>) => T) => ({
  parse(value: unknown): T {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('input must be an object');
    return check(value as Record<string, unknown>);
  },
});

export const str = (v: Record<string, unknown>, key: string): string => {
  const x = v[key];
  if (typeof x !== 'string' || x === '' || x.length > 200)
    throw new Error(`${key} must be a non-empty string`);
  return x;
};

export const num = (v: Record<string, unknown>, key: string): number => {
  const x = v[key];
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`${key} must be a number`);
  return x;
};
