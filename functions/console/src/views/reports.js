// Reports: GET /function/analytics/report for a range preset, by the chosen dimensions, in the
// key's advertiser's time zone (UTC for an admin key). A chart of impressions and spend per day
// (axis titles, values on hover), a table by the dimensions, and the API's own CSV to download.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { addDays, fmt, utcToday } from "../format.js";

const DIMENSIONS = [
  ["campaign", "Campaign", "campaignId"],
  ["ad", "Ad", "adId"],
  ["placement", "Placement", "placementId"],
  ["country", "Country", "country"],
  ["deviceType", "Device type", "deviceType"],
];
const PRESETS = { "7d": ["Last 7 days", 6], "30d": ["Last 30 days", 29], "90d": ["Last 90 days", 89], today: ["Today", 0] };
const FIGURES = [
  ["impressions", "Impressions", fmt.count], ["clicks", "Clicks", fmt.count], ["ctr", "CTR", fmt.percent],
  ["spend", "Spend", fmt.money], ["cpc", "CPC", fmt.price], ["cpm", "CPM", fmt.price],
];

export function reportsPage(main) {
  let generation = 0;
  let plot = null;
  const preset = h("select", { id: "report-range", name: "range" },
    Object.entries(PRESETS).map(([value, [label]]) => h("option", { value }, label)));
  const boxes = DIMENSIONS.map(([key, label]) => h("input", { type: "checkbox", id: `dim-${key}`, name: key, checked: key === "campaign" }));
  const message = h("p", { class: "alert", role: "alert", hidden: true });
  const chart = h("figure", { id: "report-chart", class: "chart", "aria-label": "Impressions and spend per day; the table lists the numbers" });
  const table = h("table", { id: "report-table" });
  const csv = h("button", { type: "button", id: "report-csv", disabled: true, onclick: download }, "Download CSV");
  const form = h("form", { class: "filters", "aria-label": "Report", onsubmit: (e) => { e.preventDefault(); load(); } },
    h("div", { class: "field" }, h("label", { for: preset.id }, "Range"), preset),
    h("fieldset", { class: "field" }, h("legend", {}, "By"),
      DIMENSIONS.map(([key, label], i) => h("label", { for: boxes[i].id }, boxes[i], ` ${label}`))),
    h("button", { type: "submit", class: "primary" }, "Show"), csv);
  preset.addEventListener("change", load);
  mount(main, h("h1", {}, "Reports"), form, message, chart, h("div", { class: "table-wrap" }, table));

  function query(granularity, groupBy) {
    const today = utcToday();
    const params = new URLSearchParams({ startDate: addDays(today, -PRESETS[preset.value][1]), endDate: today, granularity });
    if (groupBy.length) params.set("groupBy", groupBy.join(","));
    return params;
  }

  async function load() {
    const mine = ++generation;
    const groupBy = DIMENSIONS.filter((_, i) => boxes[i].checked).map(([key]) => key);
    const tableQuery = query("total", groupBy);
    message.hidden = true;
    csv.disabled = true;
    clearChart();
    mount(table); // no stale rows under a new query or its error
    try {
      const [daily, rows] = await Promise.all([api.hourlyReport(query("day", [])), api.hourlyReport(tableQuery)]);
      if (mine !== generation) return;
      drawChart(daily);
      drawTable(rows, groupBy);
      csv.dataset.query = tableQuery.toString();
      csv.disabled = false;
    } catch (error) {
      if (mine !== generation) return;
      message.textContent = `Could not load the report: ${error.message}`;
      message.hidden = false;
    }
  }

  function clearChart() {
    if (plot) plot.destroy();
    plot = null;
    chart.replaceChildren();
  }

  function drawChart(report) {
    const xs = report.rows.map((r) => Date.parse(`${r.day}T00:00:00Z`) / 1000);
    plot = new uPlot({
      width: Math.max(320, chart.clientWidth || 640),
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      legend: { show: true, live: true }, // the hovered day's values
      scales: { x: { time: true }, spend: { range: (u, min, max) => [0, Math.max(max || 0, 1)] } },
      axes: [
        { label: `Day (${report.timeZone})`, stroke: "#333" },
        { label: "Impressions", stroke: "#1f5fbf", scale: "y", size: 64 },
        { label: "Spend", stroke: "#146c2e", scale: "spend", side: 1, size: 64 },
      ],
      series: [
        { label: "Day", value: (u, ts) => fmt.day(ts) },
        { label: "Impressions", stroke: "#1f5fbf", width: 2, scale: "y", value: (u, v) => fmt.count(v) },
        { label: "Spend", stroke: "#146c2e", width: 2, scale: "spend", value: (u, v) => fmt.money(v) },
      ],
    }, [xs, report.rows.map((r) => r.impressions), report.rows.map((r) => r.spend)], chart);
  }

  function drawTable(report, groupBy) {
    const names = DIMENSIONS.filter(([key]) => groupBy.includes(key));
    mount(table,
      h("caption", { class: "sr-only" }, "The report's rows"),
      h("thead", {}, h("tr", {}, [...names.map(([, label]) => h("th", { scope: "col" }, label)), ...FIGURES.map(([, label]) => h("th", { scope: "col" }, label))])),
      h("tbody", {}, report.rows.map((row) => h("tr", {},
        ...names.map(([, , field]) => h("td", {}, row[field] || "–")),
        ...FIGURES.map(([key, , format]) => h("td", { class: "num" }, format(row[key])))))));
  }

  async function download() {
    try {
      const text = await api.hourlyReportCsv(csv.dataset.query);
      const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      const link = h("a", { href: url, download: "report.csv" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) {
      message.textContent = `Could not download the CSV: ${error.message}`;
      message.hidden = false;
    }
  }

  load();
  return () => { generation = -1; clearChart(); };
}
