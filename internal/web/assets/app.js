// upwatch pages: live updates (server-sent events, polling when they are unavailable),
// the dashboard's filter, and the response-time chart. The pages work without this file.
(function () {
  "use strict";
  var body = document.body;
  var page = body.dataset.page;
  var last = Number(body.dataset.since) || 0;
  var WORDS = { up: "Up", down: "Down", pending: "Pending", paused: "Paused", stale: "Stale", maintenance: "Maintenance" };
  var ICONS = { up: "\u2713", down: "\u2715", pending: "\u2026", paused: "\u2016", stale: "?", maintenance: "\u2692" };
  var MAINTENANCE_HEADLINE = "Maintenance in progress";
  var RECENT = 60;

  function badge(status) {
    var outer = document.createElement("span");
    outer.className = "status " + status;
    var icon = document.createElement("span");
    icon.className = "icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = ICONS[status] || "";
    outer.appendChild(icon);
    outer.appendChild(document.createTextNode(WORDS[status] || status));
    return outer;
  }

  function setText(root, selector, text) {
    var el = root.querySelector(selector);
    if (el) el.textContent = text;
  }

  // The bar's slots ("u", "d", "n") read back from its paths ("M{x} 8h{w}" per run).
  function readSlots(svg) {
    var slots = [];
    for (var i = 0; i < RECENT; i++) slots.push("n");
    svg.querySelectorAll("path").forEach(function (p) {
      var re = /M(\d+) 8h(\d+)/g, m;
      while ((m = re.exec(p.getAttribute("d")))) {
        for (var x = Number(m[1]) / 4; x < (Number(m[1]) + Number(m[2])) / 4; x++) slots[x] = p.getAttribute("class");
      }
    });
    return slots;
  }

  function drawSlots(svg, slots) {
    var runs = {};
    for (var i = 0; i < slots.length;) {
      var j = i;
      while (j < slots.length && slots[j] === slots[i]) j++;
      runs[slots[i]] = (runs[slots[i]] || "") + "M" + i * 4 + " 8h" + (j - i) * 4;
      i = j;
    }
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    Object.keys(runs).sort().forEach(function (c) {
      var p = document.createElementNS("http://www.w3.org/2000/svg", "path");
      p.setAttribute("class", c);
      p.setAttribute("d", runs[c]);
      svg.appendChild(p);
    });
    var up = slots.filter(function (s) { return s === "u"; }).length;
    var down = slots.filter(function (s) { return s === "d"; }).length;
    svg.setAttribute("aria-label", up + down === 0 ? "No checks yet" :
      "Last " + (up + down) + " checks: " + up + " up, " + down + " down" +
      (slots[slots.length - 1] === "d" ? "; the newest failed" : ""));
  }

  function latency(change) {
    if (change.status === "paused" || change.status === "pending" || change.response_time_ms == null) return "\u2014";
    return change.response_time_ms + " ms";
  }

  // Whether the last batch moved a monitor into or out of maintenance.
  var maintenanceFlip = false;

  function apply(change, news) {
    var el = document.getElementById(change.id);
    if (!el) return;
    var before = el.dataset.status;
    if (before !== change.status) {
      if (before === "maintenance" || change.status === "maintenance") maintenanceFlip = true;
      el.dataset.status = change.status;
      news.push(change.name + " is now " + (WORDS[change.status] || change.status).toLowerCase());
    }
    var st = el.querySelector(".st");
    if (st) { st.textContent = ""; st.appendChild(badge(change.status)); }
    if (change.response_time_ms !== undefined) setText(el, ".lat", latency(change));
    if (change.last_checked) setText(el, ".checked", new Date(change.last_checked).toISOString().replace("T", " ").slice(0, 16) + " UTC");
    var svg = el.querySelector("svg.bar.recent");
    if (svg && change.tick) {
      var slots = readSlots(svg);
      slots.shift();
      slots.push(change.tick.up ? "u" : "d");
      drawSlots(svg, slots);
    }
  }

  function refreshSummaries() {
    if (page === "dashboard") {
      var rows = document.querySelectorAll("tr[data-status]");
      var c = { up: 0, down: 0, pending: 0, paused: 0, stale: 0, maintenance: 0 };
      rows.forEach(function (r) { c[r.dataset.status] = (c[r.dataset.status] || 0) + 1; });
      setText(document, "#summary", rows.length + (rows.length === 1 ? " monitor" : " monitors") + ": " +
        c.up + " up, " + c.down + " down, " + c.pending + " pending, " + c.paused + " paused" +
        (c.stale > 0 ? ", " + c.stale + " stale (not checked lately)" : "") +
        (c.maintenance > 0 ? ", " + c.maintenance + " in maintenance" : "") + ".");
    }
    if (page === "status") {
      var items = document.querySelectorAll("li[data-status]");
      var down = [], stale = [], maintenance = 0;
      items.forEach(function (li) {
        var name = li.querySelector(".name").textContent;
        if (li.dataset.status === "down") down.push(name);
        if (li.dataset.status === "stale") stale.push(name);
        if (li.dataset.status === "maintenance") maintenance++;
      });
      var h = document.getElementById("headline");
      if (!h || !items.length) return;
      var inMaintenance = down.length === 0 && stale.length === 0 && maintenance > 0;
      h.dataset.state = down.length ? "down" : inMaintenance ? "maintenance" : "ok";
      h.textContent = down.length === 0 && stale.length === 1 ? stale[0] + " has not been checked lately" :
        down.length === 0 && stale.length > 1 ? stale.length + " systems have not been checked lately: " + stale.join(", ") :
        inMaintenance ? MAINTENANCE_HEADLINE :
        down.length === 0 ? "All systems operational" :
        down.length === 1 ? down[0] + " is down" :
        down.length === items.length ? "All systems are down" :
        down.length + " systems are down: " + down.join(", ");
    }
  }

  // Reads the page again and swaps in its list (monitors added, edited or deleted; on the
  // status page also new incidents and bars), keeping the filter and the collapsed groups.
  var reloading = false, reloadAgain = false;
  function reloadList() {
    if (reloading) { reloadAgain = true; return; }
    reloading = true;
    fetch(location.pathname + location.search, { cache: "no-store" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var fresh = new DOMParser().parseFromString(html, "text/html");
      var filter = document.getElementById("filter");
      var list = document.getElementById("monitors"), freshList = fresh.getElementById("monitors");
      if (page === "dashboard" && filter && list && freshList) {
        var closed = {};
        list.querySelectorAll("details.group:not([open])").forEach(function (g) { closed[g.dataset.group] = true; });
        freshList.querySelectorAll("details.group").forEach(function (g) { if (closed[g.dataset.group]) g.removeAttribute("open"); });
        list.replaceWith(document.adoptNode(freshList));
        var summary = fresh.getElementById("summary");
        if (summary) document.getElementById("summary").replaceWith(document.adoptNode(summary));
        var windows = document.getElementById("maintenance"), freshWindows = fresh.getElementById("maintenance");
        if (windows && freshWindows) windows.replaceWith(document.adoptNode(freshWindows));
        if (filter.value) filter.dispatchEvent(new Event("input"));
      } else {
        var main = fresh.getElementById("main");
        if (!main) return;
        document.getElementById("main").replaceWith(document.adoptNode(main));
        setUpFilter();
      }
      var since = Number(fresh.body.dataset.since) || 0;
      if (since > last) last = since;
      refreshSummaries();
    }).catch(function () {}).then(function () {
      reloading = false;
      if (reloadAgain) { reloadAgain = false; reloadList(); }
    });
  }

  function applyBatch(batch) {
    var news = [];
    maintenanceFlip = false;
    batch.changes.forEach(function (c) { apply(c, news); });
    if (batch.id > last) last = batch.id;
    refreshSummaries();
    if (news.length) document.getElementById("announcer").textContent = news.join(". ") + ".";
    var unknown = batch.changes.some(function (c) { return !document.getElementById(c.id); });
    // A flip into or out of maintenance: the dashboard reads its list of windows again (the
    // status page reads everything again on any flip).
    if ((page === "dashboard" || page === "status") &&
        (batch.monitors_changed || unknown || (page === "status" && news.length) ||
         (page === "dashboard" && maintenanceFlip))) reloadList();
  }

  function liveState(text) { setText(document, "#live-state", text); }

  function poll() {
    var url = (page === "status" ? "/status/updates" : "/updates") + "?since=" + last;
    liveState("Updates every 5 s");
    fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (u) {
      if (u) { u.batches.forEach(applyBatch); if (u.last > last && !u.batches.length) last = u.last; }
    }).catch(function () {}).then(function () { setTimeout(poll, 5000); });
  }

  function connect() {
    if (!window.EventSource) return poll();
    var source = new EventSource(body.dataset.events + "?since=" + last);
    source.addEventListener("open", function () { liveState("Live"); });
    source.addEventListener("changes", function (e) { applyBatch(JSON.parse(e.data)); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) { source.close(); poll(); }
      else liveState("Reconnecting\u2026");
    });
  }

  function setUpFilter() {
    var input = document.getElementById("filter");
    if (!input) return;
    var count = document.getElementById("filter-count");
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase(), shown = 0, total = 0;
      document.querySelectorAll("details.group").forEach(function (g) {
        var group = (g.dataset.group || "").toLowerCase(), any = false;
        g.querySelectorAll("tbody tr").forEach(function (tr) {
          total++;
          var hit = !q || group.indexOf(q) >= 0 || tr.querySelector("th").textContent.toLowerCase().indexOf(q) >= 0;
          tr.hidden = !hit;
          if (hit) { any = true; shown++; }
        });
        g.hidden = !any;
      });
      count.textContent = q ? shown + " of " + total + " shown" : "";
    });
  }

  function drawChart() {
    var holder = document.getElementById("chart");
    var source = document.getElementById("chart-data");
    if (!holder || !source || !window.uPlot) return;
    var d = JSON.parse(source.textContent);
    var css = getComputedStyle(document.documentElement);
    var color = function (v) { return css.getPropertyValue(v).trim(); };
    // Few points make no line: show them as dots.
    var sparse = d.p50.filter(function (v) { return v != null; }).length < 3;
    var marks = d.down.map(function (n, i) { return n > 0 ? (d.p95[i] || d.p50[i] || 0) : null; });
    var axis = { stroke: color("--muted"), grid: { stroke: color("--line") }, ticks: { stroke: color("--line") } };
    var failed = { label: "failed", stroke: color("--down"), paths: function () { return null; },
      points: { show: true, size: 9, fill: color("--down"), stroke: color("--down") } };
    var series = [{}], data = [d.t];
    if (d.regions && d.regions.length) {
      // One line per region, told apart by colour and dash pattern (the legend names both),
      // in the order of the page's legend: solid, dashed, dotted, dash-dot.
      var colours = ["--link", "--pending", "--maint", "--warn"];
      var dashes = [undefined, [8, 4], [2, 4], [10, 4, 2, 4]];
      d.regions.forEach(function (r, i) {
        var dense = r.p50.filter(function (v) { return v != null; }).length >= 3;
        series.push({ label: r.name, stroke: color(colours[i % 4]), dash: dashes[i % 4], width: 2,
          spanGaps: false, points: { show: !dense } });
        data.push(r.p50);
      });
    } else {
      series.push({ label: "p50", stroke: color("--link"), width: 2, spanGaps: false, points: { show: sparse } });
      series.push({ label: "p95", stroke: color("--pending"), width: 2, spanGaps: false, points: { show: sparse } });
      data.push(d.p50, d.p95);
    }
    series.push(failed);
    data.push(marks);
    var opts = {
      width: holder.clientWidth || 800, height: 240,
      scales: { x: { time: true } },
      axes: [axis, Object.assign({}, axis, { label: "ms" })],
      legend: { show: false },
      series: series
    };
    var plot = new window.uPlot(opts, data, holder);
    if (!drawChart.listening) {
      drawChart.listening = true;
      window.addEventListener("resize", function () { if (drawChart.plot) drawChart.plot.setSize({ width: holder.clientWidth, height: 240 }); });
      // The chart's colours come from the scheme: redraw when it changes.
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
        if (drawChart.plot) drawChart.plot.destroy();
        drawChart();
      });
    }
    drawChart.plot = plot;
  }

  // A push monitor's URL is a path on this server: the page's origin goes in front of it.
  document.querySelectorAll("[data-origin]").forEach(function (el) { el.textContent = location.origin; });
  setUpFilter();
  if (page === "site") window.addEventListener("load", drawChart);
  connect();
})();
