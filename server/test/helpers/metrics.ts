/** Reading a node's Prometheus text in tests. */

/** GET /metrics as text. */
export const scrape = async (url: string): Promise<string> => {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
};

/** The value of one sample, e.g. `stateweave_errors_total{code="TEXT_FRAME"}`; 0 when absent. */
export const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

/** How often the node counted an error code so far. */
export const errorCount = async (url: string, code: string): Promise<number> =>
  sample(await scrape(url), `stateweave_errors_total{code="${code}"}`);
