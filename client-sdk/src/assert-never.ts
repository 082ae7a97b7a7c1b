/**
 * The default branch of a switch over a union: the compiler proves it
 * unreachable (a new member that a switch forgets fails the build, as well as
 * typescript-eslint's switch-exhaustiveness-check), and a value that arrives
 * anyway (a cast, data from outside the types) fails loudly instead of falling
 * through to `undefined`. Shared with the node through the protocol module.
 */
export const assertNever = (value: never, what: string): never => {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
};
