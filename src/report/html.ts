/**
 * The audit report as one self-contained HTML page: inline CSS and JS only, no external resource,
 * so it opens from a file, an e-mail attachment or an air-gapped share. Every value from the log is
 * HTML-escaped, and a Content-Security-Policy allows only this page's own style and script (by
 * hash) and no network at all, so even a value that escaped escaping could not run or fetch anything.
 */
import {createHash} from 'node:crypto'

import type {AuditEntry} from '../audit/entry.js'
import type {AuditReportModel, DayActivity, VersionRow} from './model.js'

const ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  const s = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value)
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

const e = escapeHtml

const CSS = `
:root { --fg:#1d232a; --muted:#5b6670; --line:#d8dee4; --bg:#fff; --head:#f4f6f8; --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --bar:#3b6fd8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 24px 32px 64px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta { color: var(--muted); margin: 0 0 12px; }
nav a { margin-right: 12px; }
.banner { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 12px 0; }
.banner.ok { background: #dafbe1; color: var(--ok); }
.banner.bad { background: #ffebe9; color: var(--bad); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card .n { font-size: 22px; font-weight: 700; display: block; }
.card .l { color: var(--muted); }
.card.alert .n { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .digest { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; margin-right: 4px; }
.badge.rollback { background: #fff1c2; color: var(--warn); }
.badge.emergency, .badge.refused { background: #ffebe9; color: var(--bad); }
.empty { color: var(--muted); font-style: italic; }
ul.people { margin: 0; padding-left: 16px; }
svg.bar rect { fill: var(--bar); }
.filters { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
.filters input { padding: 4px 8px; min-width: 260px; }
tr[hidden] { display: none; }
@media print { nav, .filters { display: none; } body { padding: 0; } }
`

const SCRIPT = `(() => {
  const text = document.getElementById('filter-text');
  const kind = document.getElementById('filter-event');
  const shown = document.getElementById('events-shown');
  const rows = Array.from(document.querySelectorAll('#events-table tbody tr'));
  const apply = () => {
    const q = text.value.trim().toLowerCase();
    const ev = kind.value;
    let n = 0;
    for (const row of rows) {
      const ok = (ev === '' || row.dataset.event === ev) && (q === '' || row.textContent.toLowerCase().includes(q));
      row.hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = String(n);
  };
  text.addEventListener('input', apply);
  kind.addEventListener('change', apply);
  apply();
})();`

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`
}

function short(digest: string | null | undefined): string {
  if (!digest) return '<span class="empty">-</span>'
  const d = digest.startsWith('sha256:') ? `${digest.slice(0, 19)}…` : digest
  return `<span class="digest" title="${e(digest)}">${e(d)}</span>`
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

function table(headers: string[], rows: string[][], numeric: number[] = [], id?: string): string {
  if (rows.length === 0) return '<p class="empty">none</p>'
  const th = headers.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${e(h)}</th>`).join('')
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`).join('\n')
  return `<table${id ? ` id="${e(id)}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`
}

/** An event field as text: arrays joined, loaded tiers as `tier@version`, objects as JSON. */
export function fieldText(key: string, v: unknown): string {
  if (key === 'tiers' && Array.isArray(v)) {
    return v.map((t: {tier?: unknown; version?: unknown; ref?: unknown}) => `${String(t?.tier)}@${t?.version ?? '-'} (${String(t?.ref)})`).join(', ')
  }
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')
  if (typeof v === 'string') return v
  return JSON.stringify(v)
}

const SHOWN = new Set(['seq', 'time', 'event', 'actor', 'ref', 'digest', 'version', 'prev'])

function details(entry: AuditEntry, skip: string[] = []): string {
  const parts = Object.entries(entry)
    .filter(([k, v]) => !SHOWN.has(k) && !skip.includes(k) && v !== undefined)
    .map(([k, v]) => `<code>${e(k)}</code>: ${e(fieldText(k, v))}`)
  return parts.join('<br>')
}

function who(p: {actor: string; time: string}): string {
  return `${e(p.actor)} <span class="meta">${e(p.time)}</span>`
}

function versionRows(versions: VersionRow[]): string[][] {
  return versions.map((v) => [
    `${e(v.version ?? '-')}${v.flags.map((f) => ` <span class="badge ${e(f)}">${e(f)}</span>`).join('')}`,
    e(v.ref ?? '-'),
    short(v.digest),
    v.pushed ? `${who(v.pushed)}${v.pushed.tags.length ? `<br>tags: ${e(v.pushed.tags.join(', '))}` : ''}` : '<span class="empty">not in this log</span>',
    v.signatures.length ? `<ul class="people">${v.signatures.map((s) => `<li><code>${e(s.keyId)}</code> — ${who(s)}</li>`).join('')}</ul>` : '<span class="empty">none</span>',
    v.approvals.length
      ? `<ul class="people">${v.approvals
          .map((a) => `<li>${e(a.role)}: <code>${e(a.keyId)}</code> — ${who(a)}${a.ticket ? ` · ticket ${e(a.ticket)}` : ''}${a.incident ? ` · incident ${e(a.incident)}` : ''}${a.note ? `<br>“${e(a.note)}”` : ''}</li>`)
          .join('')}</ul>`
      : '<span class="empty">none</span>',
    String(v.loads),
    v.lastLoaded ? e(v.lastLoaded) : '<span class="empty">never</span>',
  ])
}

function eventRows(list: AuditEntry[], skip: string[] = []): string[][] {
  return list.map((x) => [e(x.time), e(x.event), e(x.actor), e(x.ref ?? '-'), e(x.version ?? '-'), details(x, skip)])
}

function dayRows(days: DayActivity[]): string[][] {
  const most = Math.max(1, ...days.map((d) => d.loads))
  return days.map((d) => {
    const sources = Object.entries(d.loadsBySource)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([s, n]) => `${e(s)} ${n}`)
      .join(', ')
    const width = Math.round((d.loads / most) * 120)
    return [
      e(d.day),
      String(d.loads),
      `<svg class="bar" width="120" height="10" role="img" aria-label="${d.loads} loads"><rect x="0" y="0" width="${width}" height="10"></rect></svg>`,
      sources || '<span class="empty">-</span>',
      String(d.taintedLoads),
      String(d.overrides),
      String(d.refusals),
      String(d.emergencies),
      String(d.rollbacks),
    ]
  })
}

export function renderAuditReportHtml(m: AuditReportModel): string {
  const t = m.totals
  const card = (n: number, label: string, alert = false) => `<div class="card${alert && n > 0 ? ' alert' : ''}" data-total="${e(label)}"><span class="n">${n}</span><span class="l">${e(label)}</span></div>`
  const range = m.first ? `${e(m.first)} to ${e(m.last)}` : 'no entries'
  const tierSections = m.tiers.length
    ? m.tiers
        .map(
          ({tier, versions}) =>
            `<section id="tier-${e(tier)}"><h3>${e(tier)} tier · ${plural(versions.length, 'version')}</h3>\n${table(['version', 'reference', 'digest', 'pushed', 'signed by', 'approved by', 'loads', 'last loaded'], versionRows(versions), [6])}</section>`,
        )
        .join('\n')
    : '<p class="empty">no policy versions in this log</p>'
  const eventOptions = m.eventCounts.map((c) => `<option value="${e(c.event)}">${e(c.event)} (${c.count})</option>`).join('')
  const allRows = m.events
    .map(
      (x) =>
        `<tr data-event="${e(x.event)}"><td class="num">${e(x.seq)}</td><td>${e(x.time)}</td><td>${e(x.event)}</td><td>${e(x.actor)}</td><td>${e(x.ref ?? '-')}</td><td>${e(x.version ?? '-')}</td><td>${short(x.digest)}</td><td>${details(x)}</td></tr>`,
    )
    .join('\n')
  const csp = [`default-src 'none'`, `style-src ${cspHash(CSS)}`, `script-src ${cspHash(SCRIPT)}`, `img-src data:`, `base-uri 'none'`, `form-action 'none'`].join('; ')
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="aibox audit report">
<title>aibox audit report · ${e(m.log)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>aibox audit report</h1>
<p class="meta">log <code id="log-path">${e(m.log)}</code> · ${plural(m.entries, 'entry', 'entries')} (${range})${m.since ? ` · since ${e(m.since)}` : ''} · generated ${e(m.generatedAt)} · days are UTC</p>
<div id="chain" class="banner ${m.chain.ok ? 'ok' : 'bad'}">${m.chain.ok ? 'Hash chain verified' : 'HASH CHAIN BROKEN'}: ${e(m.chain.message)}</div>
<nav><a href="#versions">versions</a><a href="#rollbacks">rollbacks</a><a href="#emergencies">emergency changes</a><a href="#overrides">overrides</a><a href="#refusals">refusals</a><a href="#days">per day</a><a href="#transfers">air gap</a><a href="#events">all events</a></nav>
</header>
<main>
<section id="summary" class="cards">
${card(t.versions, 'versions')}${card(t.signatures, 'signatures')}${card(t.approvals, 'approvals')}${card(t.loads, 'loads')}${card(t.rollbacks, 'rollbacks', true)}${card(t.emergencies, 'emergency changes', true)}${card(t.overrides, 'overrides', true)}${card(t.refusals, 'refusals', true)}
</section>
<section id="versions"><h2>Versions per tier</h2>
<p class="meta">Each policy version (manifest digest) in the order it first appears, who pushed, signed and approved it, and how often sandboxes loaded it.</p>
${tierSections}
</section>
<section id="rollbacks"><h2>Rollbacks (${m.rollbacks.length})</h2>
${table(['time', 'event', 'actor', 'reference', 'accepted version', 'details'], eventRows(m.rollbacks))}
</section>
<section id="emergencies"><h2>Emergency changes (${m.emergencies.length})</h2>
${table(['time', 'event', 'actor', 'reference', 'version', 'details'], eventRows(m.emergencies))}
</section>
<section id="overrides"><h2>Overrides and lock refusals (${m.overrides.length})</h2>
${table(['time', 'event', 'actor', 'reference', 'version', 'details'], eventRows(m.overrides))}
</section>
<section id="refusals"><h2>Refused policies (${m.refusals.length})</h2>
${table(['time', 'event', 'actor', 'reference', 'version', 'details'], eventRows(m.refusals))}
</section>
<section id="days"><h2>Loads, overrides and refusals per day</h2>
${table(['day (UTC)', 'loads', '', 'by source', 'tainted loads', 'overrides', 'refusals', 'emergency', 'rollbacks'], dayRows(m.days), [1, 4, 5, 6, 7, 8])}
</section>
<section id="transfers"><h2>Air-gap exports and imports (${m.transfers.length})</h2>
${table(['time', 'event', 'actor', 'reference', 'version', 'details'], eventRows(m.transfers))}
</section>
<section id="events"><h2>All events</h2>
${table(['event', 'entries'], m.eventCounts.map((c) => [e(c.event), String(c.count)]), [1], 'event-counts')}
${m.eventsOmitted > 0 ? `<p class="meta">The ${m.eventsOmitted} oldest entries are left out of the table below; use --since to narrow the report.</p>` : ''}
<div class="filters"><label>filter <input id="filter-text" type="search" placeholder="text in any column"></label>
<label>event <select id="filter-event"><option value="">all</option>${eventOptions}</select></label>
<span class="meta"><span id="events-shown">${m.events.length}</span> of ${m.events.length} shown</span></div>
<table id="events-table"><thead><tr><th class="num">seq</th><th>time</th><th>event</th><th>actor</th><th>reference</th><th>version</th><th>digest</th><th>details</th></tr></thead>
<tbody>
${allRows}
</tbody></table>
</section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`
}
