/**
 * A run's notification as a Slack message in Block Kit (an incoming webhook's JSON body: `text` as
 * the fallback for notifications, `blocks` for the message), built inside Block Kit's limits and
 * checked against them (`blockKitProblems`, also used by the tests' receiver).
 *
 * The limits, from Slack's Block Kit reference (docs.slack.dev/reference/block-kit):
 * - a message has at most 50 blocks ("Blocks" page);
 * - header: a plain_text object of at most 150 characters (header-block page);
 * - section: `text` 1–3000 characters; `fields` at most 10, each at most 2000 (section-block page);
 * - context: at most 10 elements (context-block page); a text object at most 3000 characters;
 * - block_id at most 255 characters (every block page);
 * - the top-level `text` is truncated by Slack after 40,000 characters (chat.postMessage page);
 *   kept far under it here.
 * mrkdwn text escapes `&`, `<` and `>` (Slack's "Formatting text" page), so nothing in a record can
 * become a link, a mention or a broadcast.
 */
import type { Verdict } from '../../lib/verdict.ts';
import type { Notification } from './message.ts';

export const SLACK_LIMITS = {
  blocks: 50,
  headerText: 150,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  contextElements: 10,
  contextText: 3000,
  blockId: 255,
  fallbackText: 40_000,
} as const;

type Text = { type: 'plain_text' | 'mrkdwn'; text: string; emoji?: boolean };
export type SlackBlock =
  | { type: 'header'; text: Text; block_id?: string }
  | { type: 'section'; text?: Text; fields?: Text[]; block_id?: string }
  | { type: 'context'; elements: Text[]; block_id?: string }
  | { type: 'divider'; block_id?: string };

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

const ICON: Record<Verdict, string> = { PASS: ':white_check_mark:', FAIL: ':x:', INCONCLUSIVE: ':warning:', ERROR: ':boom:' };

/** mrkdwn-safe text: `&`, `<`, `>` escaped, control characters dropped. */
export function mrkdwn(s: string): string {
  return s
    .toWellFormed()
    .replace(/[\u0000-\u0008\u000B-\u001F\u007F]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** Cut to `max` characters (by code points), saying so. */
function cut(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

const len = (s: string) => [...s].length;
const md = (text: string, max: number): Text => ({ type: 'mrkdwn', text: cut(text, max) });

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Lines packed into at most `maxBlocks` sections of at most 3000 characters; how many lines fit. */
function packLines(title: string, lines: string[], maxBlocks: number): { blocks: SlackBlock[]; shown: number } {
  if (maxBlocks < 1) return { blocks: [], shown: 0 };
  const blocks: SlackBlock[] = [];
  let cur = `*${title}*`;
  let shown = 0;
  for (const line of lines) {
    const l = cut(line, SLACK_LIMITS.sectionText - 100);
    if (len(cur) + 1 + len(l) > SLACK_LIMITS.sectionText) {
      if (blocks.length + 1 >= maxBlocks) break;
      blocks.push({ type: 'section', text: md(cur, SLACK_LIMITS.sectionText) });
      cur = l;
    } else cur += `\n${l}`;
    shown++;
  }
  blocks.push({ type: 'section', text: md(cur, SLACK_LIMITS.sectionText) });
  return { blocks, shown };
}

/** The Block Kit message of a notification, within every limit above. */
export function slackMessage(n: Notification): SlackMessage {
  const blocks: SlackBlock[] = [];
  blocks.push({
    type: 'header',
    text: { type: 'plain_text', text: cut(`${n.verdict} · verdict ${n.command}`, SLACK_LIMITS.headerText), emoji: true },
  });
  blocks.push({ type: 'section', text: md(`${ICON[n.verdict]} *${mrkdwn(n.headline)}*`, SLACK_LIMITS.sectionText) });
  const fields: Text[] = [md(`*Target*\n${mrkdwn(n.target)}`, SLACK_LIMITS.fieldText)];
  const releases = Object.entries(n.releases);
  if (releases.length)
    fields.push(md(`*Releases*\n${mrkdwn(releases.map(([k, v]) => `${k} ${v}`).join(', '))}`, SLACK_LIMITS.fieldText));
  if (n.requests)
    fields.push(
      md(
        `*Requests*\n${n.requests.total.toLocaleString('en-US')} judged, ${n.requests.failed.toLocaleString('en-US')} failed`,
        SLACK_LIMITS.fieldText,
      ),
    );
  if (n.rollback) {
    const what = {
      'rolled-back': n.rollback.verified ? 'ran, verified :white_check_mark:' : 'ran, NOT verified',
      'rollback-failed': 'ran and FAILED :boom:',
      'would-roll-back': 'not done (--no-rollback)',
      held: 'held for a person (INCONCLUSIVE)',
      'not-needed': 'not needed',
    }[n.rollback.state];
    fields.push(md(`*Rollback*\n${what}`, SLACK_LIMITS.fieldText));
  }
  fields.push(md(`*Ran*\n${n.startedAt.replace('T', ' ').slice(0, 16)} UTC, ${duration(n.durationMs)}`, SLACK_LIMITS.fieldText));
  blocks.push({ type: 'section', fields: fields.slice(0, SLACK_LIMITS.sectionFields) });
  if (n.error) blocks.push({ type: 'section', text: md(`:boom: *The run broke:* ${mrkdwn(n.error)}`, SLACK_LIMITS.sectionText) });

  // Room for the tail (causes, approvals, link): 3 blocks kept free.
  const room = () => SLACK_LIMITS.blocks - blocks.length - 3;
  if (n.failedGates.length) {
    const lines = n.failedGates.map(
      (g) => `• *${mrkdwn(g.check)} / ${mrkdwn(g.gate)}* ${g.verdict}: ${mrkdwn(cut(g.evidence, 600))}`,
    );
    const packed = packLines(`Gates that did not pass (${n.failedGates.length})`, lines, Math.min(room(), 20));
    blocks.push(...packed.blocks);
    if (packed.shown < n.failedGates.length)
      blocks.push({
        type: 'context',
        elements: [md(`…and ${n.failedGates.length - packed.shown} more in the report`, SLACK_LIMITS.contextText)],
      });
  }
  if (n.causes.length)
    blocks.push({
      type: 'section',
      text: md(
        `*Top failure causes*\n${n.causes
          .slice(0, 5)
          .map((c) => `• ${c.cause}: ${c.count.toLocaleString('en-US')}`)
          .join('\n')}${n.causes.length > 5 ? `\n…and ${n.causes.length - 5} more causes` : ''}`,
        SLACK_LIMITS.sectionText,
      ),
    });
  const context: Text[] = n.approvals
    .slice(0, SLACK_LIMITS.contextElements - 1)
    .map((a) =>
      md(`Approved (${mrkdwn(a.what)}) by ${mrkdwn(a.by)}${a.reason ? `: ${mrkdwn(a.reason)}` : ''}`, SLACK_LIMITS.contextText),
    );
  if (n.reportUrl && /^https?:\/\//.test(n.reportUrl) && !/[<>|\s]/.test(n.reportUrl))
    context.push(md(`<${n.reportUrl}|Report and run directory>`, SLACK_LIMITS.contextText));
  if (context.length) blocks.push({ type: 'context', elements: context });

  const text = cut(`${n.verdict}: verdict ${n.command}: ${n.headline}`, 3000);
  return { text, blocks: blocks.slice(0, SLACK_LIMITS.blocks) };
}

/** Every way `payload` breaks a Block Kit limit above (empty: none). */
export function blockKitProblems(payload: unknown): string[] {
  const p = payload as Partial<SlackMessage> | null;
  const out: string[] = [];
  if (!p || typeof p !== 'object') return ['the payload is not an object'];
  if (typeof p.text !== 'string' || !p.text) out.push('text (the fallback) is missing');
  else if (len(p.text) > SLACK_LIMITS.fallbackText)
    out.push(`text is ${len(p.text)} characters (at most ${SLACK_LIMITS.fallbackText})`);
  if (!Array.isArray(p.blocks)) return [...out, 'blocks is not an array'];
  if (p.blocks.length > SLACK_LIMITS.blocks) out.push(`${p.blocks.length} blocks (at most ${SLACK_LIMITS.blocks})`);
  const textOk = (t: Text | undefined, max: number, where: string, plainOnly = false) => {
    if (!t || typeof t.text !== 'string') return out.push(`${where}: no text object`);
    if (t.type !== 'plain_text' && (plainOnly || t.type !== 'mrkdwn')) out.push(`${where}: text type ${t.type}`);
    if (len(t.text) < 1) out.push(`${where}: empty text`);
    if (len(t.text) > max) out.push(`${where}: ${len(t.text)} characters (at most ${max})`);
  };
  p.blocks.forEach((b, i) => {
    const where = `blocks[${i}] (${b?.type})`;
    if (b?.block_id !== undefined && len(b.block_id) > SLACK_LIMITS.blockId) out.push(`${where}: block_id too long`);
    switch (b?.type) {
      case 'header':
        textOk(b.text, SLACK_LIMITS.headerText, where, true);
        break;
      case 'section':
        if (!b.text && !b.fields) out.push(`${where}: neither text nor fields`);
        if (b.text) textOk(b.text, SLACK_LIMITS.sectionText, where);
        if (b.fields) {
          if (b.fields.length > SLACK_LIMITS.sectionFields)
            out.push(`${where}: ${b.fields.length} fields (at most ${SLACK_LIMITS.sectionFields})`);
          b.fields.forEach((f, j) => textOk(f, SLACK_LIMITS.fieldText, `${where}.fields[${j}]`));
        }
        break;
      case 'context':
        if (!b.elements?.length || b.elements.length > SLACK_LIMITS.contextElements)
          out.push(`${where}: ${b.elements?.length ?? 0} elements (1 to ${SLACK_LIMITS.contextElements})`);
        b.elements?.forEach((e, j) => textOk(e, SLACK_LIMITS.contextText, `${where}.elements[${j}]`));
        break;
      case 'divider':
        break;
      default:
        out.push(`${where}: a block type this message does not use`);
    }
  });
  return out;
}
