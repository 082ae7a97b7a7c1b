/** Node ids appear in headers, metric labels and deployments: keep them short and plain. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

declare const nodeIdBrand: unique symbol;

/**
 * A node id that passed the rule. Made once where an id enters the node: the
 * node's own (config, checkClusterSettings), a peer's handshake (peer-auth.ts),
 * the Redis membership and stream entries (redis/), a backplane's join; what
 * takes a NodeId behind them (placement, replication, routing) need not check.
 */
export type NodeId = string & { readonly [nodeIdBrand]: true };

export const isNodeId = (id: string): id is NodeId => NODE_ID_PATTERN.test(id);

/** Returns the id if valid, else throws an Error that says what to fix. */
export const validateNodeId = (id: string): NodeId => {
  if (!isNodeId(id))
    throw new Error(`node id ${JSON.stringify(id)}: use 1–64 characters of A-Z a-z 0-9 _ -`);
  return id;
};
