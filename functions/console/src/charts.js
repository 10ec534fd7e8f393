// Daily charts of a report with uPlot: one small chart per metric, its total in the caption
// (computed from the very series it plots, so a reader can check it against the table), axis
// titles, and the hovered day's value in the legend under the plot.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom.js";
import { fmt } from "./format.js";

export const METRICS = [
  { key: "impressions", label: "Impressions", total: "sum", format: fmt.count, color: "#1f5fbf" },
  { key: "clicks", label: "Clicks", total: "sum", format: fmt.count, color: "#b3261e" },
  { key: "ctr", label: "CTR (%)", total: "ctr", format: fmt.percent, color: "#6a3fb5" },
  { key: "spend", label: "Spend", total: "sum", format: fmt.money, color: "#146c2e" },
  { key: "cpc", label: "CPC", total: "cpc", format: fmt.price, color: "#8a5300" },
  { key: "cpm", label: "CPM", total: "cpm", format: fmt.price, color: "#005f73" },
];

const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");

/** Charts for `report` into `container`; returns a function that removes them. */
export function renderCharts(container, report) {
  const days = report.dailyMetrics;
  const xs = days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
  const plots = [];
  container.replaceChildren();
  // Every figure is laid out first, so that each plot is sized to its own grid cell.
  const targets = METRICS.map((metric) => {
    const caption = h(
      "figcaption",
      {},
      h("span", {}, `${metric.label}: `),
      h("strong", { dataset: { chartTotal: metric.key } }, metric.format(total(metric, days, report))),
    );
    const target = h("div", { class: "plot" });
    container.append(
      h("figure", { class: "chart", "aria-label": `${metric.label} per day; the table lists the same numbers` }, caption, target),
    );
    return target;
  });
  METRICS.forEach((metric, i) => {
    const target = targets[i];
    const ys = days.map((d) => d[metric.key]);
    const plot = new uPlot(
      {
        width: Math.max(240, target.clientWidth || 300),
        height: 190,
        tzDate: utc,
        legend: { show: true, live: true }, // the hovered day and its value, under the plot
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1)] } },
        axes: [{ label: "Day (UTC)", stroke: "#333" }, { label: metric.label, stroke: "#333", size: 64 }],
        series: [
          { label: "Day", value: (u, ts) => fmt.day(ts) },
          { label: metric.label, stroke: metric.color, width: 2, fill: `${metric.color}22`, spanGaps: false, points: { show: days.length <= 31 }, value: (u, v) => metric.format(v) },
        ],
      },
      [xs, ys],
      target,
    );
    plots.push({ plot, target });
  });
  // Resized on the next frame and only when a cell's width changed (no ResizeObserver loop).
  let pending = false;
  const resize = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      for (const { plot, target } of plots) {
        const width = Math.max(240, target.clientWidth);
        if (width !== plot.width) plot.setSize({ width, height: 190 });
      }
    });
  };
  const observer = new ResizeObserver(resize);
  observer.observe(container);
  return () => {
    observer.disconnect();
    for (const { plot } of plots) plot.destroy();
  };
}

function total(metric, days, report) {
  if (metric.total === "sum") {
    // Integers (counts, micros) are summed exactly; spend is shown from its micros.
    if (metric.key === "spend") return days.reduce((n, d) => n + d.spendMicros, 0) / 1e6;
    return days.reduce((n, d) => n + d[metric.key], 0);
  }
  return report.summary[metric.total];
}
