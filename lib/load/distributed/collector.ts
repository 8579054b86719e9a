/**
 * The harness's side of a distributed run: an HTTP server, at an address the agents' pods reach,
 * that takes each agent's report (see report.ts) and rebuilds its ledger. A report counts only when
 * it is complete: the token matches, the index is one of the run's and not reported yet, the header
 * parses and exactly the announced number of rows arrive. Bounded: rows per agent, line length.
 *
 * While they run, agents post their progress (successful answers per app version) to
 * `<progressUrl>/<index>` about once a second; the answer tells them whether to stop. That is how a
 * caller watches a distributed load live ({@link Collector.answersFrom}) and ends it gracefully
 * ({@link Collector.requestStop}: no new iteration starts, running ones finish, each agent reports).
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGunzip } from 'node:zlib';
import { Ledger, rowFromNdjson } from '../ledger.ts';
import { VersionAnswers } from '../version-answers.ts';
import { REPORT_TYPE, REPORT_VERSION, type AgentReportHeader } from './report.ts';

export interface AgentReport {
  header: AgentReportHeader;
  /** The agent's ledger, on the agent's own origin (`header.originEpochMs`). */
  ledger: Ledger;
  receivedAt: number;
}

export interface CollectorOptions {
  /** Address to listen on: one the agents reach (the embedded cluster's pod gateway, or loopback in tests). */
  host: string;
  /** Default: a free port. */
  port?: number;
  /** Agents must send it as a bearer token. */
  token: string;
  /** Number of agents: indexes 0..agents-1. */
  agents: number;
  /** Most ledger rows one agent may send (default 5,000,000, the engine's default cap). */
  maxRowsPerAgent?: number;
  /** Called after each accepted report (and with the reason for each refused one). */
  onReport?: (r: AgentReport) => void;
  onRefused?: (index: number | null, reason: string) => void;
}

export interface Collector extends AsyncDisposable {
  /** Base URL agents post to (`<url>/<index>`). */
  readonly url: string;
  readonly reports: ReadonlyMap<number, AgentReport>;
  /** Base URL agents post their progress to (`<progressUrl>/<index>`). */
  readonly progressUrl: string;
  /** Each agent's latest progress: successful answers per app version. */
  readonly progress: ReadonlyMap<number, Readonly<Record<string, number>>>;
  /** Successful answers from `version` over every agent, as last posted (or reported). */
  answersFrom(version: string): number;
  /** Tells every agent, at its next progress post, to stop gracefully and report. */
  requestStop(reason: string): void;
  /** Whether {@link requestStop} was called. */
  readonly stopRequested: boolean;
  /** Resolves once every agent reported, or when `signal` aborts (then with what is there). */
  waitForAll(signal?: AbortSignal): Promise<ReadonlyMap<number, AgentReport>>;
  close(): Promise<void>;
}

const MAX_HEADER_LINE = 64 << 20;
const MAX_PROGRESS_BODY = 64 << 10;
const MAX_ROW_LINE = 64 << 10;

class Refused extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** What the collector knows while the agents report. */
interface CollectorState {
  reports: Map<number, AgentReport>;
  /** Agents whose report is being read. */
  receiving: Set<number>;
  /** Called at each complete report and at close (waitForAll). */
  waiters: Set<() => void>;
  /** Each agent's answers by version, as of its last progress post. */
  progress: Map<number, Record<string, number>>;
  counted: Map<number, VersionAnswers>;
  stopReason: string | null;
  maxRows: number;
  expected: Buffer;
}

export async function startCollector(o: CollectorOptions): Promise<Collector> {
  const st: CollectorState = {
    reports: new Map(),
    receiving: new Set(),
    waiters: new Set(),
    progress: new Map(),
    counted: new Map(),
    stopReason: null,
    maxRows: o.maxRowsPerAgent ?? 5_000_000,
    expected: Buffer.from(`Bearer ${o.token}`),
  };
  const server = createServer((req, res) => {
    void handle(st, o, req, res);
  });
  server.requestTimeout = 300_000;
  server.headersTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  return collectorOf(st, o, server);
}

/** One request: a report (`POST /v1/reports/<index>`) or a progress post, with the run's bearer token; anything else refused. */
async function handle(st: CollectorState, o: CollectorOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let index: number | null = null;
  try {
    const m = /^\/v1\/(reports|progress)\/(\d{1,6})$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) throw new Refused(404, 'POST /v1/reports/<agent index> or /v1/progress/<agent index>');
    const auth = Buffer.from(req.headers.authorization ?? '');
    if (auth.length !== st.expected.length || !timingSafeEqual(auth, st.expected))
      throw new Refused(401, 'wrong or missing bearer token');
    index = Number(m[2]);
    if (index >= o.agents) throw new Refused(400, `agent index ${index} is not one of this run's 0..${o.agents - 1}`);
    if (m[1] === 'progress') {
      const answers = await readProgress(req);
      if (!st.reports.has(index)) st.progress.set(index, answers);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ stop: st.stopReason }));
      return;
    }
    if (st.reports.has(index) || st.receiving.has(index)) throw new Refused(409, `agent ${index} has reported already`);
    st.receiving.add(index);
    try {
      const report = await readReport(req, index, st.maxRows);
      st.reports.set(index, report);
      o.onReport?.(report);
    } finally {
      st.receiving.delete(index);
    }
    res.writeHead(204).end();
    for (const w of [...st.waiters]) w();
  } catch (err) {
    const status = err instanceof Refused ? err.status : 400;
    const message = (err as Error).message;
    o.onRefused?.(index, message);
    if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(message + '\n');
    req.resume();
  }
}

/** A progress post's body: `{"answers": {"<version>": <count>, ...}}`, bounded. */
async function readProgress(req: IncomingMessage): Promise<Record<string, number>> {
  let body = '';
  for await (const chunk of req.setEncoding('utf8') as AsyncIterable<string>) {
    body += chunk;
    if (body.length > MAX_PROGRESS_BODY) throw new Refused(413, `a progress body longer than ${MAX_PROGRESS_BODY} characters`);
  }
  let answers: unknown;
  try {
    answers = (JSON.parse(body) as { answers?: unknown }).answers;
  } catch {
    throw new Refused(400, 'progress is not JSON');
  }
  if (
    typeof answers !== 'object' ||
    answers === null ||
    Object.values(answers).some((n) => !Number.isInteger(n) || (n as number) < 0)
  )
    throw new Refused(400, 'progress must be {"answers": {"<version>": <count>, ...}}');
  return answers as Record<string, number>;
}

function collectorOf(st: CollectorState, o: CollectorOptions, server: Server): Collector {
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const w of [...st.waiters]) w();
    }));
  const { reports, progress, counted, waiters } = st;
  return {
    url: `http://${host}:${port}/v1/reports`,
    progressUrl: `http://${host}:${port}/v1/progress`,
    reports,
    progress,
    answersFrom(version) {
      let n = 0;
      for (let i = 0; i < o.agents; i++) {
        const r = reports.get(i);
        if (r && !counted.has(i)) counted.set(i, new VersionAnswers(r.ledger));
        n += r ? counted.get(i)!.of(version) : (progress.get(i)?.[version] ?? 0);
      }
      return n;
    },
    requestStop(reason) {
      st.stopReason ??= reason;
    },
    get stopRequested() {
      return st.stopReason !== null;
    },
    waitForAll(signal) {
      return new Promise((resolve) => {
        const check = () => {
          if (reports.size >= o.agents || signal?.aborted || closed) {
            waiters.delete(check);
            signal?.removeEventListener('abort', check);
            resolve(reports);
          }
        };
        waiters.add(check);
        signal?.addEventListener('abort', check, { once: true });
        check();
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reads one report body (gzip or plain NDJSON) into a header and a ledger. */
async function readReport(req: IncomingMessage, index: number, maxRows: number): Promise<AgentReport> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'gzip' && encoding !== 'identity')
    throw new Refused(415, `content-encoding ${encoding} is not supported (gzip or none)`);
  const body = encoding === 'gzip' ? req.pipe(createGunzip()) : req;
  if (body !== req) req.on('error', (e) => body.destroy(e));
  body.setEncoding('utf8');
  let header: AgentReportHeader | null = null;
  let ledger: Ledger | null = null;
  let rows = 0;
  let rest = '';
  const line = (text: string) => {
    if (text.length === 0) return;
    if (header === null) {
      header = parseHeader(text, index, maxRows);
      ledger = new Ledger(header.originEpochMs - performance.timeOrigin);
      return;
    }
    if (++rows > header.rows) throw new Refused(400, `more rows than the ${header.rows} the header announced`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Refused(400, `row ${rows} is not JSON`);
    }
    try {
      ledger!.append(rowFromNdjson(value, header.originEpochMs));
    } catch (err) {
      throw new Refused(400, `row ${rows}: ${(err as Error).message}`);
    }
  };
  for await (const chunk of body as AsyncIterable<string>) {
    let from = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', from)) {
      line(rest + chunk.slice(from, nl));
      rest = '';
      from = nl + 1;
    }
    rest += chunk.slice(from);
    const limit = header === null ? MAX_HEADER_LINE : MAX_ROW_LINE;
    if (rest.length > limit) throw new Refused(413, `a line longer than ${limit} characters`);
  }
  line(rest);
  if (header === null) throw new Refused(400, 'empty report: no header line');
  const h = header as AgentReportHeader;
  if (rows !== h.rows) throw new Refused(400, `incomplete report: ${rows} of ${h.rows} rows arrived`);
  return { header: h, ledger: ledger!, receivedAt: Date.now() };
}

function parseHeader(text: string, index: number, maxRows: number): AgentReportHeader {
  let h: AgentReportHeader;
  try {
    h = JSON.parse(text);
  } catch {
    throw new Refused(400, 'the first line is not a JSON report header');
  }
  if (h?.type !== REPORT_TYPE || h.version !== REPORT_VERSION)
    throw new Refused(400, `the first line is not a ${REPORT_TYPE} v${REPORT_VERSION} header`);
  if (h.index !== index) throw new Refused(400, `the header says agent ${h.index}, the URL agent ${index}`);
  if (!Number.isInteger(h.rows) || h.rows < 0 || h.rows > maxRows)
    throw new Refused(413, `${h.rows} rows: at most ${maxRows} per agent`);
  if (!Number.isFinite(h.originEpochMs)) throw new Refused(400, 'originEpochMs must be a number');
  if (!h.summary?.counts || !h.assessment) throw new Refused(400, "the header needs the agent's summary and assessment");
  if (h.summary.counts.scheduled !== h.rows)
    throw new Refused(400, `the summary counts ${h.summary.counts.scheduled} rows, the header ${h.rows}`);
  return h;
}
