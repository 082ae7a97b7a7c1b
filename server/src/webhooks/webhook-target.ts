/**
 * `--webhook [PREFIX=]URL`: where changes of the documents under PREFIX (every
 * document without one) are delivered. Pure parsing, no I/O.
 */
export interface WebhookTarget {
  /** Where to POST. */
  readonly url: string;
  /** Documents whose names start with this. @default '' (all) */
  readonly prefix: string;
}

/** `https://h/p` or `orders/=https://h/p`. */
export const parseWebhookTarget = (raw: string): WebhookTarget => {
  const value = raw.trim();
  const direct = /^https?:\/\//i.test(value);
  const eq = value.indexOf('=');
  const prefix = direct || eq < 0 ? '' : value.slice(0, eq);
  const url = direct || eq < 0 ? value : value.slice(eq + 1);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--webhook ${JSON.stringify(raw)}: expected [PREFIX=]http(s)://host/path`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new Error(`--webhook ${JSON.stringify(raw)}: expected an http:// or https:// URL`);
  return { url: parsed.href, prefix };
};

/**
 * How a target is named in logs, metrics and status: its prefix and URL without
 * credentials or query (either may carry a receiver's token).
 */
export const targetLabel = ({ url, prefix }: WebhookTarget): string => {
  const u = new URL(url);
  return `${prefix === '' ? '*' : prefix} ${u.origin}${u.pathname}`;
};
