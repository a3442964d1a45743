// Small SVG charts for the otelml page: overlaid histograms and lines over time. No library.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, attrs) {
    const node = el("text", Object.assign({ x, y }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }

  function pct(share) {
    return (100 * share).toFixed(share < 0.1 ? 1 : 0) + "%";
  }

  // Reference and current shares per bucket, side by side; `onPick(bucket)` on click.
  function histogram(buckets, options) {
    const width = Math.max(480, buckets.length * 50);
    const rotate = buckets.length > 6;  // few buckets: labels fit upright
    const longest = Math.max(...buckets.map((b) => b.label.length), 1);
    const below = rotate ? Math.min(110, 18 + longest * 3.6) : 28;  // room for slanted labels
    const height = 172 + below;
    const pad = { left: rotate ? 64 : 44, right: 8, top: 14, bottom: below };
    const svg = el("svg", {
      viewBox: `0 0 ${width} ${height}`,
      class: "chart histogram",
      role: "img",
      "aria-label": "reference and current share per bucket",
    });
    const top = Math.max(0.05, ...buckets.map((b) => Math.max(b.reference_share, b.current_share)));
    const plotH = height - pad.top - pad.bottom;
    const slot = (width - pad.left - pad.right) / Math.max(1, buckets.length);
    const y = (share) => pad.top + plotH * (1 - share / top);
    for (let i = 0; i <= 4; i++) {
      const share = (top * i) / 4;
      el("line", { x1: pad.left, x2: width - pad.right, y1: y(share), y2: y(share), class: "grid" }, svg);
      text(svg, pad.left - 6, y(share) + 4, pct(share), { class: "axis", "text-anchor": "end" });
    }
    buckets.forEach((bucket, i) => {
      const x = pad.left + i * slot;
      const group = el("g", {
        class: "bucket" + (bucket.index === options.selected ? " selected" : "") +
          (bucket.index === options.moved ? " moved" : ""),
        "data-bucket": bucket.index,
        "data-reference-share": bucket.reference_share,
        "data-current-share": bucket.current_share,
        tabindex: 0,
      }, svg);
      el("rect", { x: x + 1, y: pad.top, width: slot - 2, height: plotH, class: "hit" }, group);
      const barW = Math.min(36, Math.max(3, (slot - 10) / 2));
      const inset = (slot - 2 * barW - 2) / 2;
      el("rect", {
        x: x + inset, y: y(bucket.reference_share), width: barW,
        height: Math.max(0, plotH - (y(bucket.reference_share) - pad.top)), class: "ref",
      }, group);
      el("rect", {
        x: x + inset + barW + 2, y: y(bucket.current_share), width: barW,
        height: Math.max(0, plotH - (y(bucket.current_share) - pad.top)), class: "cur",
      }, group);
      const label = text(group, x + slot / 2, height - pad.bottom + 14, bucket.label, rotate ? {
        class: "axis bucket-label", "text-anchor": "end",
        transform: `rotate(-30 ${x + slot / 2} ${height - pad.bottom + 14})`,
      } : { class: "axis bucket-label", "text-anchor": "middle" });
      label.setAttribute("data-label", bucket.label);
      const title = el("title", {}, group);
      title.textContent = `${bucket.label}\nreference ${pct(bucket.reference_share)} ` +
        `(${bucket.reference})\ncurrent ${pct(bucket.current_share)} (${bucket.current})\n` +
        `${bucket.samples.length} recent request(s) — click to list them`;
      group.addEventListener("click", () => options.onPick(bucket));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter") options.onPick(bucket);
      });
    });
    return svg;
  }

  // A line over time with an optional threshold; points where `flag(point)` is true are marked.
  function timeline(points, options) {
    const width = options.width || 480;
    const height = options.height || 170;
    const pad = { left: 48, right: 10, top: 12, bottom: 26 };
    const svg = el("svg", {
      viewBox: `0 0 ${width} ${height}`, class: "chart timeline", role: "img",
      "aria-label": options.label,
    });
    const values = points.map(options.value).filter((v) => v !== null && v !== undefined);
    if (values.length === 0) {
      text(svg, width / 2, height / 2, options.empty || "no points yet", {
        class: "axis", "text-anchor": "middle",
      });
      return svg;
    }
    const times = points.map((p) => p.time);
    const t0 = Math.min(...times);
    const t1 = Math.max(t0 + 1, ...times);
    let lo = Math.min(...values, options.threshold ?? Infinity);
    let hi = Math.max(...values, options.threshold ?? -Infinity);
    if (options.zero) lo = Math.min(0, lo);
    if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
    hi += (hi - lo) * 0.08;
    const x = (t) => pad.left + ((width - pad.left - pad.right) * (t - t0)) / (t1 - t0);
    const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - (v - lo) / (hi - lo));
    for (let i = 0; i <= 3; i++) {
      const v = lo + ((hi - lo) * i) / 3;
      el("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }, svg);
      text(svg, pad.left - 6, y(v) + 4, options.format(v), { class: "axis", "text-anchor": "end" });
    }
    const clock = (t) => new Date(t * 1000).toLocaleTimeString();
    text(svg, pad.left, height - 6, clock(t0), { class: "axis" });
    text(svg, width - pad.right, height - 6, clock(t1), { class: "axis", "text-anchor": "end" });
    if (options.threshold !== null && options.threshold !== undefined) {
      el("line", {
        x1: pad.left, x2: width - pad.right, y1: y(options.threshold), y2: y(options.threshold),
        class: "threshold",
      }, svg);
      text(svg, width - pad.right - 4, y(options.threshold) - 4, `threshold ${options.threshold}`, {
        class: "axis threshold-label", "text-anchor": "end",
      });
    }
    let path = "";
    let pen = false;  // a gap (no verdict) breaks the line
    points.forEach((p) => {
      const v = options.value(p);
      if (v === null || v === undefined) { pen = false; return; }
      path += (pen ? "L" : "M") + x(p.time).toFixed(1) + "," + y(v).toFixed(1);
      pen = true;
    });
    el("path", { d: path, class: "line" }, svg);
    points.forEach((p) => {
      const v = options.value(p);
      if (v === null || v === undefined) return;
      const dot = el("circle", {
        cx: x(p.time), cy: y(v), r: options.flag && options.flag(p) ? 3.2 : 2,
        class: options.flag && options.flag(p) ? "point flagged" : "point", "data-value": v,
      }, svg);
      const title = el("title", {}, dot);
      title.textContent = `${clock(p.time)}: ${options.format(v)}` + (options.note ? options.note(p) : "");
    });
    return svg;
  }

  return { histogram, timeline, pct };
})();
