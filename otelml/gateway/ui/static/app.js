// The otelml page: models → series (drifting first) → buckets → the requests behind them.
// Plain DOM and SVG; every text from telemetry goes in through textContent, never as HTML.
"use strict";

const App = (() => {
  const state = { token: sessionStorage.getItem("otelml.token") || "", info: null, timer: null };
  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "onclick") node.addEventListener("click", value);
      else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  // replaceChildren without the nulls of optional parts.
  function put(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  }

  class Unauthorized extends Error {}

  async function api(path, params) {
    const query = new URLSearchParams(params || {}).toString();
    const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
    const response = await fetch("/api/v1/" + path + (query ? "?" + query : ""), { headers });
    if (response.status === 401) throw new Unauthorized();
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    if (value !== 0 && (Math.abs(value) < 0.001 || Math.abs(value) >= 1e6)) return value.toExponential(2);
    const fixed = value.toFixed(digits ?? 3);
    return fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
  }

  const pct = (v) => (v === null || v === undefined ? "–" : Charts.pct(v));
  const when = (t) => new Date(t * 1000).toLocaleTimeString();

  function verdict(summary) {
    if (summary.detected === true) return h("span", { class: "badge drift" }, "drift");
    if (summary.detected === false) return h("span", { class: "badge ok" }, "ok");
    return h("span", { class: "badge none", title: summary.method
      ? "fewer observations in the window than drift.min_samples" : "no reference profile" },
      summary.method ? "too few" : "no reference");
  }

  // -- routing: #/m/<model>/<version>[/<role>/<series>][?segment=f:v&bucket=i] ------------------
  function route() {
    const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
    const parts = path.split("/").map(decodeURIComponent);
    const params = new URLSearchParams(search || "");
    if (parts[0] !== "m" || parts.length < 3) return { view: "home", params };
    return {
      view: parts.length >= 5 ? "series" : "model",
      model: parts[1], version: parts[2], role: parts[3], series: parts[4], params,
    };
  }

  function link(model, version, role, series, params) {
    let hash = "#/m/" + [model, version].map(encodeURIComponent).join("/");
    if (role) hash += "/" + encodeURIComponent(role) + "/" + encodeURIComponent(series);
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) if (value !== null && value !== undefined && value !== "") query.set(key, value);
    return hash + (query.toString() ? "?" + query : "");
  }

  // -- views -----------------------------------------------------------------------------------
  async function renderModels(current) {
    const data = await api("models");
    const nav = $("models");
    const wanted = $("filter").value.trim().toLowerCase();
    put(nav);
    if (data.models.length === 0) nav.appendChild(h("p", { class: "muted" }, "No model has sent anything yet."));
    for (const m of data.models) {
      if (wanted && !(m.model + " v" + m.version).toLowerCase().includes(wanted)) continue;
      const active = current && current.model === m.model && current.version === m.version;
      nav.appendChild(h("a", {
        class: "model" + (active ? " active" : ""), href: link(m.model, m.version),
        "data-model": m.model + "/" + m.version,
      },
      h("span", { class: "name" }, m.model, h("span", { class: "version" }, " v" + (m.version || "–"))),
      m.drifting.length
        ? h("span", { class: "badge drift", title: m.drifting.join(", ") }, m.drifting.length + " drifting")
        : h("span", { class: "badge ok" }, "no drift")));
    }
    return data;
  }

  function renderHome(models) {
    const main = $("main");
    if (models.models.length) {
      location.replace(link(models.models[0].model, models.models[0].version));
      return;
    }
    main.replaceChildren(h("h1", {}, "Nothing yet"),
      h("p", {}, "Send spans with ml.model.name and ml.feature.* attributes to this gateway (OTLP on :4317/:4318)."));
  }

  function segmentSelector(r, options) {
    if (!options.length) return null;
    const select = h("select", { id: "segment", "aria-label": "segment" },
      h("option", { value: "" }, "whole model"));
    for (const option of options) {
      for (const value of option.values) {
        const key = option.feature + ":" + value;
        select.appendChild(h("option", { value: key, selected: r.params.get("segment") === key ? "selected" : null },
          option.feature + " = " + value));
      }
    }
    select.addEventListener("change", () => {
      location.hash = link(r.model, r.version, r.role, r.series, { segment: select.value });
    });
    return h("label", { class: "segment" }, "Segment ", select);
  }

  async function renderModel(r) {
    const segment = r.params.get("segment") || "";
    const data = await api("model", { name: r.model, version: r.version, segment });
    const rows = data.series.map((s) => {
      const href = link(r.model, r.version, s.role, s.name, { segment });
      return h("tr", { class: s.detected ? "drifting" : "", "data-series": s.role + ":" + s.name,
        onclick: () => { location.hash = href; } },
      h("td", {}, h("a", { href }, s.name), s.role === "prediction" ? h("span", { class: "tag" }, "output") : null),
      h("td", {}, verdict(s)),
      h("td", { class: "num" }, fmt(s.score)),
      h("td", { class: "muted" }, s.method ? `${s.method} ${s.direction === "below" ? "<" : "≥"} ${fmt(s.threshold)}` : "–"),
      h("td", {}, s.moved_most ? h("span", {}, h("code", {}, s.moved_most.label), " ",
        pct(s.moved_most.reference_share), " → ", h("b", {}, pct(s.moved_most.current_share))) : "–"),
      h("td", { class: "num" }, fmt(s.observations, 0)),
      h("td", { class: "num" }, pct(s.missing_rate)),
      h("td", { class: "num" }, pct(s.invalid_rate)));
    });
    const drifting = data.series.filter((s) => s.detected).length;
    put($("main"), 
      h("div", { class: "title-row" },
        h("h1", {}, data.model, h("span", { class: "version" }, " v" + (data.version || "–")),
          data.segment ? h("span", { class: "tag" }, data.segment) : null),
        segmentSelector(r, data.segments)),
      h("p", { class: "lead" }, drifting
        ? `${drifting} of ${data.series.length} series drift in the current window.`
        : `None of ${data.series.length} series drifts in the current window.`),
      h("table", { class: "series" },
        h("thead", {}, h("tr", {}, ["series", "verdict", "score", "test", "bucket that moved most (reference → current)",
          "in window", "missing", "invalid"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows)),
      performance(data.performance));
  }

  function performance(series) {
    if (!series.length) return null;
    return h("section", { class: "panel" }, h("h2", {}, "Performance from ground truth"),
      series.map((s) => {
        const names = Object.keys((s.current || s.history[s.history.length - 1] || { metrics: {} }).metrics);
        const main = ["accuracy", "mae", "rmse", "f1_macro"].find((m) => names.includes(m)) || names[0];
        const points = s.history.concat(s.current ? [s.current] : []);
        return h("div", { class: "perf", "data-output": s.output },
          h("p", {}, h("b", {}, s.output), ": ", s.current
            ? [`${main} ${fmt(s.current.metrics[main])} over `, h("b", { "data-labels": s.current.labels }, String(s.current.labels)),
              " labels joined in the window", names.filter((n) => n !== main).length
                ? " · " + names.filter((n) => n !== main).map((n) => `${n} ${fmt(s.current.metrics[n])}`).join(" · ") : ""]
            : "no labels joined yet"),
          main ? Charts.timeline(points, {
            label: main + " over time", value: (p) => p.metrics[main] ?? null, format: (v) => fmt(v),
            width: 1100, height: 190,
            note: (p) => ` (${p.labels} labels)`, empty: "no labels joined yet",
          }) : null);
      }));
  }

  async function renderSeries(r) {
    const segment = r.params.get("segment") || "";
    const data = await api("series", { name: r.model, version: r.version, role: r.role, series: r.series, segment });
    const s = data.summary;
    const picked = r.params.has("bucket") ? Number(r.params.get("bucket")) : (s.moved_most ? s.moved_most.index : null);
    const bucket = data.buckets.find((b) => b.index === picked) || null;
    const samples = h("section", { class: "panel samples", id: "samples" });
    const request = h("section", { class: "panel request", id: "request", hidden: "hidden" });
    const pick = (b) => {
      history.replaceState(null, "", link(r.model, r.version, r.role, r.series, { segment, bucket: b.index }));
      showSamples(samples, request, b, data);
      for (const node of document.querySelectorAll(".bucket")) {
        node.classList.toggle("selected", Number(node.getAttribute("data-bucket")) === b.index);
      }
    };
    const windowText = data.current === "drift_window"
      ? `current = the last ${fmt(data.window_seconds, 0)} s drift window (step ${fmt(data.step_seconds, 0)} s)`
      : "current = everything since the gateway started (no reference, so no drift window)";
    put($("main"), 
      h("div", { class: "title-row" },
        h("h1", {}, h("a", { href: link(r.model, r.version, null, null, { segment }) }, data.model),
          h("span", { class: "version" }, " v" + (data.version || "–")), " / ", s.name,
          s.role === "prediction" ? h("span", { class: "tag" }, "output") : null,
          data.segment ? h("span", { class: "tag" }, data.segment) : null),
        verdict(s)),
      h("p", { class: "lead" },
        s.method && s.score !== null ? [`${s.method} = `, h("b", { id: "score" }, fmt(s.score)),
          ` (drift when ${s.direction === "below" ? "<" : "≥"} ${fmt(s.threshold)}) over ${s.observations} observations · `] : "",
        s.method && s.score === null ? `${s.method}: no verdict, ${s.observations} of the ${s.min_samples} observations it needs in the window · ` : "",
        `missing ${pct(s.missing_rate)} · invalid ${pct(s.invalid_rate)} · ${s.events} drift event(s)`),
      h("div", { class: "grid2" },
        h("section", { class: "panel" },
          h("h2", {}, "Reference vs current, per reference bucket"),
          h("p", { class: "legend" }, h("span", { class: "key ref" }), " reference (training)  ",
            h("span", { class: "key cur" }), " current  · ", windowText, ". Click a bucket for its requests."),
          h("div", { class: "scroll" }, Charts.histogram(data.buckets, { selected: picked, moved: s.moved_most ? s.moved_most.index : null, onPick: pick }))),
        h("section", { class: "panel" },
          h("h2", {}, "Drift score over time"),
          Charts.timeline(data.history, {
            label: "drift score over time", value: (p) => p.score, threshold: s.threshold, zero: true,
            format: (v) => fmt(v), flag: (p) => p.detected === true,
            note: (p) => ` · ${p.observations} obs` + (p.detected ? " · drift" : ""), empty: "no verdict yet",
          }),
          events(data, pick))),
      attribution(data),
      estimated(data),
      samples, request);
    if (bucket) showSamples(samples, request, bucket, data);
    else samples.appendChild(h("p", { class: "muted" }, "Pick a bucket to see the requests behind it."));
  }

  function events(data, pick) {
    if (!data.events.length) return h("p", { class: "muted" }, "No drift event kept.");
    return h("div", {}, h("h3", {}, "Drift events"), h("ul", { class: "events" }, data.events.map((e) =>
      h("li", {}, h("span", { class: "muted" }, when(e.time)), ` ${fmt(e.score)} · `,
        h("a", { href: "#", "data-event-bucket": e.bucket, onclick: (event) => {
          event.preventDefault();
          const bucket = data.buckets.find((b) => b.index === e.bucket);
          if (bucket) pick(bucket);
        } }, e.label), ` ${pct(e.reference_share)} → ${pct(e.current_share)}`,
        e.trace_id ? [" · trace ", h("a", { href: "#", class: "trace", "data-event-trace": e.trace_id, onclick: (event) => {
          event.preventDefault();
          showRequest($("request"), { trace_id: e.trace_id, row: 0 }, data);
        } }, h("code", {}, e.trace_id.slice(0, 12) + "…"))] : "",
        ` · ${e.samples.length} recent request(s)`))));
  }

  function attribution(data) {
    if (!data.attribution.length) return null;
    return h("section", { class: "panel", id: "attribution" },
      h("h2", {}, "Where the drift comes from"),
      h("p", { class: "muted" }, "Slices of the window's traffic by trace attribute: the share of the drift score that leaving a slice out removes, its share of the traffic, and its own score against the reference."),
      h("table", { class: "sample-list" },
        h("thead", {}, h("tr", {}, ["attribute", "value", "drift explained", "traffic", "slice score", "observations", "a trace"].map((t) => h("th", {}, t)))),
        h("tbody", {}, data.attribution.map((a) => h("tr", { class: "slice", "data-key": a.key, "data-value": a.value },
          h("td", {}, h("code", {}, a.key)), h("td", {}, a.value),
          h("td", { class: "num" }, pct(a.explained)), h("td", { class: "num" }, pct(a.traffic_share)),
          h("td", { class: "num" }, fmt(a.slice_score)), h("td", { class: "num" }, String(a.window_observations)),
          h("td", {}, a.trace_id ? h("a", { href: "#", class: "trace", onclick: (event) => {
            event.preventDefault();
            showRequest($("request"), { trace_id: a.trace_id, row: 0 }, data);
          } }, h("code", {}, a.trace_id.slice(0, 12) + "…")) : "–"))))));
  }

  function estimated(data) {
    const metrics = Object.keys(data.estimated);
    if (!metrics.length) return null;
    return h("section", { class: "panel", id: "estimated" },
      h("h2", {}, "Estimated performance, without labels"),
      h("p", { class: "muted" }, "From the calibrated confidence of the window's predictions (holds under covariate shift, not under concept drift)."),
      h("p", {}, metrics.map((m) => h("span", { class: "tag" }, `${m} ${fmt(data.estimated[m].value)} ± ${fmt(data.estimated[m].stderr)}`))));
  }

  function showSamples(panel, request, bucket, data) {
    put(panel, 
      h("h2", {}, "Requests in ", h("code", {}, bucket.label)),
      h("p", { class: "muted" }, `reference ${pct(bucket.reference_share)} (${bucket.reference}) · current ${pct(bucket.current_share)} (${bucket.current}) · the newest requests the gateway kept for this bucket`),
      bucket.samples.length
        ? h("table", { class: "sample-list" },
          h("thead", {}, h("tr", {}, ["time", "value", "trace id", "row"].map((t) => h("th", {}, t)))),
          h("tbody", {}, bucket.samples.map((sample) => h("tr", {
            class: "sample", "data-trace": sample.trace_id, "data-value": sample.value,
            onclick: () => showRequest(request, sample, data),
          }, h("td", {}, when(sample.time)), h("td", { class: "num" }, fmt(sample.value, 4)),
          h("td", {}, h("code", {}, sample.trace_id)), h("td", { class: "num" }, String(sample.row))))))
        : h("p", { class: "muted" }, data.segment
          ? `None of the requests kept for this bucket is in the segment ${data.segment}.`
          : "No request kept for this bucket yet."));
  }

  async function showRequest(panel, sample, data) {
    for (const row of document.querySelectorAll("tr.sample")) row.classList.toggle("selected", row.getAttribute("data-trace") === sample.trace_id);
    panel.hidden = false;
    let detail;
    try {
      detail = await api("requests/" + sample.trace_id, { name: data.model, version: data.version });
    } catch (error) {
      put(panel, h("h2", {}, "Request ", h("code", {}, sample.trace_id)),
        h("p", { class: "muted" }, error instanceof Unauthorized ? "The token was refused."
          : "The gateway no longer keeps this request's row (it keeps the newest few per bucket)."),
        state.info && state.info.grafana_url ? null : h("p", { class: "muted" }, "Set ui.grafana_url to open any trace in Grafana."));
      return;
    }
    const row = detail.rows.find((x) => x.row === sample.row) || detail.rows[0];
    const cells = (values, role) => Object.entries(values).map(([name, value]) =>
      h("tr", { class: role === "feature" && name === data.summary.name ? "hl" : "", "data-name": name, "data-value": value },
        h("td", {}, name), h("td", { class: "num" }, fmt(value, 4))));
    const grafana = detail.grafana_url
      ? h("a", { class: "button", href: detail.grafana_url, target: "_blank", rel: "noopener" }, "Open in Grafana / Tempo")
      : h("span", { class: "muted" }, "Set ui.grafana_url to open this trace in Grafana.");
    put(panel, 
      h("h2", {}, "Request ", h("code", { id: "request-trace" }, detail.trace_id)),
      h("p", { class: "muted" }, `span ${row.span_id} · row ${row.row} · ${new Date(row.time * 1000).toLocaleString()} · `, grafana),
      h("div", { class: "grid2" },
        h("table", { class: "kv" }, h("thead", {}, h("tr", {}, h("th", {}, "feature"), h("th", {}, "value as received"))), h("tbody", {}, cells(row.features, "feature"))),
        h("table", { class: "kv" }, h("thead", {}, h("tr", {}, h("th", {}, "output"), h("th", {}, "prediction"))), h("tbody", {}, cells(row.predictions, "prediction")))));
    panel.scrollIntoView({ block: "nearest" });
  }

  // -- top level -------------------------------------------------------------------------------
  async function render() {
    const r = route();
    try {
      if (!state.info) state.info = await api("info");
      const models = await renderModels(r);
      $("crumbs").textContent = r.view === "home" ? "" : `${r.model} v${r.version}` + (r.series ? ` / ${r.series}` : "");
      if (r.view === "home") renderHome(models);
      else if (r.view === "model") await renderModel(r);
      else await renderSeries(r);
      $("login").hidden = true;
      $("status").textContent = `gateway ${state.info.version} · updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (error instanceof Unauthorized) {
        $("login").hidden = false;
        put($("main"), h("p", { class: "muted" }, "Enter the gateway's token to continue."));
      } else {
        put($("main"), h("p", { class: "error" }, String(error.message || error)));
      }
    }
  }

  function start() {
    const params = new URLSearchParams(location.search);
    if (params.has("token")) {  // taken once, then kept for the tab only, out of the address bar
      state.token = params.get("token");
      sessionStorage.setItem("otelml.token", state.token);
      history.replaceState(null, "", location.pathname + location.hash);
    }
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      state.token = $("token").value;
      sessionStorage.setItem("otelml.token", state.token);
      render();
    });
    window.addEventListener("hashchange", render);
    $("filter").addEventListener("input", () => renderModels(route()).catch(() => {}));
    render();
    // The model view refreshes itself; a series view keeps still while you read it.
    state.timer = setInterval(() => { if (route().view !== "series" && !document.hidden) render(); }, 5000);
  }

  return { start };
})();

App.start();
