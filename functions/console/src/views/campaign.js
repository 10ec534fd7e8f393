// A campaign's page: its settings, pause/resume, today's numbers refreshed every few seconds
// (no reload), and a daily report over a chosen range: charts, the same numbers in a table,
// and a CSV download.
import { api } from "../api.js";
import { METRICS, renderCharts } from "../charts.js";
import { h, mount } from "../dom.js";
import { addDays, dayElapsed, fmt, reportCsv, utcToday } from "../format.js";
import { testRequestCard } from "./explain.js";

const LIVE_EVERY_MS = 3000;

export function campaignPage(main, id) {
  let alive = true;
  let timer = null;
  let removeCharts = null;
  let campaign = null;
  let report = null;
  let lastLive = "";

  const message = h("p", { class: "alert", role: "alert", hidden: true });
  const header = h("div", { class: "title-row" });
  const details = h("section", { class: "card", "aria-labelledby": "details-title" });
  const live = h("dl", { class: "live", id: "live" });
  const updated = h("p", { class: "muted", id: "live-updated" });
  const start = h("input", { id: "report-start", type: "date", required: true, value: addDays(utcToday(), -6) });
  const end = h("input", { id: "report-end", type: "date", required: true, value: utcToday() });
  const rangeError = h("p", { class: "field-error", id: "report-range-error", role: "status" });
  const charts = h("div", { class: "charts", id: "charts" });
  const table = h("table", { id: "report-table" });
  const csv = h("button", { type: "button", id: "download-csv", onclick: download, disabled: true }, "Download CSV");
  const tester = h("div", { id: "test-request" });

  mount(main, h("p", {}, h("a", { href: "#/" }, "← Campaigns")), header, message,
    h("section", { class: "card", "aria-labelledby": "live-title" },
      h("h2", { id: "live-title" }, "Today (UTC), live"), live, updated),
    h("section", { class: "card", "aria-labelledby": "report-title" },
      h("h2", { id: "report-title" }, "Daily report"),
      h("form", { class: "filters", id: "report-form", onsubmit: (e) => { e.preventDefault(); loadReport(); } },
        h("div", { class: "field" }, h("label", { for: start.id }, "From"), start),
        h("div", { class: "field" }, h("label", { for: end.id }, "To"), end),
        h("button", { type: "submit", class: "primary" }, "Show"), csv),
      rangeError,
      h("div", { class: "report" }, charts, h("div", { class: "table-wrap" }, table))),
    details, tester);
  start.setAttribute("aria-describedby", rangeError.id);
  end.setAttribute("aria-describedby", rangeError.id);

  function fail(error) {
    if (!alive) return;
    message.textContent = error.message;
    message.hidden = false;
  }

  async function loadCampaign() {
    campaign = await api.campaign(id);
    if (!alive) return;
    renderHeader();
    renderDetails();
    mount(tester, testRequestCard(campaign));
  }

  function renderHeader() {
    const paused = campaign.status === "paused";
    const toggle = h("button", { type: "button", id: "toggle-status", class: "primary", disabled: campaign.status === "ended", onclick: async () => {
      toggle.disabled = true;
      try {
        campaign = await (paused ? api.resume(id) : api.pause(id));
        renderHeader();
        renderDetails();
        document.getElementById("toggle-status")?.focus();
      } catch (error) { toggle.disabled = false; fail(error); }
    } }, paused ? "Resume" : "Pause");
    mount(header, h("div", { class: "name" }, h("h1", { id: "campaign-name" }, campaign.name),
      h("span", { class: `badge ${campaign.status}`, id: "campaign-status" }, campaign.status)),
      h("div", { class: "actions" }, toggle, h("a", { class: "button", href: `#/campaigns/${id}/edit` }, "Edit")));
  }

  function renderDetails() {
    const c = campaign;
    mount(details, h("h2", { id: "details-title" }, "Settings"),
      h("dl", { class: "pairs" },
        pair("Advertiser", c.advertiserId), pair("Tier", h("span", { id: "campaign-tier" }, c.tier || "standard")),
        pair("CPM bid", fmt.price(c.cpmBid)),
        pair("Daily budget", fmt.money(c.dailyBudget)),
        pair("Lifetime budget", c.lifetimeBudget === null ? "none" : fmt.money(c.lifetimeBudget)),
        pair("Targeting", c.targetingRules.length ? c.targetingRules.map((r) => `${r.ruleType} = ${r.ruleValue}`).join("; ") : "everyone")),
      h("h3", {}, `Ads (${c.ads.length})`),
      h("ul", { class: "ads" }, c.ads.map((ad) => h("li", {}, h("strong", {}, ad.title), h("br"),
        h("span", { class: "muted" }, `image ${ad.imageUrl}`), h("br"), h("span", { class: "muted" }, `lands on ${ad.redirectUrl}`)))));
  }

  async function refreshLive() {
    timer = null;
    const today = utcToday();
    try {
      const todays = await api.report(id, today, today);
      if (!alive) return;
      const s = todays.summary;
      const key = JSON.stringify(s);
      const share = campaign && campaign.dailyBudget > 0 ? s.totalSpendMicros / 1e6 / campaign.dailyBudget : null;
      mount(live,
        stat("impressions", "Impressions", fmt.count(s.totalImpressions)),
        campaign && campaign.tier === "house" ? stat("house", "House impressions", fmt.count(s.houseImpressions), "charged 0") : null,
        stat("clicks", "Clicks", fmt.count(s.totalClicks)),
        stat("ctr", "CTR", fmt.percent(s.ctr)), stat("spend", "Spend", fmt.money(s.totalSpend)),
        stat("cpc", "CPC", fmt.price(s.cpc)), stat("cpm", "CPM", fmt.price(s.cpm)),
        stat("pacing", "Pacing", share === null ? "–" : fmt.percent(share * 100),
          `of the daily budget; ${Math.round(dayElapsed() * 100)} % of the day gone`));
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${LIVE_EVERY_MS / 1000} s.`;
      // Today moved: the report, when it covers today, follows without a reload.
      if (lastLive && key !== lastLive && report && start.value <= today && today <= end.value) loadReport();
      lastLive = key;
    } catch (error) { fail(error); }
    if (alive) timer = setTimeout(refreshLive, LIVE_EVERY_MS);
  }

  async function loadReport() {
    rangeError.textContent = "";
    try {
      const fresh = await api.report(id, start.value, end.value);
      if (!alive) return;
      report = fresh;
      if (removeCharts) removeCharts();
      removeCharts = renderCharts(charts, report);
      renderTable();
      csv.disabled = false;
    } catch (error) {
      if (!alive) return;
      // No charts or rows of another range beside the error.
      report = null;
      if (removeCharts) removeCharts();
      removeCharts = null;
      charts.replaceChildren();
      mount(table);
      csv.disabled = true;
      if (error.status === 400) rangeError.textContent = error.message;
      else fail(error);
    }
  }

  function renderTable() {
    const s = report.summary;
    const head = h("tr", {}, h("th", { scope: "col" }, "Day"), METRICS.map((m) => h("th", { scope: "col", class: "num" }, m.label)));
    const rows = report.dailyMetrics.map((d) => h("tr", {}, h("th", { scope: "row" }, d.date),
      METRICS.map((m) => h("td", { class: "num" }, m.format(d[m.key])))));
    const totals = { impressions: s.totalImpressions, clicks: s.totalClicks, ctr: s.ctr, spend: s.totalSpend, cpc: s.cpc, cpm: s.cpm };
    const foot = h("tr", { id: "report-totals" }, h("th", { scope: "row" }, "Total"),
      METRICS.map((m) => h("td", { class: "num", dataset: { total: m.key } }, m.format(totals[m.key]))));
    const caption = h("caption", {}, `Daily numbers, ${report.dateRange.start} to ${report.dateRange.end}${report.partial ? " (some days could not be read)" : ""}`);
    mount(table, caption, h("thead", {}, head), h("tbody", {}, rows), h("tfoot", {}, foot));
  }

  function download() {
    if (!report) return;
    const blob = new Blob([reportCsv(report)], { type: "text/csv" });
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: `campaign-${id}-${report.dateRange.start}-${report.dateRange.end}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  loadCampaign().then(() => { refreshLive(); loadReport(); }).catch(fail);
  return () => {
    alive = false;
    if (timer) clearTimeout(timer);
    if (removeCharts) removeCharts();
  };
}

function pair(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function stat(key, label, value, note) {
  return h("div", {}, h("dt", {}, label), h("dd", { id: `live-${key}` }, value), note ? h("dd", { class: "muted" }, note) : null);
}
