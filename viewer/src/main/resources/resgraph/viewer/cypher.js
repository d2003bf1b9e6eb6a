// The Cypher page: sends the query to /api/cypher and shows the rows as a table, or, when they
// hold nodes, relationships or paths, as a graph laid out by Graphviz (viz.js).
(function () {
  "use strict";
  const $ = id => document.getElementById(id);
  const query = $("query"), params = $("params"), limit = $("limit"), status = $("status"), result = $("result");
  let last = null, view = "table";

  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  // the JSON shapes the graph service gives graph values in (CypherValues.toProto)
  const isObject = v => v !== null && typeof v === "object" && !Array.isArray(v);
  const isNode = v => isObject(v) && "labels" in v && "properties" in v && "id" in v;
  const isRel = v => isObject(v) && "type" in v && "start" in v && "end" in v;
  const isPath = v => isObject(v) && Array.isArray(v.nodes) && Array.isArray(v.relationships);

  document.querySelectorAll(".examples .chip").forEach(b => b.onclick = () => { query.value = b.dataset.query; run(); });
  $("run").onclick = run;
  query.addEventListener("keydown", e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  $("as-table").onclick = () => show("table");
  $("as-graph").onclick = () => show("graph");

  async function run() {
    let parameters;
    try {
      parameters = params.value.trim() ? JSON.parse(params.value) : {};
    } catch (e) {
      return fail("parameters are not a JSON object: " + e.message);
    }
    status.textContent = "running…";
    const started = performance.now();
    let res, body;
    try {
      res = await fetch("/api/cypher", {method: "POST", headers: {"content-type": "application/json"},
        body: JSON.stringify({cypher: query.value, parameters, limit: Number(limit.value) || 0})});
      body = await res.json();
    } catch (e) {
      return fail("the graph service did not answer: " + e.message);
    }
    if (!res.ok) return fail(body.error || res.statusText);
    last = {...body, graph: collect(body.rows)};
    const ms = Math.round(performance.now() - started);
    status.textContent = `${body.rows.length} row${body.rows.length === 1 ? "" : "s"}`
      + (body.rows.length >= body.limit ? ` (the row limit)` : "") + ` in ${ms} ms`;
    show(last.graph.rels.size > 0 ? "graph" : "table");
  }

  function fail(message) {
    last = null;
    status.textContent = "";
    result.replaceChildren(el("p", {class: "error"}, message));
  }

  function show(which) {
    if (!last) return;
    view = which === "graph" && last.graph.nodes.size > 0 ? "graph" : "table";
    $("as-table").classList.toggle("active", view === "table");
    $("as-graph").classList.toggle("active", view === "graph");
    $("as-graph").disabled = last.graph.nodes.size === 0;
    if (view === "table") result.replaceChildren(table(last));
    else draw(last.graph);
  }

  function table({columns, rows}) {
    const t = el("table", {}, el("thead", {}, el("tr", {}, ...columns.map(c => el("th", {}, c)))));
    const body = el("tbody");
    rows.forEach(r => body.append(el("tr", {}, ...r.map(v => el("td", {}, text(v))))));
    t.append(body);
    return t;
  }

  function text(v) {
    if (isPath(v)) return v.nodes.map(nodeName).join(" → ");
    if (isNode(v)) return `(${nodeName(v)})`;
    if (isRel(v)) return `[:${v.type} ${JSON.stringify(v.properties)}]`;
    if (typeof v === "string") return v;
    return JSON.stringify(v);
  }

  function nodeName(n) {
    const p = n.properties;
    // the site's kind beside the layer unless it is resid_pre, as node ids of a chain that mixes kinds read
    if (n.labels.includes("Feature")) return `${p.layer}${{mid: "m", post: "p"}[(p.hook || "").split("_").pop()] || ""}.${p.latent}`;
    if (n.labels.includes("Job")) return `job ${p.id}`;
    if (n.labels.includes("Task")) return `task ${p.task}`;
    return n.labels.join(":") || n.id;
  }

  /** Every node and relationship anywhere in the rows, inside lists, maps and paths too. */
  function collect(rows) {
    const nodes = new Map(), rels = new Map();
    const walk = v => {
      if (isPath(v)) { v.nodes.forEach(walk); v.relationships.forEach(walk); }
      else if (isNode(v)) nodes.set(v.id, v);
      else if (isRel(v)) rels.set(v.id, v);
      else if (Array.isArray(v)) v.forEach(walk);
      else if (isObject(v)) Object.values(v).forEach(walk);
    };
    rows.forEach(walk);
    return {nodes, rels};
  }

  function draw({nodes, rels}) {
    const q = s => JSON.stringify(String(s)); // a DOT string is a JSON string with the same escapes
    const ids = new Map([...nodes.keys()].map((id, i) => [id, "n" + i]));
    const maxWeight = Math.max(1e-12, ...[...rels.values()].map(r => Math.abs(r.properties.weight || 0)));
    const lines = ["digraph g {", "node [shape=box, style=\"rounded,filled\", fillcolor=\"#f6f8fa\","
      + " color=\"#8c959f\", fontname=Helvetica, fontsize=11]; edge [arrowsize=0.7];"];
    const sites = new Map(); // one rank per site
    for (const [id, n] of nodes) {
      lines.push(`${ids.get(id)} [label=${q(nodeName(n))}, tooltip=${q(JSON.stringify(n.properties).slice(0, 400))}];`);
      if (n.labels.includes("Feature")) {
        const site = n.properties.hook ?? n.properties.layer;
        if (!sites.has(site)) sites.set(site, []);
        sites.get(site).push(ids.get(id));
      }
    }
    for (const members of sites.values()) lines.push(`{ rank=same; ${members.join(" ")} }`);
    for (const r of rels.values()) {
      // a relationship to a node the rows did not return has nothing to point at
      if (!ids.has(r.start) || !ids.has(r.end)) continue;
      const w = r.properties.weight;
      const attrs = typeof w === "number"
        ? [`color=${q(w < 0 ? "#c0392b" : "#2c6fbb")}`, `penwidth=${(0.8 + 4 * Math.abs(w) / maxWeight).toFixed(2)}`,
           `tooltip=${q(`${r.type} ${w}`)}`]
        : [`label=${q(r.type)}`, "fontsize=9", `color="#8c959f"`];
      lines.push(`${ids.get(r.start)} -> ${ids.get(r.end)} [${attrs.join(", ")}];`);
    }
    lines.push("}");
    // a Viz instance is unusable after an error, so each drawing gets a fresh one
    new Viz().renderSVGElement(lines.join("\n"))
      .then(svg => result.replaceChildren(svg))
      .catch(e => fail("could not draw the result: " + e));
  }

  window.resgraphReady = true;
})();
