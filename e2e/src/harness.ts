/**
 * E2E harness: real nodes as child processes (the CLI, serving the built demo app
 * and its functions) and Debian Chromium driven by playwright-core. Everything
 * started here is stopped by its owner, by handle or by pid.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'server/dist/src/main.js');
const STATIC = join(ROOT, 'demo-app/dist');
const FUNCTIONS = join(ROOT, 'demo-app/functions');
export const RESULTS = join(ROOT, 'e2e/test-results');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface NodeProcess {
  readonly port: number;
  readonly url: string;
  readonly output: () => string;
  /** SIGTERM (graceful: flushes every document), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Starts `stateweave serve` on `port` (0 = free) and waits for its "listening" log line. */
export const startNode = async (
  dataDir: string,
  port = 0,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<NodeProcess> => {
  if (!existsSync(join(STATIC, 'index.html')))
    throw new Error(`${STATIC}/index.html is missing: run npm run build first`);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--no-node-snapshot', // isolated-vm on Node 20+ (docs/functions.md)
      MAIN,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--data',
      dataDir,
      '--static',
      STATIC,
      '--functions',
      FUNCTIONS,
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const bound = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`node did not start within 20s:\n${output}`)),
      20_000,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.includes('"listening"')) continue;
        try {
          const parsed = JSON.parse(line) as { msg?: string; port?: number };
          if (parsed.msg === 'listening' && typeof parsed.port === 'number') {
            clearTimeout(timer);
            resolve(parsed.port);
            return;
          }
        } catch {
          // a partial line: wait for the rest
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`node exited (${code ?? signal}) before listening:\n${output}`));
    });
  }).catch(async (err: unknown) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    throw err;
  });
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
};

/** A port that was free a moment ago (for nodes that must know each other's URL before they start). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

/** Polls `check` every 100 ms until it returns true; fails with `what` after `timeoutMs`. */
export const until = async (
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
};

export const tempDir = async (): Promise<{ path: string; remove: () => Promise<void> }> => {
  const path = await mkdtemp(join(tmpdir(), 'stateweave-e2e-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
};

export const launchBrowser = async (): Promise<Browser> => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
};

/** A fresh context (its own storage, so its own visitor id) at a laptop-sized viewport. */
export const newContext = (browser: Browser): Promise<BrowserContext> =>
  browser.newContext({ viewport: { width: 1366, height: 820 } });

/** One node and one browser, shared by the tests of a describe block. */
export interface NodeAndBrowser {
  readonly node: NodeProcess;
  readonly browser: Browser;
  /** A fresh context (newContext), closed after the block. */
  context(): Promise<BrowserContext>;
  /**
   * A page of a fresh context at `path` on the node (`/?space=…#editor`), 15 s
   * timeouts; `watch` sees the page before it loads (e.g. to count its sockets).
   */
  page(path: string, watch?: (page: Page) => void): Promise<Page>;
  /** Stops the node (gracefully), awaits `whileDown`, and starts it again on the same port and data. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
}

/**
 * Registers the block's `before` (a temp data directory, a node started with
 * `env` — e.g. its auth secret — and a browser) and `after` (every context made
 * here, the browser, the node, the directory). Call inside `describe`.
 */
export const nodeAndBrowser = (env: NodeJS.ProcessEnv = {}): NodeAndBrowser => {
  let node: NodeProcess | undefined;
  let browser: Browser | undefined;
  let data: { path: string; remove: () => Promise<void> } | undefined;
  const contexts: BrowserContext[] = [];
  const started = <T>(part: T | undefined, what: string): T => {
    if (part === undefined) throw new Error(`the ${what} is not started (before() failed?)`);
    return part;
  };

  before(async () => {
    data = await tempDir();
    node = await startNode(data.path, 0, [], env);
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await node?.stop();
    await data?.remove();
  });

  const context = async (): Promise<BrowserContext> => {
    const made = await newContext(started(browser, 'browser'));
    contexts.push(made);
    return made;
  };
  return {
    get node() {
      return started(node, 'node');
    },
    get browser() {
      return started(browser, 'browser');
    },
    context,
    async page(path, watch) {
      const page = await (await context()).newPage();
      page.setDefaultTimeout(15_000);
      watch?.(page);
      await page.goto(`${started(node, 'node').url}${path}`, { timeout: 15_000 });
      return page;
    },
    async restart(whileDown) {
      const { port } = started(node, 'node');
      await started(node, 'node').stop();
      await whileDown?.();
      node = await startNode(started(data, 'data directory').path, port, [], env);
    },
  };
};

/** A token for `docs` with `rights`, minted by the CLI with `secret` (as the README's Security section does). */
export const mintToken = (secret: string, docs: string, rights: string, ttl = '10m'): string =>
  execFileSync(
    process.execPath,
    [MAIN, 'token', '--docs', docs, '--rights', rights, '--ttl', ttl],
    { env: { ...process.env, STATEWEAVE_AUTH_SECRET: secret }, encoding: 'utf8' },
  ).trim();

/**
 * Opens the demo at `view` in `space`, as `name` (with `extra` URL parameters,
 * e.g. a token), and waits until the header says connected.
 */
export const openDemo = async (
  context: BrowserContext,
  base: string,
  space: string,
  view: string,
  name: string,
  extra: Record<string, string> = {},
): Promise<Page> => {
  const query = new URLSearchParams({ space, name, ...extra });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${base}/?${query.toString()}#${view}`, { timeout: 15_000 });
  await waitForText(page, '[data-testid="connection"]', 'connected');
  return page;
};

/** Waits until the element's text content equals `text` (or contains it, with `contains`). */
export const waitForText = async (
  page: Page,
  selector: string,
  text: string,
  { contains = false, timeout = 15_000 } = {},
): Promise<void> => {
  try {
    await page.waitForFunction(
      ([sel, want, sub]) => {
        const got = document.querySelector(sel as string)?.textContent ?? '';
        return sub ? got.includes(want as string) : got === want;
      },
      [selector, text, contains] as const,
      { timeout, polling: 50 },
    );
  } catch (err) {
    const got = await page
      .locator(selector)
      .first()
      .textContent({ timeout: 1000 })
      .catch(() => '(no element)');
    throw new Error(
      `waiting for ${selector} to ${contains ? 'contain' : 'be'} ${JSON.stringify(text)}; it is ${JSON.stringify(got)}`,
      { cause: err },
    );
  }
};

/**
 * The editor's text as the person sees it: ProseMirror's blocks (paragraphs,
 * headings, lists) a line each, without the widgets drawn into them (remote
 * carets with names).
 */
const readEditor = (): string | null => {
  const content = document.querySelector('[data-testid="editor-text"]');
  if (!content) return null;
  return Array.from(content.children)
    .map((block) => {
      const copy = block.cloneNode(true) as Element;
      copy
        .querySelectorAll('[contenteditable="false"], .ProseMirror-widget')
        .forEach((widget) => widget.remove());
      return copy.textContent ?? '';
    })
    .join('\n');
};

/** Text of the first element matching `selector` inside the editor, without widgets (carets). */
const readInEditor = (selector: string): string | null => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const copy = el.cloneNode(true) as Element;
  copy
    .querySelectorAll('[contenteditable="false"], .ProseMirror-widget')
    .forEach((widget) => widget.remove());
  return copy.textContent ?? '';
};

/** Waits until the element in the editor (e.g. its `strong`) holds exactly `text`, carets aside. */
export const waitForFormatted = async (
  page: Page,
  selector: string,
  text: string,
  timeout = 15_000,
): Promise<void> => {
  const deadline = Date.now() + timeout;
  let seen = await page.evaluate(readInEditor, selector);
  while (seen !== text) {
    if (Date.now() > deadline)
      throw new Error(
        `${selector} should be ${JSON.stringify(text)}, is ${JSON.stringify(seen)}; the editor: ${await page
          .locator('[data-testid="editor-text"]')
          .innerHTML({ timeout: 1000 })
          .catch(() => '(none)')}`,
      );
    await sleep(50);
    seen = await page.evaluate(readInEditor, selector);
  }
};

export const editorText = async (page: Page): Promise<string> =>
  (await page.evaluate(readEditor)) ?? '(no editor)';

/** Waits until the editor holds exactly `text` (polled from here: the reader runs in the page). */
export const waitForEditor = async (page: Page, text: string, timeout = 15_000): Promise<void> => {
  const deadline = Date.now() + timeout;
  let seen = await editorText(page);
  while (seen !== text) {
    if (Date.now() > deadline)
      throw new Error(`editor should be ${JSON.stringify(text)}, is ${JSON.stringify(seen)}`);
    await sleep(50);
    seen = await editorText(page);
  }
};

export const screenshot = async (page: Page, name: string): Promise<string> => {
  await mkdir(RESULTS, { recursive: true });
  const path = join(RESULTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false, timeout: 15_000 });
  return path;
};

export const uniqueSpace = (label: string): string =>
  `${label}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
