/**
 * Opens report.html files in Debian's Chromium (/usr/bin/chromium) through playwright-core, the way
 * a person would: served from a loopback HTTP server, every request the page makes recorded (and
 * refused unless it is the page itself), console errors and page errors collected.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface OpenedPage {
  page: Page;
  url: string;
  /** Every URL the page asked for, the page itself included. */
  requests: string[];
  /** console.error messages and uncaught page errors. */
  errors: string[];
  close(): Promise<void>;
}

export interface ReportBrowser {
  /** Serves `html` at a fresh loopback URL and opens it; resolves when the page's script has finished. */
  open(html: string, viewport?: { width: number; height: number }): Promise<OpenedPage>;
  /** Requests the loopback server saw (every path, the page's included). */
  readonly served: string[];
  close(): Promise<void>;
}

export async function launchReportBrowser(): Promise<ReportBrowser> {
  const pages = new Map<string, string>();
  const served: string[] = [];
  const server: Server = createServer((req, res) => {
    served.push(req.url ?? '');
    const body = pages.get(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const userDataDir = mkdtempSync(join(tmpdir(), 'verdict-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
  } catch (err) {
    server.close();
    rmSync(userDataDir, { recursive: true, force: true });
    throw new Error(
      `cannot start ${CHROMIUM} (${(err as Error).message.split('\n')[0]}): apt-get install chromium, or run scripts/setup-deps.sh`,
    );
  }
  let n = 0;
  return {
    served,
    async open(html, viewport = { width: 1280, height: 900 }) {
      const path = `/report-${++n}.html`;
      pages.set(path, html);
      const url = `http://127.0.0.1:${port}${path}`;
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      const requests: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => {
        requests.push(r.url());
      });
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => {
        errors.push(`pageerror: ${e.message}`);
      });
      // Anything but the page itself is refused before it leaves the browser.
      await page.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort('blockedbyclient')));
      await page.goto(url, { waitUntil: 'load' });
      await page.waitForSelector('html[data-ready="true"]', { timeout: 30_000 });
      return { page, url, requests, errors, close: () => page.close() };
    },
    async close() {
      await context.close().catch(() => {});
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Per chart canvas: how many pixels are painted (not transparent, not white). */
export async function paintedPixels(page: Page): Promise<number[]> {
  type Canvas = {
    width: number;
    height: number;
    getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
  };
  return page.$$eval('.uplot canvas', (canvases) =>
    canvases.map((c) => {
      const canvas = c as unknown as Canvas;
      const ctx = canvas.getContext('2d');
      if (!ctx || !canvas.width || !canvas.height) return 0;
      const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] > 245 && d[i + 1] > 245 && d[i + 2] > 245)) painted++;
      return painted;
    }),
  );
}
