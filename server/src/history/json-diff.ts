/**
 * A structural diff of two JSON values, as a flat list of changes by path
 * (`["todos", 3, "done"]`): what was added, removed or changed from `from` to
 * `to`. Arrays are compared by index (a CRDT's JSON has no stable ids to match).
 */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type JsonChange =
  | { readonly op: 'add'; readonly path: (string | number)[]; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: (string | number)[]; readonly old: unknown }
  | {
      readonly op: 'change';
      readonly path: (string | number)[];
      readonly old: unknown;
      readonly value: unknown;
    };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export const diffJson = (
  from: unknown,
  to: unknown,
  path: (string | number)[] = [],
): JsonChange[] => {
  if (isObject(from) && isObject(to)) {
    const out: JsonChange[] = [];
    for (const key of Object.keys(from)) {
      if (!(key in to)) out.push({ op: 'remove', path: [...path, key], old: from[key] });
      else out.push(...diffJson(from[key], to[key], [...path, key]));
    }
    for (const key of Object.keys(to))
      if (!(key in from)) out.push({ op: 'add', path: [...path, key], value: to[key] });
    return out;
  }
  if (Array.isArray(from) && Array.isArray(to)) {
    const out: JsonChange[] = [];
    const shared = Math.min(from.length, to.length);
    for (let i = 0; i < shared; i++) out.push(...diffJson(from[i], to[i], [...path, i]));
    for (let i = shared; i < from.length; i++)
      out.push({ op: 'remove', path: [...path, i], old: from[i] });
    for (let i = shared; i < to.length; i++)
      out.push({ op: 'add', path: [...path, i], value: to[i] });
    return out;
  }
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  return [{ op: 'change', path, old: from, value: to }];
};
