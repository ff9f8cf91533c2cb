// petrel dashboard: live tables, charts (uPlot) and log streams.
// Served from the binary; no external resources.
"use strict";

const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
window.petrelCharts = {};

function getJSON(url) {
  return fetch(url, {credentials: "same-origin", cache: "no-store"}).then(r => {
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  });
}

// chartWidth fits two charts side by side on a wide page.
function chartWidth(el) { return Math.max(320, Math.min(500, el.clientWidth - 16)); }

// Live jobs list: the rows are re-rendered by the server every 3 s.
function liveTable(table) {
  const tbody = table.querySelector("tbody");
  setInterval(() => {
    const checked = new Set([...tbody.querySelectorAll("input:checked")].map(i => i.value));
    fetch(table.dataset.live, {credentials: "same-origin", cache: "no-store"}).then(r => r.ok ? r.text() : Promise.reject())
      .then(html => {
        tbody.innerHTML = html;
        tbody.querySelectorAll("input[type=checkbox]").forEach(i => { i.checked = checked.has(i.value); });
      }).catch(() => {});
  }, 3000);
}

// Live block (a running job's status): re-rendered by the server every
// 3 s until it answers that the job has finished.
function liveBlock(div) {
  const tick = () => fetch(div.dataset.live, {credentials: "same-origin", cache: "no-store"}).then(r => {
    if (!r.ok) return Promise.reject();
    const final = r.headers.get("X-Petrel-Final") === "true";
    return r.text().then(html => { div.innerHTML = html; if (!final) setTimeout(tick, 3000); });
  }).catch(() => setTimeout(tick, 5000));
  setTimeout(tick, 3000);
}

// Job metric charts: one chart per metric, one line per run.
function jobCharts(box) {
  let mode = null, last = null;
  const draw = (d) => {
    last = d;
    if (mode === null) mode = d.xName ? "x" : "t";
    const metrics = [...new Set(d.series.map(s => s.metric))];
    if (!metrics.length) {
      box.innerHTML = "<p class=empty>No metrics reported yet. Print lines such as <code>epoch=1 loss=0.4</code> (Katib's format) to see curves.</p>";
      return;
    }
    if (!box.querySelector(".modes")) {
      box.innerHTML = "";
      const modes = document.createElement("div");
      modes.className = "modes";
      if (d.xName) {
        modes.innerHTML = "x axis: <label><input type=radio name=xmode value=x checked> " + d.xName +
          "</label> <label><input type=radio name=xmode value=t> seconds since start</label>";
        modes.addEventListener("change", e => { mode = e.target.value; box.querySelectorAll(".chart").forEach(c => c.remove()); draw(last); });
      }
      box.appendChild(modes);
    }
    for (const m of metrics) {
      const ss = d.series.filter(s => s.metric === m);
      const xs = new Set();
      const maps = ss.map(s => {
        const mp = new Map();
        for (const [t, x, y] of s.points) {
          const k = mode === "x" ? x : t;
          if (k === null || k === undefined) continue;
          mp.set(k, y);
          xs.add(k);
        }
        return mp;
      });
      const xv = [...xs].sort((a, b) => a - b);
      const data = [xv, ...maps.map(mp => xv.map(x => mp.has(x) ? mp.get(x) : null))];
      let el = box.querySelector('.chart[data-metric="' + CSS.escape(m) + '"]');
      const points = data.slice(1).reduce((n, ys) => n + ys.filter(y => y !== null).length, 0);
      if (el && el._u && el._u.series.length === data.length) {
        el._u.setData(data);
      } else {
        if (el) { el._u && el._u.destroy(); el.remove(); }
        el = document.createElement("div");
        el.className = "chart";
        el.dataset.metric = m;
        box.appendChild(el);
        const opts = {
          title: m, width: chartWidth(box), height: 240,
          scales: {x: {time: false}},
          axes: [{label: mode === "x" ? d.xName : "seconds"}, {}],
          series: [{label: mode === "x" ? d.xName : "s"}, ...ss.map((s, i) => ({
            label: s.label || m, stroke: palette[i % palette.length], width: 2, spanGaps: true,
            points: {show: true, size: 5},
          }))],
        };
        el._u = new uPlot(opts, data, el);
        window.petrelCharts[m] = el._u;
      }
      el.dataset.points = String(points);
    }
  };
  const load = () => getJSON(box.dataset.src).then(d => {
    draw(d);
    if (d.running) setTimeout(load, 2000);
    box.dataset.loaded = "true";
  }).catch(e => { box.dataset.error = String(e); setTimeout(load, 5000); });
  load();
}

// markers draws each scaling decision in live.evs (replaced at every
// refresh) as a dashed vertical line.
function markers(live) {
  return {hooks: {draw: [u => {
    const evs = live.evs;
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    let shown = 0;
    ctx.save();
    ctx.strokeStyle = "#dc2626"; ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash([6, 4]);
    for (const e of evs) {
      const x = u.valToPos(e.t, "x", true);
      if (x < u.bbox.left - 1 || x > u.bbox.left + u.bbox.width + 1) continue;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
      shown++;
    }
    ctx.restore();
    u.root.parentNode.dataset.scalings = String(shown);
  }]}};
}

// Service charts: autoscaling metric vs target with replicas and scaling
// decisions; request rate; latency; in-flight requests.
function serviceCharts(box) {
  const charts = {};
  const specs = [
    {id: "scaling", title: "Autoscaling", series: [
      {label: "metric", key: "value", stroke: palette[0]},
      {label: "target", key: "target", stroke: "#6b7280", dash: [4, 4]},
      {label: "desired replicas", key: "desired", stroke: palette[2], scale: "n"},
      {label: "ready replicas", key: "ready", stroke: palette[4], scale: "n"}], marks: true},
    {id: "rate", title: "Requests per second (load balancer)", series: [{label: "req/s", key: "rate", stroke: palette[0]}]},
    {id: "latency", title: "Latency, seconds (load balancer)", series: [
      {label: "p50", key: "p50", stroke: palette[2]}, {label: "p99", key: "p99", stroke: palette[1]}]},
    {id: "inflight", title: "In-flight requests (load balancer)", series: [{label: "in flight", key: "inflight", stroke: palette[3]}]},
  ];
  const live = {evs: []};
  const legend = document.createElement("ul");
  legend.className = "scalings";
  const load = () => getJSON(box.dataset.src).then(d => {
    const t = d.samples.map(s => s.t);
    const evs = live.evs = d.scalings || [];
    for (const sp of specs) {
      const data = [t, ...sp.series.map(s => d.samples.map(p => p[s.key] === undefined ? null : p[s.key]))];
      if (sp.id !== "scaling" && data.slice(1).every(ys => ys.every(y => y === null))) continue;
      let el = charts[sp.id];
      if (!el) {
        el = document.createElement("div");
        el.className = "chart";
        el.dataset.chart = sp.id;
        box.appendChild(el);
        let title = sp.title;
        if (sp.id === "scaling" && d.metric) title = "Autoscaling: " + d.metric + (d.metric === "cpu" ? " % of request" : " per replica") + " vs target (red: scaling decisions)";
        const evMin = () => live.evs.length ? Math.min(...live.evs.map(e => e.t)) : Infinity;
        const evMax = () => live.evs.length ? Math.max(...live.evs.map(e => e.t)) : -Infinity;
        el._u = new uPlot({
          title, width: chartWidth(box), height: 220,
          scales: {x: {time: true, range: (u, mn, mx) => [Math.min(mn, evMin()) - 1, Math.max(mx, evMax()) + 1]}, n: {range: (u, mn, mx) => [0, Math.max(mx, 1) + 1]}},
          axes: [{}, {scale: "y"}, ...(sp.series.some(s => s.scale === "n") ? [{scale: "n", side: 1, grid: {show: false}, label: "replicas"}] : [])],
          series: [{}, ...sp.series.map(s => Object.assign({label: s.label, stroke: s.stroke, width: 2, spanGaps: true, points: {show: false}},
            s.dash ? {dash: s.dash} : {}, s.scale ? {scale: s.scale} : {}))],
          plugins: sp.marks ? [markers(live)] : [],
        }, data, el);
        charts[sp.id] = el;
        window.petrelCharts[sp.id] = el._u;
      } else {
        el._u.setData(data);
      }
      el.dataset.points = String(t.length);
    }
    legend.innerHTML = "";
    for (const e of evs) {
      const li = document.createElement("li");
      li.textContent = new Date(e.t * 1000).toLocaleTimeString() + " — " + e.message;
      legend.appendChild(li);
    }
    if (!legend.parentNode) box.after(legend);
    box.dataset.loaded = "true";
    setTimeout(load, 2000);
  }).catch(e => { box.dataset.error = String(e); setTimeout(load, 5000); });
  load();
}

// Live logs over server-sent events, at most maxLines kept on the page.
function logs(pre) {
  const maxLines = 5000, state = document.getElementById("logstate");
  let pending = [], timer = null, count = 0;
  const flush = () => {
    timer = null;
    if (!pending.length) return;
    pre.appendChild(document.createTextNode(pending.join("\n") + "\n"));
    count += pending.length;
    pending = [];
    while (count > maxLines && pre.firstChild) {
      const n = pre.firstChild.textContent.split("\n").length - 1;
      pre.removeChild(pre.firstChild);
      count -= n;
    }
    pre.scrollTop = pre.scrollHeight;
  };
  const es = new EventSource(pre.dataset.src);
  es.onopen = () => { state.textContent = "live"; };
  es.onmessage = e => { pending.push(e.data); if (!timer) timer = setTimeout(flush, 50); };
  es.addEventListener("end", e => { flush(); state.textContent = e.data; es.close(); });
  es.onerror = () => { state.textContent = "reconnecting…"; };
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table[data-live]").forEach(liveTable);
  document.querySelectorAll("div[data-live]").forEach(liveBlock);
  const c = document.getElementById("charts");
  if (c) jobCharts(c);
  const s = document.getElementById("svccharts");
  if (s) serviceCharts(s);
  const l = document.getElementById("logs");
  if (l) logs(l);
});
