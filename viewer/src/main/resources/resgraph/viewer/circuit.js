// The circuit viewer: lays out the circuit's DOT with Graphviz (viz.js), then makes it explorable:
// pan and zoom, click a node for its activations, logit effects and edges, filter edges by |effect|.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("graph-data").textContent);
  const nodesById = new Map(data.nodes.map(n => [n.id, n]));
  const nodesByDom = new Map(data.nodes.map(n => [n.dom, n]));

  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "onclick") e.onclick = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  const shown = t => t === "<|endoftext|>" ? "⟨bos⟩" : t.replace(/\n/g, "↵");
  const fmt = v => (Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(4) : v.toExponential(2));
  // white to blue, as the node boxes shade tokens
  const shade = f => `rgb(${Math.round(255 - f * 222)},${Math.round(255 - f * 142)},${Math.round(255 - f * 74)})`;

  renderHeader();
  const viz = new Viz();
  viz.renderSVGElement(data.dot)
    .then(mount)
    .catch(err => {
      document.getElementById("canvas").append(el("p", {class: "error"}, "Could not lay out the circuit: " + err));
      console.error(err);
    });

  function renderHeader() {
    const j = data.job;
    const h = document.getElementById("header");
    const nav = el("nav");
    if (data.links) {
      nav.append(el("a", {href: data.links.jobs}, "all jobs"), el("a", {href: data.links.compare}, "compare"),
        el("a", {href: data.links.cypher}, "Cypher"));
    }
    h.append(nav, el("h1", {}, `${j.model} with SAEs ${j.saes}`, el("span", {class: "job"}, j.id)));
    const prompt = el("div", {class: "prompt"});
    j.token_strings.forEach((t, p) => {
      if (p === 0 && t === "<|endoftext|>") return;
      prompt.append(p === j.target ? el("span", {class: "target", title: `target position ${p}`}, t) : t);
    });
    prompt.append(" → ", ...data.predictions.slice(0, 5).map(t => el("span", {class: "chip", title: `p = ${t.value}`},
      `${shown(t.token)} ${(100 * t.value).toPrecision(2)}%`)));
    h.append(prompt);
    h.append(el("div", {class: "meta"},
      el("span", {}, j.method),
      el("span", {}, j.pruning),
      el("span", {}, `${data.nodes.length} nodes, ${data.edges.length} edges of ${data.raw_edge_count.toLocaleString()} raw`),
      el("span", {}, `the edges shown carry ${(100 * data.effect_shown).toFixed(1)}% of the total |effect|`)));
    // how the SAEs were read, each decision with where it came from
    const settings = el("details", {class: "settings"}, el("summary", {}, "how the SAEs were read"));
    const rows = el("table");
    j.saes_settings.forEach(s => rows.append(el("tr", {},
      el("td", {}, s.name), el("td", {}, s.value), el("td", {}, s.source + (s.hooks ? ` (at ${s.hooks.join(", ")})` : "")))));
    settings.append(rows);
    h.append(settings);
  }

  function mount(svg) {
    const canvas = document.getElementById("canvas");
    canvas.append(svg);
    // the zoom transform alone places the drawing, so Graphviz's own size and viewBox go
    ["width", "height", "viewBox"].forEach(a => svg.removeAttribute(a));
    const zoomed = d3.select(svg).append("g").attr("id", "zoom");
    zoomed.node().append(svg.querySelector("g.graph"));
    const zoom = d3.zoom().scaleExtent([0.05, 8]).on("zoom", e => zoomed.attr("transform", e.transform));
    d3.select(svg).call(zoom).on("dblclick.zoom", null);
    const fit = () => {
      const box = zoomed.node().getBBox(), w = canvas.clientWidth, h = canvas.clientHeight;
      const k = Math.min(w / box.width, (h - 60) / box.height) * 0.95; // room for the controls below
      d3.select(svg).call(zoom.transform,
        d3.zoomIdentity.translate((w - k * box.width) / 2 - k * box.x, (h - 60 - k * box.height) / 2 - k * box.y).scale(k));
    };
    fit();
    document.getElementById("fit").onclick = fit;

    svg.querySelectorAll("g.node").forEach(g => {
      const node = nodesByDom.get(g.id);
      if (!node) return; // the layer labels
      g.addEventListener("click", e => { e.stopPropagation(); select(node.id); });
      g.addEventListener("mouseenter", () => focus(node.id));
      g.addEventListener("mouseleave", () => focus(null));
    });
    svg.querySelectorAll("g.node a").forEach(a => a.addEventListener("click", e => e.preventDefault()));
    setUpFilter(svg);
    window.resgraphReady = true;
  }

  function focus(id) {
    const svg = document.querySelector("#canvas svg");
    if (!svg) return;
    const touching = new Set();
    if (id) {
      touching.add(id);
      data.edges.forEach(e => { if (e.source === id || e.target === id) { touching.add(e.source); touching.add(e.target); } });
    }
    data.nodes.forEach(n => document.getElementById(n.dom)?.classList.toggle("faded", !!id && !touching.has(n.id)));
    data.edges.forEach(e => document.getElementById(e.dom)?.classList.toggle("faded", !!id && e.source !== id && e.target !== id));
  }

  function setUpFilter() {
    const input = document.getElementById("filter"), label = document.getElementById("filter-label");
    const max = Math.max(...data.edges.map(e => Math.abs(e.weight)), 1e-12);
    const apply = () => {
      const min = max * Math.pow(Number(input.value) / 100, 2); // finer steps among the small effects
      let visible = 0;
      data.edges.forEach(e => {
        const on = Math.abs(e.weight) >= min;
        document.getElementById(e.dom)?.classList.toggle("hidden", !on);
        if (on) visible++;
      });
      label.textContent = `|effect| ≥ ${fmt(min)}: ${visible} of ${data.edges.length} edges`;
    };
    input.oninput = apply;
    apply();
  }

  function select(id) {
    document.querySelectorAll("g.node.selected").forEach(g => g.classList.remove("selected"));
    const node = nodesById.get(id);
    document.getElementById(node.dom)?.classList.add("selected");
    const panel = document.getElementById("details");
    panel.replaceChildren();
    panel.append(el("h2", {}, node.id), el("div", {class: "meta"}, `${node.hook}, latent ${node.latent}`));
    if (node.neuronpedia) panel.append(el("p", {}, el("a", {href: node.neuronpedia, target: "_blank", rel: "noopener"}, "Open on Neuronpedia ↗")));

    const peak = Math.max(...node.activations, 0);
    panel.append(el("h3", {}, `Activation over the prompt (peak ${fmt(peak)})`));
    const tokens = el("div", {class: "tokens"});
    data.job.token_strings.forEach((t, p) => {
      const a = node.activations[p] || 0;
      const span = el("span", {class: "tok" + (p === data.job.target ? " target" : ""), title: `position ${p}: ${fmt(a)}`}, shown(t));
      span.style.background = shade(peak > 0 ? a / peak : 0);
      if (peak > 0 && a / peak > 0.6) span.style.color = "white";
      tokens.append(span);
    });
    panel.append(tokens);

    panel.append(el("h3", {}, "Promotes: next tokens it makes likelier"), values(node.promotes, "promote", t => shown(t.token)));
    panel.append(el("h3", {}, "Suppresses: next tokens it makes less likely"), values(node.suppresses, "suppress", t => shown(t.token)));

    const incoming = data.incident.filter(e => e.target === id), outgoing = data.incident.filter(e => e.source === id);
    panel.append(el("h3", {}, `Raw edges in (${node.raw_in.toLocaleString()})`), edgeTable(incoming, e => e.source));
    panel.append(el("h3", {}, `Raw edges out (${node.raw_out.toLocaleString()})`), edgeTable(outgoing, e => e.target));
  }

  function values(list, cls, label) {
    if (!list.length) return el("p", {class: "hint"}, "None: the latent is zero at every ablatable position.");
    const max = Math.max(...list.map(t => Math.abs(t.value)));
    const table = el("table", {class: "values"});
    list.forEach(t => {
      const bar = el("div", {class: "barfill"});
      bar.style.width = `${(100 * Math.abs(t.value)) / max}%`;
      bar.style.background = cls === "promote" ? "var(--inhibits)" : "var(--excites)";
      table.append(el("tr", {}, el("td", {class: cls}, el("span", {class: "chip"}, label(t))),
        el("td", {class: "bar"}, bar), el("td", {class: "num"}, fmt(t.value))));
    });
    return table;
  }

  function edgeTable(edges, other) {
    if (!edges.length) return el("p", {class: "hint"}, "None.");
    const sorted = [...edges].sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight)).slice(0, data.edges_listed);
    const max = Math.abs(sorted[0].weight);
    const table = el("table", {class: "values"});
    sorted.forEach(e => {
      const bar = el("div", {class: "barfill"});
      bar.style.width = `${(100 * Math.abs(e.weight)) / max}%`;
      bar.style.background = e.weight < 0 ? "var(--excites)" : "var(--inhibits)";
      const inCircuit = nodesById.has(other(e));
      const row = el("tr", {class: inCircuit ? "link" : "", title: e.weight < 0 ? "excites" : "inhibits"},
        el("td", {}, other(e) + (inCircuit ? " ●" : "")), el("td", {class: "bar"}, bar), el("td", {class: "num"}, fmt(e.weight)));
      if (inCircuit) row.onclick = () => select(other(e));
      table.append(row);
    });
    return table;
  }
})();
