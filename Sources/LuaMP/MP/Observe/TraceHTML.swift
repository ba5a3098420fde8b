// TraceHTML: a trace JSON file as one self-contained HTML page (inline SVG timeline, CSS, JS; a summary table), no network.
#if canImport(Glibc)
import Glibc
#endif

/// Writes `luamp trace FILE.json -o FILE.html` / `--trace-html`: the page embeds the trace's
/// events and draws them itself (no request leaves the file, so it opens from disk anywhere).
///
/// The page shows a lane per process track (pool workers, `Process`es, the main process), each
/// task or chunk span coloured by outcome (ok, error, WorkerLost, TimeoutError, cancelled),
/// waits and process lifetimes, instants (deaths) as marks, counters as a step line; hovering
/// shows an event's details; the wheel (or +/−) zooms the time axis and dragging pans. Below,
/// the summary: per worker (tasks, busy %, idle gaps, failures) and per pool (wall time, item
/// throughput, the five slowest tasks).
enum TraceHTML {
    static func write(trace: String, to html: String) throws {
        guard let bytes = TraceFiles.readFile(trace) else {
            throw TraceFileError("cannot read the trace \(trace): \(String(cString: strerror(errno)))")
        }
        guard let first = bytes.first(where: { $0 != 32 && $0 != 10 && $0 != 13 && $0 != 9 }),
              first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else {
            throw TraceFileError("\(trace) is not a trace (a JSON object or array of events)")
        }
        // "</" cannot occur in JSON outside strings; inside them "<\/" means the same.
        var data: [UInt8] = []
        data.reserveCapacity(bytes.count + 64)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "<") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "/") {
                data.append(contentsOf: "<\\/".utf8)
                i += 2
                continue
            }
            data.append(bytes[i])
            i += 1
        }
        var base = trace.split(separator: "/").last.map(String.init) ?? trace
        if base.hasSuffix(".html.json") { base = String(base.dropLast(5)) }     // --trace-html alone
        let title = base.map { c -> String in c == "<" ? "&lt;" : c == "&" ? "&amp;" : c == "\"" ? "&quot;" : String(c) }.joined()
        let out = open(html, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw TraceFileError("cannot write \(html): \(String(cString: strerror(errno)))") }
        var w = BufferedWriter(fd: out)
        w.write(head.replacing("@TITLE@", with: title))
        w.write(data[...])
        w.write(tail)
        let ok = w.finish()
        close(out)
        guard ok else { throw TraceFileError("cannot write \(html): \(String(cString: strerror(errno)))") }
    }

    static let head = #"""
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>luamp trace — @TITLE@</title>
<style>
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
header{padding:10px 16px;background:#232a35;color:#fff;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:16px;margin:0;font-weight:600}
header .meta{opacity:.8}
#controls{padding:6px 16px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
#controls button{font:inherit;padding:2px 10px;border:1px solid #aab;border-radius:4px;background:#fff;cursor:pointer}
.legend span{display:inline-flex;align-items:center;gap:4px;margin-right:10px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px}
#timeline{margin:0 16px;background:#fff;border:1px solid #d5d9e0;border-radius:6px;overflow:hidden;position:relative;user-select:none;cursor:grab}
#timeline svg{display:block}
.lane-label{font-size:12px;fill:#1d232b}
.lane-bg{fill:#fbfbfc}
.lane-bg.odd{fill:#f1f3f6}
.axis text{font-size:11px;fill:#5a6270}
.axis line{stroke:#e1e4ea}
#tip{position:fixed;pointer-events:none;background:#232a35;color:#fff;padding:6px 8px;border-radius:4px;font-size:12px;white-space:pre;display:none;z-index:9;max-width:520px}
section{margin:16px}
h2{font-size:14px;margin:16px 0 6px}
table{border-collapse:collapse;background:#fff;border:1px solid #d5d9e0}
th,td{padding:4px 10px;border-bottom:1px solid #e6e8ec;text-align:right;white-space:nowrap}
th{background:#eef0f4;font-weight:600}
td:first-child,th:first-child{text-align:left}
td.slow{text-align:left;white-space:normal;max-width:520px}
.bad{color:#b3261e;font-weight:600}
</style></head><body>
<header><h1>luamp trace</h1><span class="meta">@TITLE@</span><span class="meta" id="span"></span></header>
<div id="controls"><button id="zin" title="zoom in">+</button><button id="zout" title="zoom out">−</button><button id="zreset">reset</button>
<span class="legend"><span><i style="background:#3f9c5a"></i>ok</span><span><i style="background:#d64541"></i>error</span><span><i style="background:#8e44ad"></i>WorkerLost</span><span><i style="background:#e67e22"></i>TimeoutError</span><span><i style="background:#95a5a6"></i>cancelled</span><span><i style="background:#f2c94c"></i>wait</span><span><i style="background:#cfd8e3"></i>process alive</span></span>
<span style="opacity:.7">wheel: zoom · drag: pan · hover: details</span></div>
<div id="timeline"></div>
<div id="tip"></div>
<section><h2>Workers</h2><table id="workers"><thead><tr><th>process</th><th>pid</th><th>tasks</th><th>items</th><th>busy %</th><th>idle gaps &gt; 1 ms</th><th>longest gap</th><th>failures</th></tr></thead><tbody></tbody></table>
<h2>Pools</h2><table id="pools"><thead><tr><th>pool</th><th>workers</th><th>tasks</th><th>items</th><th>wall time</th><th>items/s</th><th>failures</th><th>five slowest tasks</th></tr></thead><tbody></tbody></table></section>
<script id="trace-data" type="application/json">
"""#

    static let tail = #"""
</script>
<script>
(function(){
"use strict";
var raw = JSON.parse(document.getElementById("trace-data").textContent);
var events = Array.isArray(raw) ? raw : (raw.traceEvents || []);
var names = {}, tracks = {}, order = [];
function track(pid){ if(!tracks[pid]){ tracks[pid] = {pid:pid, spans:[], instants:[], counters:{}, life:null}; order.push(pid); } return tracks[pid]; }
var tmin = Infinity, tmax = -Infinity;
events.forEach(function(e){
  if(!e || typeof e !== "object") return;
  if(e.ph === "M"){ if(e.name === "process_name" && e.args) names[e.pid] = String(e.args.name); return; }
  var t = track(e.pid);
  if(typeof e.ts !== "number") return;
  var end = e.ts + (e.ph === "X" ? (e.dur || 0) : 0);
  if(e.ph === "X"){ if(e.cat === "process") t.life = e; else t.spans.push(e); }
  else if(e.ph === "i" || e.ph === "I"){ t.instants.push(e); }
  else if(e.ph === "C"){ var k = e.name; (t.counters[k] = t.counters[k] || []).push(e); }
  else return;
  if(e.ts < tmin) tmin = e.ts; if(end > tmax) tmax = end;
});
if(!isFinite(tmin)){ tmin = 0; tmax = 1; }
if(tmax <= tmin) tmax = tmin + 1;
order.sort(function(a,b){
  var na = names[a] || "", nb = names[b] || "";
  var ma = na === "MainProcess" ? 0 : 1, mb = nb === "MainProcess" ? 0 : 1;
  if(ma !== mb) return ma - mb;
  return na.localeCompare(nb, undefined, {numeric:true}) || a - b;
});
var counterLanes = [];
order.forEach(function(pid){ var t = tracks[pid]; Object.keys(t.counters).forEach(function(k){ counterLanes.push({pid:pid, name:k + (names[pid] && names[pid] !== "MainProcess" ? " (" + names[pid] + ")" : ""), pts:t.counters[k].sort(function(a,b){return a.ts-b.ts;})}); }); });
function fmt(us){ var a = Math.abs(us); if(a >= 1e6) return (us/1e6).toFixed(a >= 1e7 ? 1 : 2) + " s"; if(a >= 1e3) return (us/1e3).toFixed(a >= 1e4 ? 1 : 2) + " ms"; return Math.round(us) + " µs"; }
function outcome(e){ return (e.args && e.args.outcome) || (e.cat === "wait" ? "wait" : "ok"); }
var colors = {ok:"#3f9c5a", error:"#d64541", WorkerLost:"#8e44ad", TimeoutError:"#e67e22", cancelled:"#95a5a6", CancelledError:"#95a5a6", wait:"#f2c94c"};
document.getElementById("span").textContent = order.length + " processes · " + events.length + " events · " + fmt(tmax - tmin);

var NS = "http://www.w3.org/2000/svg", LABEL = 170, LANE = 26, AXIS = 24, CLANE = 30;
var box = document.getElementById("timeline"), tip = document.getElementById("tip");
var view = {a: tmin, b: tmax};
function el(n, attrs, parent){ var x = document.createElementNS(NS, n); for(var k in attrs) x.setAttribute(k, attrs[k]); if(parent) parent.appendChild(x); return x; }
function describe(e, pid){
  var s = e.name + "\n" + (names[pid] || "pid " + pid) + " (pid " + pid + ")\nstart +" + fmt(e.ts - tmin);
  if(e.ph === "X") s += "\nduration " + fmt(e.dur || 0);
  if(e.args) Object.keys(e.args).forEach(function(k){ s += "\n" + k + ": " + JSON.stringify(e.args[k]); });
  return s;
}
function draw(){
  box.innerHTML = "";
  var W = Math.max(600, box.clientWidth || 1000), plotW = W - LABEL - 10;
  var H = AXIS + order.length * LANE + counterLanes.length * CLANE + 6;
  var svg = el("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, id: "timeline-svg"}, box);
  var span = view.b - view.a;
  function X(t){ return LABEL + (t - view.a) / span * plotW; }
  var axis = el("g", {"class": "axis"}, svg);
  var step = Math.pow(10, Math.floor(Math.log10(span / 6)));
  if(span / step > 12) step *= 5; else if(span / step > 6) step *= 2;
  for(var t = Math.ceil((view.a - tmin) / step) * step + tmin; t <= view.b; t += step){
    var x = X(t);
    el("line", {x1: x, x2: x, y1: AXIS - 4, y2: H}, axis);
    el("text", {x: x + 2, y: 14}, axis).textContent = "+" + fmt(t - tmin);
  }
  var clip = el("clipPath", {id: "plot"}, svg); el("rect", {x: LABEL, y: 0, width: plotW, height: H}, clip);
  order.forEach(function(pid, i){
    var tr = tracks[pid], y = AXIS + i * LANE;
    var g = el("g", {"class": "lane", "data-pid": pid, "data-name": names[pid] || ""}, svg);
    el("rect", {"class": "lane-bg" + (i % 2 ? " odd" : ""), x: 0, y: y, width: W, height: LANE}, g);
    var label = el("text", {"class": "lane-label", x: 6, y: y + 17}, g);
    label.textContent = (names[pid] || "pid " + pid) + "  " + pid;
    var plot = el("g", {"clip-path": "url(#plot)"}, g);
    if(tr.life){
      var r = el("rect", {x: X(tr.life.ts), y: y + 10, width: Math.max(1, X(tr.life.ts + tr.life.dur) - X(tr.life.ts)), height: 6, fill: "#cfd8e3", rx: 2, "data-tip": describe(tr.life, pid)}, plot);
    }
    tr.spans.forEach(function(e){
      var x0 = X(e.ts), x1 = X(e.ts + (e.dur || 0));
      if(x1 < LABEL - 2 || x0 > W) return;
      var isWait = e.cat === "wait";
      el("rect", {"class": isWait ? "wait" : "task", x: x0, y: y + (isWait ? 7 : 3), width: Math.max(1, x1 - x0), height: isWait ? 12 : LANE - 6,
        fill: colors[outcome(e)] || "#3f9c5a", stroke: "#fff", "stroke-width": x1 - x0 > 4 ? 0.5 : 0, rx: 2, "data-tip": describe(e, pid)}, plot);
    });
    tr.instants.forEach(function(e){
      var x = X(e.ts);
      var bad = e.cat === "death";
      el("path", {d: "M" + (x - 5) + " " + (y + 2) + " L" + (x + 5) + " " + (y + 2) + " L" + x + " " + (y + 11) + " Z", fill: bad ? "#b3261e" : "#2f6fdb", "class": "instant", "data-tip": describe(e, pid)}, plot);
    });
  });
  counterLanes.forEach(function(c, j){
    var y = AXIS + order.length * LANE + j * CLANE;
    var g = el("g", {"class": "counter"}, svg);
    el("rect", {"class": "lane-bg", x: 0, y: y, width: W, height: CLANE}, g);
    el("text", {"class": "lane-label", x: 6, y: y + 18}, g).textContent = c.name;
    var key = Object.keys((c.pts[0] && c.pts[0].args) || {})[0] || "value";
    var max = 1; c.pts.forEach(function(p){ var v = +(p.args || {})[key] || 0; if(v > max) max = v; });
    var d = "", last = y + CLANE - 3;
    c.pts.forEach(function(p, k){
      var v = +(p.args || {})[key] || 0, yy = y + CLANE - 3 - v / max * (CLANE - 8), x = X(p.ts);
      d += (k ? " H" + x + " V" + yy : "M" + x + " " + yy); last = yy;
    });
    if(d) d += " H" + (LABEL + plotW);
    var pl = el("path", {d: d, fill: "none", stroke: "#2f6fdb", "stroke-width": 1.5, "clip-path": "url(#plot)"}, g);
    pl.setAttribute("data-tip", c.name + "\nmax " + max + " " + key);
  });
}
draw();
window.addEventListener("resize", draw);
box.addEventListener("mousemove", function(ev){
  var t = ev.target.getAttribute && ev.target.getAttribute("data-tip");
  if(t && !drag){ tip.textContent = t; tip.style.display = "block"; tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 300) + "px"; tip.style.top = (ev.clientY + 14) + "px"; }
  else tip.style.display = "none";
});
box.addEventListener("mouseleave", function(){ tip.style.display = "none"; });
function zoom(f, at){
  var span = view.b - view.a, c = at === undefined ? view.a + span / 2 : at;
  var ns = Math.max(10, Math.min(tmax - tmin, span * f));
  var a = c - (c - view.a) / span * ns; a = Math.max(tmin, Math.min(a, tmax - ns));
  view = {a: a, b: a + ns}; draw();
}
function timeAt(clientX){ var r = box.getBoundingClientRect(), plotW = Math.max(600, box.clientWidth) - LABEL - 10; return view.a + (clientX - r.left - LABEL) / plotW * (view.b - view.a); }
box.addEventListener("wheel", function(ev){ ev.preventDefault(); zoom(ev.deltaY < 0 ? 0.8 : 1.25, timeAt(ev.clientX)); }, {passive: false});
var drag = null;
box.addEventListener("mousedown", function(ev){ drag = {x: ev.clientX, a: view.a, b: view.b}; box.style.cursor = "grabbing"; });
window.addEventListener("mouseup", function(){ drag = null; box.style.cursor = ""; });
window.addEventListener("mousemove", function(ev){
  if(!drag) return;
  var plotW = Math.max(600, box.clientWidth) - LABEL - 10, dt = (ev.clientX - drag.x) / plotW * (drag.b - drag.a);
  var a = Math.max(tmin, Math.min(drag.a - dt, tmax - (drag.b - drag.a)));
  view = {a: a, b: a + (drag.b - drag.a)}; draw();
});
document.getElementById("zin").onclick = function(){ zoom(0.5); };
document.getElementById("zout").onclick = function(){ zoom(2); };
document.getElementById("zreset").onclick = function(){ view = {a: tmin, b: tmax}; draw(); };

// Summary tables.
function cell(tr, text, cls){ var td = document.createElement("td"); td.textContent = text; if(cls) td.className = cls; tr.appendChild(td); return td; }
var wbody = document.querySelector("#workers tbody"), pools = {};
order.forEach(function(pid){
  var tr = tracks[pid], tasks = tr.spans.filter(function(e){ return e.cat === "task"; }).sort(function(a,b){ return a.ts - b.ts; });
  if(!tasks.length) return;
  var busy = 0, items = 0, fails = 0, gaps = 0, longest = 0, prevEnd = null;
  tasks.forEach(function(e){
    busy += e.dur || 0; items += (e.args && e.args.items) || 1;
    if(outcome(e) !== "ok") fails++;
    if(prevEnd !== null){ var g = e.ts - prevEnd; if(g > 1000){ gaps++; if(g > longest) longest = g; } }
    prevEnd = Math.max(prevEnd || 0, e.ts + (e.dur || 0));
    var p = (e.args && e.args.pool) || 0;
    var P = pools[p] = pools[p] || {tasks: [], workers: {}, items: 0, fails: 0};
    P.tasks.push({e: e, pid: pid}); P.workers[pid] = 1; P.items += (e.args && e.args.items) || 1; if(outcome(e) !== "ok") P.fails++;
  });
  var life = tr.life ? tr.life.dur : (prevEnd - tasks[0].ts);
  var row = document.createElement("tr"); row.className = "worker"; row.setAttribute("data-pid", pid);
  cell(row, names[pid] || "pid " + pid); cell(row, pid); cell(row, tasks.length); cell(row, items);
  cell(row, life > 0 ? (100 * busy / life).toFixed(1) : "—"); cell(row, gaps); cell(row, longest ? fmt(longest) : "—");
  cell(row, fails, fails ? "bad" : "");
  wbody.appendChild(row);
});
var pbody = document.querySelector("#pools tbody");
Object.keys(pools).sort(function(a,b){ return a - b; }).forEach(function(p){
  var P = pools[p], start = Infinity, end = -Infinity;
  P.tasks.forEach(function(t){ start = Math.min(start, t.e.ts); end = Math.max(end, t.e.ts + (t.e.dur || 0)); });
  var wall = end - start;
  var slow = P.tasks.slice().sort(function(a,b){ return (b.e.dur || 0) - (a.e.dur || 0); }).slice(0, 5)
    .map(function(t){ return t.e.name + " " + fmt(t.e.dur || 0) + " (" + (names[t.pid] || t.pid) + (outcome(t.e) !== "ok" ? ", " + outcome(t.e) : "") + ")"; }).join(" · ");
  var row = document.createElement("tr"); row.className = "pool";
  cell(row, "pool " + p); cell(row, Object.keys(P.workers).length); cell(row, P.tasks.length); cell(row, P.items);
  cell(row, fmt(wall)); cell(row, wall > 0 ? Math.round(P.items / (wall / 1e6)) : "—"); cell(row, P.fails, P.fails ? "bad" : ""); cell(row, slow, "slow");
  pbody.appendChild(row);
});
document.body.setAttribute("data-ready", "1");
})();
</script>
</body></html>
"""#
}
