// Create or edit a campaign with its targeting rules and ads. The API validates; its 400
// names each bad field ("cpmBid: …", "ads.0.imageUrl: …"), and each message is shown next to
// the control it concerns (aria-invalid, aria-describedby), the rest above the form.
import { api } from "../api.js";
import { field, h, mount, nextId } from "../dom.js";

const RULE_TYPES = ["country", "device_type", "interest", "age_range", "placement"];
// What the API answers about a campaign but does not take back (its PUT refuses unknown
// fields). Everything else the campaign had goes back as it was, shown in the form or not.
const READ_ONLY = new Set(["id", "status", "spentToday", "expectedSpendNow", "createdAt", "updatedAt"]);

const PACINGS = [["asap", "As soon as possible"], ["even", "Even"], ["frontloaded", "Front-loaded"]];
const CAP_WINDOWS = [[3600, "per hour"], [86_400, "per day"], [604_800, "per week"]];
const TIME_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
  "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Singapore", "Australia/Sydney"];

export function campaignForm(main, id) {
  let alive = true;
  const controls = {};
  let loaded = {}; // the campaign as read (edit): the base every save starts from
  const rules = [];
  const ads = [];
  const summary = h("div", { class: "alert", role: "alert", id: "form-errors", tabindex: "-1", hidden: true });
  const ruleList = h("div", { class: "rows", id: "rules" });
  const adList = h("div", { class: "rows", id: "ads" });
  const submit = h("button", { type: "submit", class: "primary", id: "save" }, id ? "Save changes" : "Create campaign");

  function input(name, label, attrs = {}, hint) {
    const control = h("input", { id: `campaign-${name}`, name, spellcheck: "false", ...attrs });
    controls[name] = control;
    return field(label, control, { hint, name });
  }

  // Delivery: pacing, the campaign's own day (time zone) and a frequency cap (empty: none).
  const pacing = h("select", { id: "campaign-pacing", name: "pacing" },
    PACINGS.map(([value, label]) => h("option", { value, selected: value === "asap" }, label)));
  controls.pacing = pacing;
  const capWindow = h("select", { id: "campaign-capWindow", name: "capWindow" },
    CAP_WINDOWS.map(([value, label]) => h("option", { value: String(value), selected: value === 86_400 }, label)));
  const status = h("select", { id: "campaign-status", name: "status" }, h("option", { value: "active" }, "Active"), h("option", { value: "paused" }, "Paused"));
  controls.status = status;
  const tier = h("select", { id: "campaign-tier", name: "tier" }, ["standard", "sponsorship", "house"].map((t) => h("option", { value: t }, t)));
  controls.tier = tier;
  const goalPeriod = h("select", { id: "campaign-goalPeriod", name: "goalPeriod" }, ["day", "lifetime"].map((p) => h("option", { value: p }, p)));
  controls.goalPeriod = goalPeriod;
  const form = h("form", { novalidate: true, class: "card campaign-form", onsubmit: save },
    summary,
    input("name", "Name", { required: true, maxlength: 255 }),
    input("advertiserId", "Advertiser ID", { required: true, value: uuid() }, "A UUID; a new one is filled in for you."),
    id ? null : field("Status", status, { name: "status" }),
    h("div", { class: "grid" },
      input("cpmBid", "CPM bid", { required: true, inputmode: "decimal" }, "Per thousand impressions, up to 4 decimals."),
      input("dailyBudget", "Daily budget", { required: true, inputmode: "decimal" }),
      input("lifetimeBudget", "Lifetime budget", { inputmode: "decimal" }, "Optional; not below the daily budget.")),
    h("fieldset", { id: "delivery" }, h("legend", {}, "Delivery"), h("div", { class: "grid" },
      field("Pacing", pacing, { name: "pacing", hint: "As soon as possible, evenly over the day, or more early in the day." }),
      input("timeZone", "Time zone", { value: "UTC", list: "time-zones" }, "IANA, e.g. Europe/Paris: the day of the daily budget and pacing."),
      input("capImpressions", "Frequency cap", { inputmode: "numeric" }, "Impressions per user; empty: no cap."),
      field("Cap window", capWindow, { name: "capWindow" })),
      h("datalist", { id: "time-zones" }, TIME_ZONES.map((z) => h("option", { value: z })))),
    h("fieldset", {}, h("legend", {}, "Priority, dayparting and key-values"),
      field("Tier", tier, { name: "tier" }),
      h("div", { class: "grid" },
        input("goal", "Sponsorship goal (impressions)", { inputmode: "numeric" }, "Sponsorship only."),
        field("Goal period", goalPeriod, { name: "goalPeriod" })),
      input("exclusionLabels", "Exclusion labels", {}, "Comma-separated; campaigns sharing one never fill two slots of a page."),
      h("div", { class: "grid" },
        input("days", "Days", {}, "Comma-separated, e.g. mon,tue; empty: every day."),
        input("hours", "Hours", {}, "In its time zone, e.g. 9-16 or 9,10,11; empty: all day.")),
      input("keyValues", "Key-values", {}, "Any of, e.g. section=sports|news; lang=fr"),
      input("excludedKeyValues", "Excluded key-values", {}, "None of, e.g. section=politics")),
    h("fieldset", {}, h("legend", {}, "Targeting rules"), h("p", { class: "hint" }, "No rules: every request is eligible."), ruleList,
      h("button", { type: "button", id: "add-rule", onclick: () => addRule() }, "Add a rule")),
    h("fieldset", {}, h("legend", {}, "Ads"), adList,
      h("button", { type: "button", id: "add-ad", onclick: () => addAd() }, "Add an ad")),
    h("div", { class: "actions" }, submit, h("a", { class: "button", href: id ? `#/campaigns/${id}` : "#/" }, "Cancel")));

  mount(main, h("p", {}, h("a", { href: id ? `#/campaigns/${id}` : "#/" }, "← Back")), h("h1", {}, id ? "Edit campaign" : "New campaign"), form);

  function addRule(rule = { ruleType: "country", ruleValue: "" }) {
    const type = h("select", { id: nextId("rule-type") }, RULE_TYPES.map((t) => h("option", { value: t, selected: t === rule.ruleType }, t)));
    const value = h("input", { id: nextId("rule-value"), value: rule.ruleValue, spellcheck: "false" });
    const entry = { type, value };
    const el = h("div", { class: "row" }, field("Type", type), field("Value", value),
      h("button", { type: "button", class: "link", onclick: () => { rules.splice(rules.indexOf(entry), 1); el.remove(); } }, "Remove rule"));
    entry.el = el;
    rules.push(entry);
    ruleList.append(el);
  }

  function addAd(ad = { title: "", imageUrl: "", redirectUrl: "" }) {
    const title = h("input", { id: nextId("ad-title"), value: ad.title, maxlength: 255 });
    const imageUrl = h("input", { id: nextId("ad-image"), value: ad.imageUrl, type: "url", spellcheck: "false" });
    const redirectUrl = h("input", { id: nextId("ad-redirect"), value: ad.redirectUrl, type: "url", spellcheck: "false" });
    const entry = { id: ad.id, controls: { title, imageUrl, redirectUrl } };
    const el = h("div", { class: "row" }, field("Ad title", title), field("Image URL", imageUrl), field("Landing page URL", redirectUrl),
      h("button", { type: "button", class: "link", onclick: () => { ads.splice(ads.indexOf(entry), 1); el.remove(); } }, "Remove ad"));
    entry.el = el;
    ads.push(entry);
    adList.append(el);
  }

  // An ad's size, which the form does not show, kept as it was read (an edit loses nothing).
  function adSize(adId) {
    const before = (loaded.ads || []).find((ad) => ad.id === adId);
    return before && before.width ? { width: before.width, height: before.height } : {};
  }

  function body() {
    const kept = Object.fromEntries(Object.entries(loaded).filter(([key]) => !READ_ONLY.has(key)));
    const data = {
      ...kept,
      name: controls.name.value.trim(),
      advertiserId: controls.advertiserId.value.trim(),
      cpmBid: number(controls.cpmBid.value),
      dailyBudget: number(controls.dailyBudget.value),
      targetingRules: rules.map((r) => ({ ruleType: r.type.value, ruleValue: r.value.value.trim() })),
      ads: ads.map((a) => ({ ...(a.id ? { id: a.id, ...adSize(a.id) } : {}), title: a.controls.title.value.trim(), imageUrl: a.controls.imageUrl.value.trim(), redirectUrl: a.controls.redirectUrl.value.trim() })),
    };
    data.pacing = pacing.value;
    data.timeZone = controls.timeZone.value.trim();
    const cap = controls.capImpressions.value.trim();
    data.frequencyCap = cap === "" ? null : { impressions: number(cap), windowSeconds: Number(capWindow.value) };
    const lifetime = controls.lifetimeBudget.value.trim();
    data.lifetimeBudget = lifetime === "" ? null : number(lifetime);
    if (!id) data.status = status.value;
    data.tier = tier.value;
    data.goal = tier.value === "sponsorship" ? { impressions: number(controls.goal.value), period: goalPeriod.value } : null;
    data.exclusionLabels = list(controls.exclusionLabels.value, ",");
    const days = list(controls.days.value, ","), hours = hourList(controls.hours.value);
    data.daypart = days.length || hours.length ? { days: days.length ? days : ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], hours: hours.length ? hours : [...Array(24).keys()] } : null;
    data.keyValues = keyValues(controls.keyValues.value);
    data.excludedKeyValues = keyValues(controls.excludedKeyValues.value);
    return data;
  }

  // The control a field path of the API's message names, if the form has one.
  function controlFor(path) {
    const [head, index, leaf] = path.split(".");
    if (head === "targetingRules" && rules[index]) return leaf === "ruleType" ? rules[index].type : rules[index].value;
    if (head === "ads" && ads[index]) return ads[index].controls[leaf] || ads[index].controls.title;
    if (head === "frequencyCap") return index === "windowSeconds" ? capWindow : controls.capImpressions;
    return controls[head] || null;
  }

  function clearErrors() {
    summary.hidden = true;
    summary.replaceChildren();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  }

  function showErrors(error) {
    const problems = error.problems.length ? error.problems : [{ path: "", message: error.message }];
    const elsewhere = [];
    let first = null;
    for (const { path, message } of problems) {
      const control = path ? controlFor(path) : null;
      if (!control) { elsewhere.push(path ? `${path}: ${message}` : message); continue; }
      control.setAttribute("aria-invalid", "true");
      const slot = document.getElementById(`${control.id}-error`);
      slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
      first = first || control;
    }
    const lines = elsewhere.length ? elsewhere : [`${problems.length} field(s) need attention; see the messages next to them.`];
    mount(summary, h("strong", {}, "The campaign was not saved."), h("ul", {}, lines.map((l) => h("li", {}, l))));
    summary.hidden = false;
    (first || summary).focus?.();
  }

  async function save(event) {
    event.preventDefault();
    clearErrors();
    submit.disabled = true;
    try {
      const saved = id ? await api.replace(id, body()) : await api.create(body());
      if (alive) location.hash = `#/campaigns/${saved.id}`;
    } catch (error) {
      if (alive) showErrors(error);
    } finally {
      submit.disabled = false;
    }
  }

  if (id) {
    api.campaign(id).then((c) => {
      if (!alive) return;
      loaded = c;
      for (const key of ["name", "advertiserId", "cpmBid", "dailyBudget"]) controls[key].value = String(c[key]);
      controls.lifetimeBudget.value = c.lifetimeBudget === null ? "" : String(c.lifetimeBudget);
      pacing.value = c.pacing;
      controls.timeZone.value = c.timeZone;
      if (c.frequencyCap) {
        const seconds = String(c.frequencyCap.windowSeconds);
        if (![...capWindow.options].some((o) => o.value === seconds)) capWindow.append(h("option", { value: seconds }, `per ${seconds} seconds`));
        capWindow.value = seconds;
        controls.capImpressions.value = String(c.frequencyCap.impressions);
      }
      tier.value = c.tier || "standard";
      controls.goal.value = c.goal ? String(c.goal.impressions) : "";
      goalPeriod.value = c.goal ? c.goal.period : "day";
      controls.exclusionLabels.value = (c.exclusionLabels || []).join(", ");
      controls.days.value = c.daypart ? c.daypart.days.join(",") : "";
      controls.hours.value = c.daypart ? c.daypart.hours.join(",") : "";
      controls.keyValues.value = keyValuesText(c.keyValues);
      controls.excludedKeyValues.value = keyValuesText(c.excludedKeyValues);
      c.targetingRules.forEach(addRule);
      c.ads.forEach(addAd);
    }).catch(showErrors);
  } else {
    addAd();
    // An advertiser's key makes campaigns of its own advertiser only: fill it in, fixed.
    api.me().then((me) => {
      if (!alive || !me.advertiserId) return;
      controls.advertiserId.value = me.advertiserId;
      controls.advertiserId.readOnly = true;
    }).catch(() => {});
  }
  return () => { alive = false; };
}

// A decimal as a JSON number when it is one; anything else goes as typed, so the API says why.
function number(text) {
  const t = text.trim();
  if (t === "") return null;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

function list(text, separator) {
  return text.split(separator).map((v) => v.trim()).filter((v) => v !== "");
}

// "9-16" or "9,10,11" -> [9, ..., 16]; anything else goes as typed, so the API says why.
function hourList(text) {
  return list(text, ",").flatMap((part) => {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (!range) return [number(part)];
    return Array.from({ length: Math.max(0, range[2] - range[1] + 1) }, (_, k) => Number(range[1]) + k);
  });
}

// "section=sports|news; lang=fr" -> {section: ["sports", "news"], lang: ["fr"]}
function keyValues(text) {
  return Object.fromEntries(list(text, ";").map((pair) => {
    const [key, values = ""] = pair.split("=");
    return [key.trim(), list(values, "|")];
  }));
}

function keyValuesText(kv) {
  return Object.entries(kv || {}).map(([key, values]) => `${key}=${values.join("|")}`).join("; ");
}

// A random UUID (v4) without crypto.randomUUID, which plain-HTTP pages other than localhost lack.
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
