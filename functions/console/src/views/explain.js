// "Test a request" on a campaign's page: sends one ad request through serve with the decision
// explainer (explain=1; only the admin token gets an answer with it) and shows the winner, its
// price, and why this campaign and each other candidate did not win. A test request is a real
// one: a winner is charged and counted as any other.
import { api } from "../api.js";
import { field, h, mount } from "../dom.js";
import { fmt } from "../format.js";

const REASONS = {
  won: "won",
  targeting: "a targeting rule or key-value does not match",
  daypart: "outside its days and hours",
  budget: "budget spent",
  pacing: "ahead of its pacing curve",
  "frequency-cap": "the user's frequency cap is reached",
  floor: "its bid is below the placement's floor",
  duplicate: "a duplicate or exclusion label of another winner",
  "lower-bid": "a higher bid won",
};

export function testRequestCard(campaign) {
  const placementRule = campaign.targetingRules.find((r) => r.ruleType === "placement");
  const user = h("input", { id: "test-userId", value: "console-test", required: true });
  const placement = h("input", { id: "test-placementId", value: placementRule ? placementRule.ruleValue : "", required: true });
  const country = h("input", { id: "test-countryCode", placeholder: "e.g. US" });
  const device = h("select", { id: "test-deviceType" }, ["", "desktop", "mobile", "tablet"].map((d) => h("option", { value: d }, d || "any")));
  const keyValues = h("input", { id: "test-keyValues", placeholder: "section:sports|news,lang:fr" });
  const status = h("p", { id: "test-result", role: "status" });
  const result = h("div", { id: "test-explain" });

  async function run(event) {
    event.preventDefault();
    const params = new URLSearchParams({ userId: user.value, placementId: placement.value, explain: "1" });
    if (country.value) params.set("countryCode", country.value);
    if (device.value) params.set("deviceType", device.value);
    if (keyValues.value) params.set("keyValues", keyValues.value);
    mount(status, "Asking…");
    result.replaceChildren();
    try {
      show(await api.testRequest(params));
    } catch (error) {
      mount(status, error.message);
    }
  }

  function show(answer) {
    const explanation = answer && answer.explain;
    if (!explanation) {
      mount(status, answer ? `Served ${answer.campaignId}; the explainer needs the admin token.` : "No ad (no explanation: the explainer needs the admin token).");
      return;
    }
    const mine = explanation.candidates.find((row) => row.campaignId === campaign.id);
    const winner = explanation.winner;
    mount(status,
      h("strong", { id: "test-this-campaign" }, `This campaign: ${mine ? REASONS[mine.reason] || mine.reason : "not a candidate on this placement"}`),
      h("br"),
      h("span", { id: "test-winner" }, winner ? `Winner ${winner.campaignId}, charged ${fmt.money(winner.priceMicros / 1e6)} for the impression` : "No winner"));
    const rows = explanation.candidates.map((row) => h("tr", { class: row.campaignId === campaign.id ? "this" : null },
      h("th", { scope: "row" }, row.campaignId), h("td", {}, row.tier), h("td", { dataset: { reason: row.reason } }, REASONS[row.reason] || row.reason)));
    mount(result, h("table", { id: "test-candidates" },
      h("caption", {}, `Candidates on ${placement.value}${explanation.truncated ? ` (${explanation.truncated} more not listed)` : ""}`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Campaign"), h("th", { scope: "col" }, "Tier"), h("th", { scope: "col" }, "First reason it did not win"))),
      h("tbody", {}, rows)));
  }

  return h("section", { class: "card", "aria-labelledby": "test-title" },
    h("h2", { id: "test-title" }, "Test a request"),
    h("p", { class: "hint" }, "Asks serve for an ad as a page would, with the decision explainer. A real request: a winner is charged and counted."),
    h("form", { class: "filters", id: "test-form", onsubmit: run },
      field("User id", user), field("Placement", placement), field("Country", country),
      field("Device", device), field("Key-values", keyValues),
      h("button", { type: "submit", class: "primary", id: "test-send" }, "Test a request")),
    status, h("div", { class: "table-wrap" }, result));
}
