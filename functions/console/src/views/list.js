// The campaign list: sorted, filtered and searched by the campaigns API (over every campaign,
// not only the loaded page), a page at a time; impressions, clicks, CTR and spend for the chosen
// range (UTC days) from ONE analytics report request per page (grouped by campaign).
import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { addDays, dayElapsed, fmt, utcToday } from "../format.js";

// `sort`: what the campaigns API sorts by (null: not sortable, shown in the loaded order).
const COLUMNS = [
  { key: "name", label: "Campaign", sort: "name" },
  { key: "status", label: "Status" },
  { key: "createdAt", label: "Created", sort: "createdAt" },
  { key: "cpmBid", label: "CPM bid" },
  { key: "dailyBudget", label: "Daily budget" },
  { key: "lifetimeBudget", label: "Lifetime budget" },
  { key: "impressions", label: "Impressions" },
  { key: "clicks", label: "Clicks" },
  { key: "ctr", label: "CTR" },
  { key: "spend", label: "Spend", sort: "spend" },
  { key: "pacing", label: "Pacing (spend today of daily budget)" },
];
const RANGES = { today: ["Today", 0], "7d": ["Last 7 days", 6], "30d": ["Last 30 days", 29] };

export function campaignList(main) {
  const state = { rows: [], cursor: null, sort: "name", ascending: true };
  let generation = 0; // a newer query wins: an older answer arriving late is dropped
  let searchTimer = null;
  const status = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "Any"), h("option", { value: "active" }, "Active"),
    h("option", { value: "paused" }, "Paused"), h("option", { value: "ended" }, "Ended"));
  const advertiser = h("input", { id: "filter-advertiser", name: "advertiserId", placeholder: "UUID", spellcheck: "false" });
  const text = h("input", { id: "filter-text", name: "q", type: "search" });
  const range = h("select", { id: "filter-range", name: "range" },
    Object.entries(RANGES).map(([value, [label]]) => h("option", { value }, label)));
  const message = h("p", { class: "alert", role: "alert", hidden: true });
  const tbody = h("tbody");
  const headRow = h("tr");
  const more = h("button", { type: "button", hidden: true, onclick: () => load(false) }, "Load more");
  const summary = h("p", { id: "list-summary", role: "status" });

  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter campaigns", onsubmit: (e) => { e.preventDefault(); load(true); } },
    h("div", { class: "field" }, h("label", { for: status.id }, "Status"), status),
    h("div", { class: "field" }, h("label", { for: advertiser.id }, "Advertiser ID"), advertiser),
    h("div", { class: "field" }, h("label", { for: text.id }, "Name contains"), text),
    h("div", { class: "field" }, h("label", { for: range.id }, "Numbers for"), range),
    h("button", { type: "submit", class: "primary" }, "Apply"));
  text.addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => load(true), 300); });
  status.addEventListener("change", () => load(true));
  range.addEventListener("change", () => load(true));

  mount(main,
    h("div", { class: "title-row" }, h("h1", {}, "Campaigns"), h("a", { class: "button primary", href: "#/campaigns/new" }, "New campaign")),
    form, message, summary,
    h("div", { class: "table-wrap" }, h("table", { id: "campaigns" }, h("caption", { class: "sr-only" }, "Campaigns; column buttons sort"), h("thead", {}, headRow), tbody)),
    more);

  function days() {
    const today = utcToday();
    return { startDate: addDays(today, -RANGES[range.value][1]), endDate: today };
  }

  async function load(fresh) {
    const mine = fresh ? ++generation : generation;
    message.hidden = true;
    if (fresh) { state.rows = []; state.cursor = null; render(); } // no old rows under a new query or its error
    const { startDate, endDate } = days();
    try {
      const page = await api.listCampaigns({
        status: status.value,
        advertiserId: advertiser.value.trim(),
        q: text.value.trim(),
        sort: state.sort,
        order: state.ascending ? "asc" : "desc",
        startDate,
        endDate,
        cursor: state.cursor,
      });
      if (mine !== generation) return;
      const added = page.items.map((campaign) => ({ campaign, stats: null }));
      state.rows.push(...added);
      state.cursor = page.nextCursor;
      render();
      if (!added.length) return;
      const stats = await api.reportByCampaign(added.map((r) => r.campaign.id), startDate, endDate)
        .then((report) => new Map(report.rows.map((row) => [row.campaignId, row])))
        .catch(() => null);
      if (mine !== generation) return;
      for (const row of added) row.stats = stats ? stats.get(row.campaign.id) || ZERO : FAILED;
      render();
    } catch (error) {
      if (mine !== generation) return;
      message.textContent = `Could not load the campaigns: ${error.message}`;
      message.hidden = false;
    }
  }

  function renderHead() { // only when the sort changes: focus and the header stay put as numbers arrive
    mount(headRow, COLUMNS.map((c) => h("th", { scope: "col", "aria-sort": c.sort ? (state.sort === c.sort ? (state.ascending ? "ascending" : "descending") : "none") : undefined },
      c.sort ? h("button", { type: "button", class: "sort", onclick: () => sortBy(c.sort) }, c.label) : c.label)));
  }

  function render() {
    mount(tbody, state.rows.map((row) => rowOf(row, range.value === "today")));
    summary.textContent = `${state.rows.length} campaigns shown${state.cursor ? "; more can be loaded" : ""}.`;
    more.hidden = !state.cursor;
  }

  function sortBy(key) {
    state.ascending = state.sort === key ? !state.ascending : key !== "spend"; // the top spender first
    state.sort = key;
    renderHead();
    load(true);
    headRow.querySelector(`th[aria-sort="${state.ascending ? "ascending" : "descending"}"] button`)?.focus();
  }

  renderHead();
  load(true);
  return () => { generation = -1; clearTimeout(searchTimer); };
}

const ZERO = { impressions: 0, clicks: 0, ctr: null, spend: 0 };
const FAILED = { failed: true };

function rowOf({ campaign: c, stats }, today) {
  const pending = stats === null ? "…" : "–";
  const s = stats && !stats.failed ? stats : null;
  return h("tr", { dataset: { campaignId: c.id } },
    h("th", { scope: "row" }, h("a", { href: `#/campaigns/${c.id}`, class: "campaign-name" }, c.name)),
    h("td", {}, h("span", { class: `badge ${c.status}` }, c.status)),
    h("td", {}, c.createdAt.slice(0, 10)),
    h("td", { class: "num" }, fmt.price(c.cpmBid)),
    h("td", { class: "num" }, fmt.money(c.dailyBudget)),
    h("td", { class: "num" }, c.lifetimeBudget === null ? "none" : fmt.money(c.lifetimeBudget)),
    h("td", { class: "num" }, s ? fmt.count(s.impressions) : pending),
    h("td", { class: "num" }, s ? fmt.count(s.clicks) : pending),
    h("td", { class: "num" }, s ? fmt.percent(s.ctr) : pending),
    h("td", { class: "num spend" }, s ? fmt.money(s.spend) : pending),
    h("td", { class: "num" }, s && today ? pacing(c.dailyBudget > 0 ? s.spend / c.dailyBudget : null) : "–"));
}

function pacing(share) {
  if (share === null) return "–";
  const pace = Math.round(dayElapsed() * 100);
  return h("span", {}, fmt.percent(share * 100), h("span", { class: "muted" }, ` (day ${pace} % gone)`));
}
