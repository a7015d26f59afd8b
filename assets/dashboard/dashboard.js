// The operator dashboard: reads /dashboard/data (counts, outbox, DLQs,
// lag, readiness) and /metrics (latency histograms) every 5 seconds.
"use strict";

const charts = {};

function cell(text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "n";
  return td;
}

function fill(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    r.forEach((v, i) => {
      if (v instanceof Node) { const td = document.createElement("td"); td.append(v); tr.append(td); }
      else tr.append(cell(String(v), i > 0 && typeof v === "number"));
    });
    return tr;
  }));
}

function chart(id, type, labels, datasets) {
  if (typeof Chart === "undefined") return;
  if (charts[id]) {
    charts[id].data.labels = labels;
    charts[id].data.datasets = datasets;
    charts[id].update("none");
    return;
  }
  charts[id] = new Chart(document.getElementById(id), {
    type, data: { labels, datasets },
    options: { animation: false, responsive: true, plugins: { legend: { display: datasets.length > 1 } } },
  });
}

// Prometheus text: the latency histograms per service -> count, p50, p99
function latency(text) {
  const buckets = {};
  const counts = {};
  for (const line of text.split("\n")) {
    let m = line.match(/^akm_request_duration_seconds_bucket\{(.*)\} (\S+)/);
    if (m) {
      const service = (m[1].match(/service="([^"]*)"/) || [])[1];
      const le = (m[1].match(/le="([^"]*)"/) || [])[1];
      (buckets[service] = buckets[service] || []).push([le === "+Inf" ? Infinity : Number(le), Number(m[2])]);
      continue;
    }
    m = line.match(/^akm_request_duration_seconds_count\{service="([^"]*)"\} (\S+)/);
    if (m) counts[m[1]] = Number(m[2]);
  }
  const q = (bs, total, p) => {
    const want = total * p;
    for (const [le, n] of bs.sort((a, b) => a[0] - b[0])) if (n >= want) return le;
    return Infinity;
  };
  return Object.keys(counts).sort().map((s) => {
    const ms = (v) => (Number.isFinite(v) ? Math.round(v * 1000) : "> max");
    return [s, counts[s], ms(q(buckets[s] || [], counts[s], 0.5)), ms(q(buckets[s] || [], counts[s], 0.99))];
  });
}

async function refresh() {
  const r = await fetch("/dashboard/data", { credentials: "same-origin" });
  if (r.status === 401) { location.href = "/dashboard"; return; }
  const d = await r.json();
  document.getElementById("node").textContent = `(${d.node})`;
  document.getElementById("day").textContent = d.day;
  fill("cities", d.cities.map((c) => [c.cityNo, c.transcodes, c.failed, c.trades]));
  chart("citiesChart", "bar", d.cities.map((c) => c.cityNo), [
    { label: "转码", data: d.cities.map((c) => c.transcodes), backgroundColor: "#1565c0" },
    { label: "失败", data: d.cities.map((c) => c.failed), backgroundColor: "#c62828" },
    { label: "交易", data: d.cities.map((c) => c.trades), backgroundColor: "#2e7d32" },
  ]);
  const codes = Object.entries(d.errCodes);
  fill("codes", codes.map(([c, n]) => [c, n]));
  chart("codesChart", "bar", codes.map(([c]) => c), [
    { label: "次数", data: codes.map(([, n]) => n), backgroundColor: codes.map(([c]) => (c === "200" ? "#2e7d32" : "#c62828")) },
  ]);
  const rd = d.readiness;
  const status = document.createElement("span");
  status.className = rd.ready ? "ok" : "bad";
  status.textContent = rd.ready ? "就绪 ready" : "未就绪 not ready";
  fill("ready", [
    ["状态", status],
    ["存储 storage", rd.storage],
    ["恢复中 restoring", String(rd.restoring)],
    ["停止的任务 tasks down", (rd.tasksDown || []).join(", ") || "无"],
    ["告警 alerts", (rd.alerts || []).map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join("; ") || "无"],
    ["等待中的转码 pending", rd.pending],
  ]);
  fill("tasks", d.tasks.map((t) => {
    const s = document.createElement("span");
    s.className = t.up ? "ok" : "bad";
    s.textContent = t.up ? "运行 up" : `停止 down: ${t.why}`;
    return [t.name, s];
  }));
  fill("outbox", [["深度 depth", d.outbox.depth], ["最早记录等待 (s)", Math.round(d.outbox.oldestAgeSeconds)]]);
  fill("dlq", d.dlq.map((q) => {
    const code = document.createElement("code");
    code.textContent = q.replay;
    return [q.topic, q.records === null ? "?" : q.records, code];
  }));
  // per group and topic: the partitions held and their total lag
  const lag = {};
  for (const l of d.lag) {
    const k = `${l.group}\u0000${l.topic}`;
    lag[k] = lag[k] || [l.group, l.topic, 0, 0];
    lag[k][2] += 1;
    lag[k][3] += l.lag;
  }
  fill("lag", Object.values(lag).sort((a, b) => b[3] - a[3] || a[0].localeCompare(b[0])));
  try {
    const m = await fetch("/metrics");
    const rows = latency(await m.text());
    fill("latency", rows);
    chart("latencyChart", "bar", rows.map((r) => r[0]), [
      { label: "p50 (ms)", data: rows.map((r) => (typeof r[2] === "number" ? r[2] : null)), backgroundColor: "#1565c0" },
      { label: "p99 (ms)", data: rows.map((r) => (typeof r[3] === "number" ? r[3] : null)), backgroundColor: "#ef6c00" },
    ]);
  } catch (e) {
    fill("latency", [["/metrics", String(e), "", ""]]);
  }
  document.getElementById("updated").textContent = `更新于 ${new Date().toLocaleTimeString("zh-CN")}`;
  document.body.dataset.loaded = "true";
}

refresh();
setInterval(refresh, 5000);
