// The console's entry point: sign-in, hash routes (#/, #/campaigns/new, #/campaigns/<id>,
// #/campaigns/<id>/edit) and the nav. Hash routes keep every page under the one URL the
// function serves, and carry no secret: the token stays in sessionStorage.
import "./style.css";
import { api, session } from "./api.js";
import { h, mount } from "./dom.js";
import { useCurrency } from "./format.js";
import { campaignPage } from "./views/campaign.js";
import { campaignForm } from "./views/form.js";
import { campaignList } from "./views/list.js";
import { reportsPage } from "./views/reports.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;
let caller = null; // the signed-in key (GET /me), asked once per sign-in

// Who the key is, before any page: its advertiser's currency formats every amount.
async function whoAmI() {
  if (caller) return;
  try {
    caller = await api.me();
  } catch {
    caller = session.token ? {} : null; // refused: signed out already (401)
  }
  useCurrency(caller.advertiser ? caller.advertiser.currency : null);
}

const ROUTES = [
  [/^#?\/?$/, () => campaignList(main), "Campaigns"],
  [/^#\/campaigns\/new$/, () => campaignForm(main, null), "New campaign"],
  [/^#\/campaigns\/([0-9a-fA-F-]{36})\/edit$/, (id) => campaignForm(main, id), "Edit campaign"],
  [/^#\/campaigns\/([0-9a-fA-F-]{36})$/, (id) => campaignPage(main, id), "Campaign"],
  [/^#\/reports$/, () => reportsPage(main), "Reports"],
];
const titled = (page) => { document.title = `${page} · Ad console`; };

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  if (!session.token) {
    nav.hidden = true;
    signIn();
    return;
  }
  nav.hidden = false;
  if (!caller) {
    whoAmI().then(() => { if (session.token) route(); });
    return;
  }
  for (const [pattern, view, title] of ROUTES) {
    const match = pattern.exec(location.hash);
    if (match) {
      titled(title);
      cleanup = view(...match.slice(1)) || null;
      main.focus({ preventScroll: true });
      return;
    }
  }
  titled("Not found");
  mount(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the campaigns")));
}

function signIn(reason = "") {
  titled("Sign in");
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const form = h(
    "form",
    {
      class: "card sign-in",
      onsubmit: (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        session.signIn(token);
        input.value = "";
        route();
      },
    },
    h("h1", {}, "Sign in"),
    reason ? h("p", { class: "alert", role: "alert" }, reason) : null,
    h("label", { for: "token" }, "API key"),
    h("p", { class: "hint", id: "token-hint" }, "Your API key (adk_…) or the campaigns-admin-token secret. It is kept in this tab only."),
    input,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  input.setAttribute("aria-describedby", "token-hint");
  mount(main, form);
  input.focus();
}

window.addEventListener("console:unauthorized", () => {
  session.signOut();
  caller = null;
  if (cleanup) cleanup();
  cleanup = null;
  nav.hidden = true;
  signIn("The key was refused (unknown or revoked). Sign in again.");
});
document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  caller = null;
  location.hash = "#/";
  route();
});
window.addEventListener("hashchange", route);
route();
