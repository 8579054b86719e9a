/* trend.html's script (inlined by reports/render/trend.ts after uPlot). Plain ES2020, no network,
 * no innerHTML: every text from the data goes in with textContent. Reads the run history's groups
 * from #trend-data and draws, per group (experiment × target kind × app × replicas), one chart per
 * figure over time (the baseline runs, PASS without a deliberate fault, as a line; the others as
 * red points) and the table of its runs, newest first. */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('trend-data').textContent);
  var LINE = '#1864ab';
  var OTHER = '#c92a2a';

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }
  function utc(ms) {
    var d = new Date(ms);
    return (
      d.getUTCFullYear() +
      '-' +
      pad(d.getUTCMonth() + 1) +
      '-' +
      pad(d.getUTCDate()) +
      ' ' +
      pad(d.getUTCHours()) +
      ':' +
      pad(d.getUTCMinutes())
    );
  }
  function num(x) {
    return x === undefined || x === null ? '–' : String(Math.round(x * 1000) / 1000);
  }
  function baseline(r) {
    return r.verdict === 'PASS' && r.faults.length === 0;
  }
  function width(container) {
    return Math.max(320, Math.min(1100, (container.clientWidth || 900) - 8));
  }

  var charts = [];

  function chart(container, group, figure) {
    var xs = [],
      line = [],
      other = [];
    group.runs.forEach(function (r) {
      var v = r.figures[figure];
      xs.push(r.t / 1000);
      line.push(v !== undefined && baseline(r) ? v : null);
      other.push(v !== undefined && !baseline(r) ? v : null);
    });
    var box = el('div', { class: 'trend-chart' });
    box.appendChild(el('div', { class: 'chart-title' }, figure));
    container.appendChild(box);
    var opts = {
      width: width(container),
      height: 170,
      tzDate: function (ts) {
        return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');
      },
      scales: {
        x: { time: true },
        y: {
          range: function (u, min, max) {
            return [Math.min(0, min), Math.max(1, max) * 1.15];
          },
        },
      },
      series: [
        {
          label: 'started (UTC)',
          value: function (u, v) {
            return v === null || v === undefined ? '–' : utc(v * 1000);
          },
        },
        {
          label: figure + ' (PASS, no fault)',
          stroke: LINE,
          width: 1.6,
          spanGaps: true,
          points: { show: true, size: 6, fill: LINE },
        },
        {
          label: 'FAIL, INCONCLUSIVE or a deliberate fault',
          stroke: 'rgba(0,0,0,0)',
          width: 0,
          points: { show: true, size: 7, stroke: OTHER, fill: OTHER },
        },
      ],
      legend: { show: true },
    };
    var u = new uPlot(opts, [xs, line, other], box);
    charts.push({ el: container, u: u });
  }

  function table(group) {
    var t = el('table', { class: 'trend-runs' });
    var thead = el('thead'),
      head = el('tr');
    ['started (UTC)', 'verdict', 'faults', 'versions'].concat(group.figures).forEach(function (h) {
      head.appendChild(el('th', null, h));
    });
    thead.appendChild(head);
    t.appendChild(thead);
    var tbody = el('tbody');
    group.runs
      .slice()
      .reverse()
      .forEach(function (r) {
        var tr = el('tr', { class: 'row-' + r.verdict });
        tr.appendChild(el('td', { class: 'mono' }, utc(r.t)));
        var v = el('td');
        v.appendChild(el('span', { class: 'badge v-' + r.verdict }, r.verdict));
        tr.appendChild(v);
        tr.appendChild(el('td', null, r.faults.join(', ') || '–'));
        tr.appendChild(
          el(
            'td',
            null,
            Object.keys(r.versions)
              .map(function (k) {
                return r.versions[k];
              })
              .join(' → '),
          ),
        );
        group.figures.forEach(function (f) {
          tr.appendChild(el('td', { class: 'num' }, num(r.figures[f])));
        });
        tbody.appendChild(tr);
      });
    t.appendChild(tbody);
    var scroll = el('div', { class: 'scroll' });
    scroll.appendChild(t);
    return scroll;
  }

  var main = document.getElementById('groups');
  if (!data.groups.length) main.appendChild(el('p', { class: 'none' }, 'The history holds no run yet.'));
  data.groups.forEach(function (g, i) {
    var sec = el('section', { class: 'check', id: 'group-' + i });
    sec.appendChild(el('h2', null, g.title));
    var comparable = g.runs.filter(baseline).length;
    sec.appendChild(
      el(
        'p',
        { class: 'desc' },
        g.runs.length +
          (g.runs.length === 1 ? ' run, ' : ' runs, ') +
          comparable +
          ' of them PASS without a deliberate fault (the baseline of "no worse than history")',
      ),
    );
    var box = el('div', { class: 'charts', 'data-group': String(i) });
    sec.appendChild(box);
    main.appendChild(sec);
    if (!g.figures.length) box.appendChild(el('p', { class: 'none' }, 'No figures recorded for these runs.'));
    g.figures.forEach(function (f) {
      chart(box, g, f);
    });
    sec.appendChild(table(g));
  });
  document.getElementById('foot').textContent =
    'history ' + data.history + ' · drawn ' + data.generatedAt.replace('T', ' ').slice(0, 16) + ' UTC · times are UTC';

  var pending = 0;
  window.addEventListener('resize', function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () {
      charts.forEach(function (c) {
        c.u.setSize({ width: width(c.el), height: c.u.height });
      });
    });
  });
  document.documentElement.setAttribute('data-ready', 'true');
})();
