/** Helpers for function tests: the fixture directory and an HTTP invoke that returns status and body. */
import { fileURLToPath } from 'node:url';

export const FIXTURE_FUNCTIONS = fileURLToPath(
  new URL('../../../test/fixtures/functions', import.meta.url),
);
export const DEMO_FUNCTIONS = fileURLToPath(
  new URL('../../../../demo-app/functions', import.meta.url),
);

export interface Called {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

export const invoke = async (
  url: string,
  name: string,
  input: unknown,
  headers: Record<string, string> = {},
): Promise<Called> => {
  const res = await fetch(`${url}/v1/functions/${name}/invoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
    headers: res.headers,
  };
};

export const errorCode = (called: Called): string | undefined =>
  (called.body as { error?: { code?: string } } | undefined)?.error?.code;
