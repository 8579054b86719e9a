/* report.html's script (inlined by reports/render/html.ts after uPlot). Plain ES2020, no network,
 * no innerHTML: every text from the record goes in with textContent. Reads {record, failures} from
 * #verdict-data and builds the page: the run's header, then per check its facts, the timeline
 * charts, the gates, failures by cause with examples, the filterable table of failed requests and
 * the timeline events. (All of the record's text lives only in the data, none in the markup.) */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('verdict-data').textContent);
  var record = data.record;
  // The causes in rule order with their colours and descriptions: lib/evidence/causes.ts, the one registry.
  var CAUSES = data.causes.map(function (c) {
    return c.name;
  });
  var CAUSE_COLOR = {},
    CAUSE_DESCRIPTION = {};
  data.causes.forEach(function (c) {
    CAUSE_COLOR[c.name] = c.colour;
    CAUSE_DESCRIPTION[c.name] = c.description;
  });
  var VERSION_COLORS = ['#2f9e44', '#e67700', '#1098ad', '#ae3ec9', '#5c940d', '#d9480f', '#3b5bdb', '#a61e4d'];
  var MARKER = {
    chaos: { color: '#c92a2a', width: 2.5, dash: [] },
    pod: { color: '#1c7ed6', width: 1.5, dash: [5, 3] },
    endpoint: { color: '#9c36b5', width: 1.5, dash: [2, 3] },
    node: { color: '#a0522d', width: 1.5, dash: [8, 3, 2, 3] },
    event: { color: '#868e96', width: 1, dash: [3, 3] },
    phase: { color: '#2b8a3e', width: 1, dash: [] },
    // A watch of the harness lost the cluster (e.g. its control plane) and resumed: what lies between went unseen.
    watch: { color: '#e8590c', width: 2, dash: [1, 2] },
  };
  var REQUESTS_COLOR = '#1864ab';

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pad(n, w) {
    var s = String(n);
    while (s.length < w) s = '0' + s;
    return s;
  }
  function utcTime(ms) {
    var d = new Date(ms);
    return (
      pad(d.getUTCHours(), 2) +
      ':' +
      pad(d.getUTCMinutes(), 2) +
      ':' +
      pad(d.getUTCSeconds(), 2) +
      '.' +
      pad(d.getUTCMilliseconds(), 3)
    );
  }
  function shortObject(o) {
    var name = o.indexOf('/') >= 0 ? o.slice(o.indexOf('/') + 1) : o;
    var parts = name.split('-');
    // license-api-7d9f8c-x2kqp -> x2kqp: the suffix is what tells pods apart.
    if (o.indexOf('pod/') === 0 && parts.length >= 3) return parts[parts.length - 1];
    return name.length > 22 ? name.slice(0, 21) + '…' : name;
  }

  // ---------------------------------------------------------------- markers

  /** A uPlot plugin drawing the timeline events as vertical lines; labels on the first chart only. */
  function markersPlugin(events, withLabels) {
    function draw(u) {
      var ctx = u.ctx,
        px = uPlot.pxRatio,
        top = u.bbox.top,
        bottom = u.bbox.top + u.bbox.height;
      var left = u.bbox.left,
        right = u.bbox.left + u.bbox.width;
      var rows = [-1e9, -1e9, -1e9, -1e9],
        rowH = 13 * px;
      ctx.save();
      ctx.font = 10.5 * px + 'px system-ui, "DejaVu Sans", sans-serif';
      ctx.textBaseline = 'top';
      for (var i = 0; i < events.length; i++) {
        var e = events[i],
          style = MARKER[e[1]] || MARKER.event;
        var x = Math.round(u.valToPos(e[0], 'x', true));
        if (x < left || x > right) continue;
        ctx.strokeStyle = style.color;
        ctx.lineWidth = style.width * px;
        ctx.setLineDash(
          style.dash.map(function (d) {
            return d * px;
          }),
        );
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        ctx.stroke();
        if (!withLabels) continue;
        var label = e[3] + ' ' + shortObject(e[2]);
        var w = ctx.measureText(label).width + 6 * px;
        for (var r = 0; r < rows.length; r++) {
          if (x + 3 * px > rows[r]) {
            var lx = Math.min(x + 3 * px, right - w),
              ly = top + 2 * px + r * rowH;
            ctx.setLineDash([]);
            ctx.fillStyle = 'rgba(255,255,255,0.88)';
            ctx.fillRect(lx, ly, w, rowH - 1 * px);
            ctx.fillStyle = style.color;
            ctx.fillText(label, lx + 3 * px, ly + 1 * px);
            rows[r] = lx + w + 4 * px;
            break;
          }
        }
      }
      ctx.restore();
    }
    return { hooks: { draw: draw } };
  }

  // ---------------------------------------------------------------- charts

  function chartWidth(container) {
    return Math.max(360, Math.floor(container.clientWidth || 900));
  }

  function hhmmss(ts) {
    return utcTime(ts * 1000).slice(0, 8);
  }
  // uPlot keeps state in the option objects it is given: a fresh one per chart.
  function xAxis() {
    return {
      values: function (u, splits) {
        return splits.map(hhmmss);
      },
      size: 34,
    };
  }
  // Every chart has a left and a right axis of the same size, so their time axes line up.
  function leftAxis(scale, label) {
    return { scale: scale, label: label, size: 56, labelSize: 22 };
  }
  function rightAxis(scale, label) {
    return { scale: scale, side: 1, label: label, size: 48, labelSize: 22, grid: { show: false } };
  }
  function blankRightAxis(scale) {
    return {
      scale: scale,
      side: 1,
      label: '',
      size: 48,
      labelSize: 22,
      grid: { show: false },
      ticks: { show: false },
      values: function (u, splits) {
        return splits.map(function () {
          return '';
        });
      },
    };
  }
  function xSeries() {
    return {
      label: 'time (UTC)',
      value: function (u, v) {
        return v === null || v === undefined ? '–' : utcTime(v * 1000);
      },
    };
  }

  function baseOptions(title, width, height, syncKey, events, withLabels) {
    return {
      width: width,
      height: height,
      tzDate: function (ts) {
        return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');
      },
      cursor: { sync: { key: syncKey }, drag: { x: true, y: false } },
      legend: { live: true },
      plugins: [markersPlugin(events, withLabels)],
      scales: { x: { time: true } },
    };
  }

  /** The check's per-second series, column-wise, and its events as [seconds, kind, object, change]. */
  function columns(check) {
    var series = check.series,
      versions = [],
      seen = {};
    series.forEach(function (x) {
      Object.keys(x.versions).forEach(function (v) {
        if (!seen[v]) {
          seen[v] = true;
          versions.push(v);
        }
      });
    });
    var failed = {};
    CAUSES.forEach(function (c) {
      if (
        series.some(function (x) {
          return (x.failed[c] || 0) > 0;
        })
      )
        failed[c] = series.map(function (x) {
          return x.failed[c] || 0;
        });
    });
    var byVersion = {};
    versions.forEach(function (v) {
      byVersion[v] = series.map(function (x) {
        return x.versions[v] || 0;
      });
    });
    return {
      series: {
        t: series.map(function (x) {
          return x.t / 1000;
        }),
        requests: series.map(function (x) {
          return x.requests;
        }),
        failed: failed,
        p50: series.map(function (x) {
          return x.p50;
        }),
        p99: series.map(function (x) {
          return x.p99;
        }),
        versions: byVersion,
      },
      events: check.timeline.map(function (e) {
        return [e.at / 1000, e.kind, e.object, e.change];
      }),
    };
  }

  function drawCharts(container, rec, index) {
    var check = columns(rec);
    var s = check.series;
    if (!s.t.length) return [];
    var width = chartWidth(container);
    var key = 'check-' + index;
    var charts = [];
    var causes = Object.keys(s.failed);

    // 1. requests per second (left axis) and failures stacked by cause (right axis, bars).
    var stacks = [],
      cum = s.t.map(function () {
        return 0;
      });
    causes.forEach(function (c) {
      cum = cum.map(function (v, i) {
        return v + s.failed[c][i];
      });
      stacks.push(cum.slice());
    });
    var order = causes
      .map(function (c, i) {
        return i;
      })
      .reverse(); // tallest stack drawn first
    var bars = uPlot.paths.bars({ size: [0.8, 40], align: 1 });
    var o1 = baseOptions('requests', width, 250, key, check.events, true);
    o1.series = [
      xSeries(),
      { label: 'requests/s', stroke: REQUESTS_COLOR, width: 1.6, scale: 'req', points: { show: false } },
    ].concat(
      order.map(function (i) {
        var c = causes[i];
        return {
          label: c,
          scale: 'fail',
          stroke: CAUSE_COLOR[c],
          fill: CAUSE_COLOR[c],
          width: 0,
          paths: bars,
          points: { show: false },
          value: function (u, v, si, idx) {
            return idx === null || idx === undefined ? '–' : String(s.failed[c][idx]);
          },
        };
      }),
    );
    var maxStack = stacks.length ? Math.max.apply(null, stacks[stacks.length - 1]) : 0;
    o1.scales.req = {
      range: function (u, min, max) {
        return [0, Math.max(1, max) * 1.12];
      },
    };
    o1.scales.fail = {
      range: function () {
        return [0, Math.max(1, maxStack) * 1.25];
      },
    };
    o1.axes = [xAxis(), leftAxis('req', 'requests/s'), rightAxis('fail', 'failed/s')];
    var d1 = [s.t, s.requests].concat(
      order.map(function (i) {
        return stacks[i];
      }),
    );
    container.appendChild(
      el('div', { class: 'chart-title' }, 'Requests per second, and failed requests stacked by cause (bars, right axis)'),
    );
    charts.push(new uPlot(o1, d1, container));

    // 2. latency p50 / p99.
    var o2 = baseOptions('latency', width, 170, key, check.events, false);
    o2.series = [
      xSeries(),
      { label: 'p50 ms', stroke: '#2b8a3e', width: 1.5, scale: 'ms', points: { show: false } },
      { label: 'p99 ms', stroke: '#e8590c', width: 1.5, scale: 'ms', points: { show: false } },
    ];
    o2.scales.ms = {
      range: function (u, min, max) {
        return [0, Math.max(1, max || 1) * 1.1];
      },
    };
    o2.axes = [xAxis(), leftAxis('ms', 'latency (ms)'), blankRightAxis('ms')];
    container.appendChild(el('div', { class: 'chart-title' }, 'Latency of the requests that ended in each second: p50 and p99'));
    charts.push(new uPlot(o2, [s.t, s.p50, s.p99], container));

    // 3. answers per version.
    var versions = Object.keys(s.versions);
    if (versions.length) {
      var o3 = baseOptions('versions', width, 150, key, check.events, false);
      o3.series = [xSeries()].concat(
        versions.map(function (v, i) {
          return {
            label: v,
            stroke: VERSION_COLORS[i % VERSION_COLORS.length],
            width: 1.6,
            scale: 'req',
            points: { show: false },
          };
        }),
      );
      o3.scales.req = {
        range: function (u, min, max) {
          return [0, Math.max(1, max) * 1.12];
        },
      };
      o3.axes = [xAxis(), leftAxis('req', 'answers/s'), blankRightAxis('req')];
      container.appendChild(el('div', { class: 'chart-title' }, 'Which versions answered (answers per second by app version)'));
      charts.push(
        new uPlot(
          o3,
          [s.t].concat(
            versions.map(function (v) {
              return s.versions[v];
            }),
          ),
          container,
        ),
      );
    }

    // Marker legend.
    var kinds = {};
    check.events.forEach(function (e) {
      kinds[e[1]] = true;
    });
    var legend = el('div', { class: 'legend-markers' });
    Object.keys(MARKER).forEach(function (k) {
      if (!kinds[k]) return;
      var item = el('span');
      item.appendChild(el('span', { class: 'mk k-' + k }));
      item.appendChild(document.createTextNode(k + ' events'));
      legend.appendChild(item);
    });
    if (legend.childNodes.length) container.appendChild(legend);
    return charts;
  }

  // ---------------------------------------------------------------- failed requests table

  function drawFailures(container, f) {
    var rows = f.rows;
    var bar = el('div', { class: 'filters' });
    function select(name, label, values) {
      var wrap = el('label', null, label + ' ');
      var sel = el('select', { 'data-filter': name });
      sel.appendChild(el('option', { value: '' }, 'all (' + rows.length + ')'));
      values.forEach(function (v) {
        sel.appendChild(el('option', { value: v[0] }, v[0] + ' (' + v[1] + ')'));
      });
      wrap.appendChild(sel);
      bar.appendChild(wrap);
      return sel;
    }
    function counts(col, unknown) {
      var m = {};
      rows.forEach(function (r) {
        var k = r[col] === null ? unknown : r[col];
        m[k] = (m[k] || 0) + 1;
      });
      return Object.keys(m)
        .sort(function (a, b) {
          return m[b] - m[a] || (a < b ? -1 : 1);
        })
        .map(function (k) {
          return [k, m[k]];
        });
    }
    var causeSel = select('cause', 'cause', counts(4, 'unclassified'));
    var podSel = select('pod', 'pod', counts(5, 'unknown'));
    var shown = el('span', { class: 'muted', 'data-role': 'shown' });
    bar.appendChild(shown);
    container.appendChild(bar);
    if (f.source === 'examples')
      container.appendChild(
        el('p', { class: 'note' }, 'No ledger rows for this check: these are the examples kept in verdict.json.'),
      );

    var scroll = el('div', { class: 'scroll' });
    var table = el('table');
    var head = el('tr');
    ['time (UTC)', 'step', 'status', 'error', 'cause', 'pod', 'version'].forEach(function (h) {
      head.appendChild(el('th', null, h));
    });
    var thead = el('thead');
    thead.appendChild(head);
    table.appendChild(thead);
    var tbody = el('tbody');
    var trs = rows.map(function (r) {
      var cause = r[4] === null ? 'unclassified' : r[4],
        pod = r[5] === null ? 'unknown' : r[5];
      var tr = el('tr', { 'data-cause': cause, 'data-pod': pod });
      tr.appendChild(el('td', { class: 'mono' }, utcTime(r[0])));
      tr.appendChild(el('td', null, r[1]));
      tr.appendChild(el('td', { class: 'num' }, r[2] || '–'));
      tr.appendChild(el('td', null, r[3] || ''));
      var tc = el('td');
      tc.appendChild(el('span', { class: 'swatch c-' + cause }));
      tc.appendChild(document.createTextNode(cause));
      tr.appendChild(tc);
      tr.appendChild(el('td', null, pod));
      tr.appendChild(el('td', null, r[6] || ''));
      tbody.appendChild(tr);
      return tr;
    });
    table.appendChild(tbody);
    scroll.appendChild(table);
    container.appendChild(scroll);

    function apply() {
      var c = causeSel.value,
        p = podSel.value,
        n = 0;
      for (var i = 0; i < trs.length; i++) {
        var tr = trs[i];
        var ok = (!c || tr.getAttribute('data-cause') === c) && (!p || tr.getAttribute('data-pod') === p);
        tr.hidden = !ok;
        if (ok) n++;
      }
      shown.textContent =
        'showing ' + n + ' of ' + trs.length + (f.total > trs.length ? ' (of ' + f.total + ' failed in the ledger)' : '');
    }
    causeSel.addEventListener('change', apply);
    podSel.addEventListener('change', apply);
    apply();
  }

  // ---------------------------------------------------------------- page

  var EXIT = { PASS: 0, FAIL: 1, INCONCLUSIVE: 2, ERROR: 3 };
  var EVENTS_CAP = 1000;

  function int(n) {
    return Number(n).toLocaleString('en-US');
  }
  function duration(ms) {
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    var m = Math.floor(s / 60);
    return m + ' min ' + Math.round(s - m * 60) + ' s';
  }
  function utcStamp(iso) {
    return iso.replace('T', ' ').slice(0, 19) + ' UTC';
  }
  function badge(v) {
    return el('span', { class: 'badge v-' + v }, v);
  }
  function append(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      parent.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return parent;
  }
  function facts(cls, items) {
    var dl = el('dl', { class: cls });
    items.forEach(function (it) {
      var d = el('div');
      append(d, el('dt', null, it[0]), el('dd', null, it[1]));
      dl.appendChild(d);
    });
    return dl;
  }
  function table(cls, headings) {
    var t = el('table', cls ? { class: cls } : null),
      tr = el('tr'),
      thead = el('thead'),
      tbody = el('tbody');
    headings.forEach(function (h) {
      tr.appendChild(el('th', null, h));
    });
    thead.appendChild(tr);
    append(t, thead, tbody);
    return { table: t, body: tbody };
  }
  function row(body, cells, attrs) {
    var tr = el('tr', attrs);
    cells.forEach(function (c) {
      var td = c && c.td ? c.td : el('td');
      if (c && c.td) {
        /* prepared cell */
      } else if (c instanceof Node) td.appendChild(c);
      else td.textContent = c === null || c === undefined ? '' : String(c);
      tr.appendChild(td);
    });
    body.appendChild(tr);
    return tr;
  }

  function renderHeader(r) {
    var h = el('header', { class: 'run v-' + r.verdict });
    var title = el('div', { class: 'title' });
    append(title, badge(r.verdict), el('h1', null, r.headline.replace(new RegExp('^' + r.verdict + ':\\s*'), '')));
    h.appendChild(title);
    var t = r.target;
    var items = [
      [
        'target',
        [
          t.kind + ' ' + t.name,
          t.context ? 'context ' + t.context : null,
          t.serverVersion ? 'Kubernetes ' + t.serverVersion : null,
          t.url,
        ]
          .filter(Boolean)
          .join(' · '),
      ],
    ];
    if (r.app) {
      items.push([
        'app',
        r.app.name +
          ' ' +
          Object.keys(r.app.versions)
            .map(function (k) {
              return k + ' ' + r.app.versions[k];
            })
            .join(', '),
      ]);
      if (r.app.faults.length) items.push(['deliberate faults', r.app.faults.join(', ')]);
    }
    (r.approvals || []).forEach(function (a) {
      items.push([
        'approved (' + a.what + ')',
        'by ' + a.by + (a.reason ? ': ' + a.reason : '') + (a.detail ? ' (' + a.detail + ')' : ''),
      ]);
    });
    items.push(['ran', utcStamp(r.startedAt) + ' for ' + duration(r.durationMs)]);
    items.push(['exit code', EXIT[r.verdict] + (r.verdict === 'PASS' ? ' (promote)' : ' (do not promote)')]);
    h.appendChild(facts('facts', items));
    if (r.error !== null) {
      var p = el('p', { class: 'error' });
      append(p, el('b', null, 'The run broke: '), r.error);
      h.appendChild(p);
    }
    if (r.checks.length > 1) {
      var ul = el('ul');
      r.checks.forEach(function (c, i) {
        var a = el('a', { href: '#check-' + i });
        append(a, badge(c.verdict), ' ' + c.name);
        append(ul, append(el('li'), a));
      });
      h.appendChild(append(el('nav'), ul));
    }
    return h;
  }

  function observed(o) {
    var dl = el('dl', { class: 'observed' });
    Object.keys(o).forEach(function (k) {
      var v = o[k];
      append(
        dl,
        el('dt', null, k),
        el('dd', null, typeof v === 'number' && !Number.isInteger(v) ? String(+v.toPrecision(6)) : String(v)),
      );
    });
    return dl;
  }

  function renderGates(c) {
    if (!c.gates.length) return el('p', { class: 'none' }, 'No gate judged this check.');
    var t = table('gates', ['gate', 'verdict', 'evidence', 'observed']);
    c.gates.forEach(function (g) {
      row(t.body, [g.name, badge(g.verdict), g.evidence, observed(g.observed)], { class: 'row-' + g.verdict });
    });
    return t.table;
  }

  /** The top cause in one line, the unknown-cause warning, and the failures by cause × version × route. */
  function renderCauseSummary(c, note) {
    if (!c.failures.length) return null;
    var box = el('div', { class: 'cause-summary' });
    if (note && note.top) append(box, append(el('p', { class: 'top-cause' }), el('b', null, 'Top cause: '), note.top));
    if (note && note.warning) append(box, append(el('p', { class: 'warning' }), el('b', null, 'WARNING: '), note.warning));
    if (
      !c.failures.some(function (f) {
        return f.breakdown && f.breakdown.length;
      })
    )
      return box;
    var total = c.failures.reduce(function (s, f) {
      return s + f.count;
    }, 0);
    var t = table('breakdown', ['cause', 'version', 'route', 'count', 'share']);
    c.failures.forEach(function (f) {
      (f.breakdown || []).forEach(function (x) {
        var cause = el('td');
        append(cause, el('span', { class: 'swatch c-' + f.cause }), f.cause);
        row(t.body, [
          { td: cause },
          x.version === null ? '–' : x.version,
          { td: el('td', { class: 'mono' }, x.route) },
          { td: el('td', { class: 'num' }, int(x.count)) },
          { td: el('td', { class: 'num' }, ((x.count / total) * 100).toFixed(1) + '%') },
        ]);
      });
    });
    box.appendChild(t.table);
    return box;
  }

  /** Every cause in rule order, with its colour and what it means (lib/evidence/causes.ts). */
  function renderLegend() {
    var det = el('details', { class: 'legend' });
    det.appendChild(el('summary', null, 'What the failure causes mean (the first rule that matches decides)'));
    var t = table(null, ['rule', 'cause', 'when']);
    data.causes.forEach(function (x) {
      var cause = el('td');
      append(cause, el('span', { class: 'swatch c-' + x.name }), x.name);
      row(t.body, [{ td: el('td', { class: 'num' }, String(x.rule)) }, { td: cause }, x.description]);
    });
    det.appendChild(t.table);
    return det;
  }

  function renderCauses(c) {
    if (!c.failures.length) return c.requests ? el('p', { class: 'none' }, 'No request failed.') : null;
    var total = c.failures.reduce(function (s, f) {
      return s + f.count;
    }, 0);
    var t = table('causes', ['cause', 'count', 'share', 'why, and the earliest examples']);
    c.failures.forEach(function (f) {
      var cause = el('td');
      append(cause, el('span', { class: 'swatch c-' + f.cause }), f.cause);
      var why = el('td', null, f.examples.length ? f.examples[0].reason : '');
      if (f.examples.length) {
        var det = el('details'),
          ul = el('ul', { class: 'examples' });
        det.appendChild(el('summary', null, f.examples.length + (f.examples.length === 1 ? ' example' : ' examples')));
        f.examples.forEach(function (e) {
          var li = el('li');
          var what = [e.status || null, e.error].filter(Boolean).join(' ') || 'failed';
          append(li, el('span', { class: 'mono' }, utcTime(e.at)), ' ' + e.step + ': ' + what + ' on ');
          if (e.pod)
            append(
              li,
              e.pod + (e.version ? ' (' + e.version + ')' : ''),
              e.attributedBy === 'proxy-connection' ? el('span', { class: 'muted' }, ' via the proxy') : null,
            );
          else li.appendChild(el('span', { class: 'muted' }, 'pod unknown'));
          if (e.createdBy)
            li.appendChild(
              el(
                'span',
                { class: 'muted' },
                ' — created by ' + [e.createdBy.version, e.createdBy.pod].filter(Boolean).join(' on '),
              ),
            );
          if (e.contrast)
            li.appendChild(
              el(
                'span',
                { class: 'muted' },
                ' — accepted by ' +
                  e.contrast.version +
                  (e.contrast.pod ? ' on ' + e.contrast.pod : '') +
                  ' (HTTP ' +
                  e.contrast.status +
                  ' at ' +
                  utcTime(e.contrast.at) +
                  ')',
              ),
            );
          if (e.podHistory.length)
            li.appendChild(
              el(
                'span',
                { class: 'muted' },
                ' — pod: ' +
                  e.podHistory
                    .map(function (h) {
                      return h.change + ' ' + utcTime(h.at);
                    })
                    .join(', '),
              ),
            );
          ul.appendChild(li);
        });
        det.appendChild(ul);
        why.appendChild(det);
      }
      row(t.body, [
        { td: cause },
        { td: el('td', { class: 'num' }, int(f.count)) },
        { td: el('td', { class: 'num' }, ((f.count / total) * 100).toFixed(1) + '%') },
        { td: why },
      ]);
    });
    return t.table;
  }

  function renderEvents(c) {
    if (!c.timeline.length) return null;
    var det = el('details', { class: 'events' });
    det.appendChild(el('summary', null, 'Timeline events (' + int(c.timeline.length) + ')'));
    var t = table(null, ['time (UTC)', 'kind', 'object', 'change', 'detail']);
    c.timeline.slice(0, EVENTS_CAP).forEach(function (e) {
      var kind = el('td');
      append(kind, el('span', { class: 'mk k-' + e.kind }), e.kind);
      row(t.body, [{ td: el('td', { class: 'mono' }, utcTime(e.at)) }, { td: kind }, e.object, e.change, e.detail || '']);
    });
    det.appendChild(t.table);
    if (c.timeline.length > EVENTS_CAP)
      det.appendChild(
        el(
          'p',
          { class: 'note' },
          'First ' + int(EVENTS_CAP) + ' of ' + int(c.timeline.length) + ' events; all are in verdict.json.',
        ),
      );
    return det;
  }

  function renderStats(c) {
    var q = c.requests;
    var items = [['took', duration(Date.parse(c.endedAt) - Date.parse(c.startedAt))]];
    if (q) {
      items.push(['requests', int(q.total)], ['failed', int(q.failed)], ['dropped', int(q.dropped)]);
      if (q.byConnection)
        items.push([
          'failed by connection',
          ['new', 'reused']
            .map(function (k) {
              return k + ' ' + int(q.byConnection[k].failed) + ' of ' + int(q.byConnection[k].total);
            })
            .join(' · '),
        ]);
      var v = Object.keys(q.byVersion);
      if (v.length)
        items.push([
          'answers by version',
          v
            .map(function (k) {
              return k + ': ' + int(q.byVersion[k]);
            })
            .join(', '),
        ]);
    } else items.push(['requests', 'none sent']);
    if (c.latency)
      items.push([
        'latency p50 / p90 / p99 / max',
        [c.latency.p50, c.latency.p90, c.latency.p99, c.latency.max]
          .map(function (x) {
            return x.toFixed(1);
          })
          .join(' / ') + ' ms',
      ]);
    return facts('stats', items);
  }

  var charts = [];
  function renderCheck(c, i, failed) {
    var sec = el('section', { class: 'check', id: 'check-' + i });
    var h2 = el('h2');
    append(h2, badge(c.verdict), ' ' + c.name + ' ', el('small', null, c.kind));
    sec.appendChild(h2);
    if (c.description) sec.appendChild(el('p', { class: 'desc' }, c.description));
    if (c.error !== null) {
      var p = el('p', { class: 'error' });
      append(p, el('b', null, 'Error: '), c.error);
      sec.appendChild(p);
    }
    sec.appendChild(renderStats(c));
    var box = el('div', { class: 'charts', 'data-check': String(i) });
    sec.appendChild(box);
    if (!c.series.length) box.appendChild(el('p', { class: 'none' }, 'No load in this check: nothing to chart.'));
    sec.appendChild(el('h3', null, 'Gates'));
    sec.appendChild(renderGates(c));
    if (c.failures.length || c.requests) sec.appendChild(el('h3', null, 'Failed requests by cause'));
    append(sec, renderCauseSummary(c, data.notes && data.notes[i]), renderCauses(c));
    var f = failed[i];
    if (f && f.rows.length) {
      sec.appendChild(
        el(
          'h3',
          null,
          'Failed requests' +
            (f.total > f.rows.length
              ? ' (the first ' + int(f.rows.length) + ' of ' + int(f.total) + '; ledger.ndjson.gz has them all)'
              : ''),
        ),
      );
      var fbox = el('div', { class: 'failures', 'data-check': String(i) });
      sec.appendChild(fbox);
    }
    append(sec, renderEvents(c));
    document.getElementById('checks').appendChild(sec);
    // Charts and the table once the section is in the document (they need its width).
    if (c.series.length) charts.push({ el: box, charts: drawCharts(box, c, i) });
    if (fbox) drawFailures(fbox, f);
  }

  var main = document.getElementById('checks');
  var header = document.getElementById('run');
  header.parentNode.replaceChild(renderHeader(record), header);
  if (!record.checks.length) main.appendChild(el('p', { class: 'none' }, 'No check ran.'));
  record.checks.forEach(function (c, i) {
    renderCheck(c, i, data.failures);
  });
  if (
    record.checks.some(function (c) {
      return c.failures.length;
    })
  )
    main.appendChild(renderLegend());
  var foot = document.getElementById('foot');
  foot.textContent =
    'verdict ' +
    record.harness.version +
    ' on Node ' +
    record.harness.node +
    ', host ' +
    record.harness.host +
    ' · schema ' +
    record.schema +
    ' · re-render with “verdict report <run-dir>” · times are UTC';

  var pending = 0;
  window.addEventListener('resize', function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () {
      charts.forEach(function (a) {
        var w = chartWidth(a.el);
        a.charts.forEach(function (u) {
          u.setSize({ width: w, height: u.height });
        });
      });
    });
  });
  document.documentElement.setAttribute('data-ready', 'true');
})();
