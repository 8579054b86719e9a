/**
 * What a load agent sends the harness when its run is over: one HTTP POST to the collector,
 * `POST <collector>/<agent index>` with `Authorization: Bearer <token>`, gzip-compressed NDJSON:
 * the first line is the {@link AgentReportHeader} (the agent's summary, thresholds, assessment and
 * clock), every further line one ledger row exactly as `Ledger.toNdjsonLine` writes it (wall-clock
 * epoch-ms times, so the harness re-bases them on one origin). The collector accepts the report only
 * when it holds exactly `rows` rows; anything else is an agent that did not report.
 */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import type { Assessment } from '../assessment.ts';
import type { Ledger } from '../ledger.ts';
import type { LoadSummary } from '../summary.ts';
import type { ThresholdResult } from '../thresholds.ts';

export const REPORT_TYPE = 'verdict-load-agent-report';
export const REPORT_VERSION = 1;

export interface AgentReportHeader {
  type: typeof REPORT_TYPE;
  version: typeof REPORT_VERSION;
  /** Agent index (the Job's completion index) and the number of agents in the run. */
  index: number;
  agents: number;
  /** Where it ran (the pod's host name), for the report. */
  host: string;
  /** The shared start instant plus this agent's offset (epoch ms), and how late its clock started. */
  startAt: number | null;
  startLateMs: number;
  /** Wall-clock time of the agent ledger's origin (epoch ms). */
  originEpochMs: number;
  /** Ledger rows that follow this line. */
  rows: number;
  summary: LoadSummary;
  thresholds: ThresholdResult[];
  assessment: Assessment;
}

export interface SendReportOptions {
  /** Attempts on a network error or a 5xx answer (default 5), one second apart. */
  attempts?: number;
  /** Per attempt (default 120 s). */
  timeoutMs?: number;
  onRetry?: (attempt: number, error: string) => void;
}

export class ReportRejectedError extends Error {}

/** Sends the header and every ledger row; retries what may succeed on a second try. */
export async function sendReport(
  url: string,
  token: string,
  header: AgentReportHeader,
  ledger: Ledger,
  o: SendReportOptions = {},
): Promise<void> {
  const attempts = o.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      await postOnce(url, token, header, ledger, o.timeoutMs ?? 120_000);
      return;
    } catch (err) {
      if (err instanceof ReportRejectedError || attempt >= attempts) throw err;
      o.onRetry?.(attempt, (err as Error).message);
      await sleep(1000);
    }
  }
}

function postOnce(url: string, token: string, header: AgentReportHeader, ledger: Ledger, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const req = request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          if (body.length < 4096) body += d;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) finish();
          else if (status >= 500) finish(new Error(`the collector answered ${status}: ${body.trim()}`));
          else finish(new ReportRejectedError(`the collector refused the report (${status}): ${body.trim()}`));
        });
        res.on('error', (e) => finish(e));
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer from the collector within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    req.on('error', (e) => finish(e));
    const gzip = createGzip();
    gzip.on('error', (e) => req.destroy(e));
    gzip.pipe(req);
    void (async () => {
      const write = async (chunk: string) => {
        if (!gzip.write(chunk)) await new Promise<void>((r) => gzip.once('drain', r));
      };
      await write(JSON.stringify(header) + '\n');
      let batch = '';
      for (let row = 0; row < header.rows && !settled; row++) {
        batch += ledger.toNdjsonLine(row) + '\n';
        if (batch.length >= 1 << 16) {
          await write(batch);
          batch = '';
        }
      }
      if (batch) await write(batch);
      gzip.end();
    })().catch((e) => req.destroy(e as Error));
  });
}
