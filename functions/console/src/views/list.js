// The campaign list: status, budgets, spend today and lifetime, pacing, CTR; filters and sorting.
// Campaigns come a page at a time from the campaigns API; each row's numbers from analytics
// (createdAt..today, at most 366 days: the summary is the lifetime, its last day is today).
import { api, eachLimited } from "../api.js";
import { h, mount } from "../dom.js";
import { addDays, dayElapsed, fmt, utcToday } from "../format.js";

const COLUMNS = [
  { key: "name", label: "Campaign", text: true },
  { key: "status", label: "Status", text: true },
  { key: "cpmBid", label: "CPM bid" },
  { key: "dailyBudget", label: "Daily budget" },
  { key: "lifetimeBudget", label: "Lifetime budget" },
  { key: "spentToday", label: "Spent today" },
  { key: "spentLifetime", label: "Spent lifetime" },
  { key: "pacing", label: "Pacing (of daily budget)" },
  { key: "ctr", label: "CTR" },
];
const MAX_RANGE_DAYS = 366;

export function campaignList(main) {
  const state = { rows: [], cursor: null, sort: "name", ascending: true, filters: { status: "", advertiserId: "", text: "" } };
  let alive = true;
  const status = h("select", { id: "filter-status", name: "status" },
    h("option", { value: "" }, "Any"), h("option", { value: "active" }, "Active"),
    h("option", { value: "paused" }, "Paused"), h("option", { value: "ended" }, "Ended"));
  const advertiser = h("input", { id: "filter-advertiser", name: "advertiserId", placeholder: "UUID", spellcheck: "false" });
  const text = h("input", { id: "filter-text", name: "q", type: "search" });
  const message = h("p", { class: "alert", role: "alert", hidden: true });
  const tbody = h("tbody");
  const headRow = h("tr");
  const more = h("button", { type: "button", hidden: true, onclick: () => load(false) }, "Load more");
  const summary = h("p", { id: "list-summary", role: "status" });

  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter campaigns", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("div", { class: "field" }, h("label", { for: status.id }, "Status"), status),
    h("div", { class: "field" }, h("label", { for: advertiser.id }, "Advertiser ID"), advertiser),
    h("div", { class: "field" }, h("label", { for: text.id }, "Name contains"), text),
    h("button", { type: "submit", class: "primary" }, "Apply"));
  text.addEventListener("input", () => { state.filters.text = text.value.trim().toLowerCase(); render(); });

  mount(main,
    h("div", { class: "title-row" }, h("h1", {}, "Campaigns"), h("a", { class: "button primary", href: "#/campaigns/new" }, "New campaign")),
    form, message, summary,
    h("div", { class: "table-wrap" }, h("table", { id: "campaigns" }, h("caption", { class: "sr-only" }, "Campaigns; column buttons sort"), h("thead", {}, headRow), tbody)),
    more);

  function apply() {
    state.filters.status = status.value;
    state.filters.advertiserId = advertiser.value.trim();
    state.filters.text = text.value.trim().toLowerCase();
    load(true);
  }

  async function load(fresh) {
    message.hidden = true;
    if (fresh) { state.rows = []; state.cursor = null; render(); } // no old rows under a new query or its error
    try {
      const page = await api.listCampaigns({ status: state.filters.status, advertiserId: state.filters.advertiserId, cursor: state.cursor });
      if (!alive) return;
      const added = page.items.map((campaign) => ({ campaign, stats: null }));
      state.rows.push(...added);
      state.cursor = page.nextCursor;
      render();
      await eachLimited(added, 6, async (row) => {
        row.stats = await stats(row.campaign).catch(() => ({ failed: true }));
        if (alive) render();
      });
    } catch (error) {
      if (!alive) return;
      message.textContent = `Could not load the campaigns: ${error.message}`;
      message.hidden = false;
    }
  }

  function render() {
    mount(headRow, COLUMNS.map((c) => h("th", { scope: "col", "aria-sort": state.sort === c.key ? (state.ascending ? "ascending" : "descending") : "none" },
      h("button", { type: "button", class: "sort", onclick: () => sortBy(c.key) }, c.label))));
    const visible = state.rows.filter((r) => !state.filters.text || r.campaign.name.toLowerCase().includes(state.filters.text));
    visible.sort(compare);
    mount(tbody, visible.map(rowOf));
    summary.textContent = `${visible.length} of ${state.rows.length} loaded campaigns shown${state.cursor ? "; more can be loaded" : ""}.`;
    more.hidden = !state.cursor;
  }

  function sortBy(key) {
    state.ascending = state.sort === key ? !state.ascending : true;
    state.sort = key;
    render();
    headRow.querySelector(`th[aria-sort="${state.ascending ? "ascending" : "descending"}"] button`)?.focus();
  }

  function compare(a, b) {
    const column = COLUMNS.find((c) => c.key === state.sort);
    const va = value(a, state.sort);
    const vb = value(b, state.sort);
    let order;
    if (va === null || vb === null) order = va === vb ? 0 : va === null ? 1 : -1;
    else order = column.text ? String(va).localeCompare(String(vb)) : va - vb;
    return state.ascending || va === null || vb === null ? order : -order;
  }

  load(true);
  return () => { alive = false; };
}

function value(row, key) {
  const c = row.campaign;
  if (key in c) return c[key];
  return row.stats && !row.stats.failed ? row.stats[key] ?? null : null;
}

function rowOf({ campaign: c, stats }) {
  const pending = stats === null ? "…" : "–";
  const s = stats && !stats.failed ? stats : null;
  return h("tr", { dataset: { campaignId: c.id } },
    h("th", { scope: "row" }, h("a", { href: `#/campaigns/${c.id}`, class: "campaign-name" }, c.name)),
    h("td", {}, h("span", { class: `badge ${c.status}` }, c.status)),
    h("td", { class: "num" }, fmt.price(c.cpmBid)),
    h("td", { class: "num" }, fmt.money(c.dailyBudget)),
    h("td", { class: "num" }, c.lifetimeBudget === null ? "none" : fmt.money(c.lifetimeBudget)),
    h("td", { class: "num" }, s ? fmt.money(s.spentToday) : pending),
    h("td", { class: "num", title: s && s.clipped ? "the last 366 days" : undefined }, s ? fmt.money(s.spentLifetime) : pending),
    h("td", { class: "num" }, s ? pacing(s.pacing) : pending),
    h("td", { class: "num" }, s ? fmt.percent(s.ctr) : pending));
}

function pacing(share) {
  if (share === null) return "–";
  const pace = Math.round(dayElapsed() * 100);
  return h("span", {}, fmt.percent(share * 100), h("span", { class: "muted" }, ` (day ${pace} % gone)`));
}

async function stats(campaign) {
  const today = utcToday();
  let start = campaign.createdAt.slice(0, 10);
  const earliest = addDays(today, -(MAX_RANGE_DAYS - 1));
  const clipped = start < earliest;
  if (clipped) start = earliest;
  if (start > today) start = today;
  const report = await api.report(campaign.id, start, today);
  const todayRow = report.dailyMetrics.find((d) => d.date === today);
  const spentToday = todayRow ? todayRow.spendMicros / 1e6 : 0;
  return {
    spentToday,
    spentLifetime: report.summary.totalSpendMicros / 1e6,
    pacing: campaign.dailyBudget > 0 ? spentToday / campaign.dailyBudget : null,
    ctr: report.summary.ctr,
    clipped,
  };
}
