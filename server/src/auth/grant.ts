/**
 * What a caller may do: rights on documents matched by patterns. Pure data and
 * pure checks; tokens.ts turns a JWT into a Grant.
 *
 * Patterns: `*` matches every document; `team-42/*` matches every document under
 * `team-42/` (any depth); anything else matches exactly that name.
 */
export const RIGHTS = ['read', 'write', 'invoke', 'admin'] as const;
export type Right = (typeof RIGHTS)[number];

export interface Grant {
  /** Who: the token's `sub`, or 'anonymous' / 'dev'. */
  readonly subject: string;
  /** Document patterns this grant covers. */
  readonly docs: readonly string[];
  readonly rights: ReadonlySet<Right>;
  /** Epoch ms after which the grant is void; undefined = never. */
  readonly expiresAt?: number;
}

export const isRight = (value: unknown): value is Right =>
  (RIGHTS as readonly unknown[]).includes(value);

export const matchesDoc = (pattern: string, name: string): boolean => {
  if (pattern === '*') return true;
  if (pattern.endsWith('/*')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
};

/** Everything, for a node run without any auth configuration (development). */
export const DEV_GRANT: Grant = Object.freeze({
  subject: 'dev',
  docs: ['*'],
  rights: new Set<Right>(RIGHTS),
});

/** Grant subjects that name no one in particular (tokens.ts, access.ts). */
export const SHARED_SUBJECTS: ReadonlySet<string> = new Set(['dev', 'anonymous', 'token']);

/** The token subject that names a user (the history's writer), or undefined. */
export const namedSubject = (grant: Grant): string | undefined =>
  SHARED_SUBJECTS.has(grant.subject) ? undefined : grant.subject;
