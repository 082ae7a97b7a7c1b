/** Node ids appear in headers, metric labels and deployments: keep them short and plain. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
