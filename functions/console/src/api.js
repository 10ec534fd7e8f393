// The campaigns and analytics APIs, through the same gateway that serves this page.
// The API key (or the admin token) lives in sessionStorage (this tab only) and travels in the Authorization
// header; it is never put in a URL and never logged.

const TOKEN_KEY = "ads-console-token";
const CAMPAIGNS = "/function/campaigns";
const ANALYTICS = "/function/analytics";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An API answer other than 2xx: the product's {error, message, requestId} body. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || "HTTP_ERROR";
    this.requestId = (body && body.requestId) || "";
  }

  /** "invalid CampaignRequest: cpmBid: must be …; ads.0.title: …" -> [{path, message}]. */
  get problems() {
    if (this.status !== 400) return [];
    const text = this.message.replace(/^invalid \w+: /, "");
    return text.split("; ").map((part) => {
      const match = /^([A-Za-z0-9_.]+): (.*)$/.exec(part);
      if (!match) return { path: "", message: part };
      let [, path, message] = match;
      const nested = /^([A-Za-z0-9_.]+): (.*)$/.exec(message);
      if (path === "body" && nested) [, path, message] = nested; // model-level checks
      return { path, message };
    });
  }
}

async function call(method, url, body, { raw = false } = {}) {
  const headers = { Authorization: `Bearer ${session.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  const text = await response.text();
  if (raw && response.ok) return text;
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401) { // a 403 is the key's role: shown where it happened
      window.dispatchEvent(new CustomEvent("console:unauthorized", { detail: error }));
    }
    throw error;
  }
  return data;
}

export const api = {
  /** A page of the list, sorted (name, createdAt, spend of startDate..endDate) and searched (q) by the API. */
  listCampaigns({ limit = 50, ...options } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    for (const name of ["status", "advertiserId", "q", "sort", "order", "startDate", "endDate", "cursor"]) {
      if (options[name]) query.set(name, options[name]);
    }
    return call("GET", `${CAMPAIGNS}/?${query}`);
  },
  /** GET /report with `params` (URLSearchParams): JSON, or the API's own CSV text. */
  hourlyReport: (params) => call("GET", `${ANALYTICS}/report?${params}`),
  hourlyReportCsv: (params) => call("GET", `${ANALYTICS}/report?${params}&format=csv`, undefined, { raw: true }),
  /** Impressions, clicks and spend of many campaigns over UTC days, in one request. */
  reportByCampaign(ids, startDate, endDate) {
    const query = new URLSearchParams({ startDate, endDate, granularity: "total", groupBy: "campaign", timeZone: "UTC", campaignId: ids.join(",") });
    return call("GET", `${ANALYTICS}/report?${query}`);
  },
  me: () => call("GET", `${CAMPAIGNS}/me`),
  campaign: (id) => call("GET", `${CAMPAIGNS}/${encodeURIComponent(id)}`),
  create: (body) => call("POST", `${CAMPAIGNS}/`, body),
  replace: (id, body) => call("PUT", `${CAMPAIGNS}/${encodeURIComponent(id)}`, body),
  pause: (id) => call("POST", `${CAMPAIGNS}/${encodeURIComponent(id)}/pause`),
  resume: (id) => call("POST", `${CAMPAIGNS}/${encodeURIComponent(id)}/resume`),
  /** GET /serve with the explainer (`params`: URLSearchParams); null when serve answers 204. */
  testRequest: (params) => call("GET", `/function/serve?${params}`),
  report(id, startDate, endDate) {
    const query = new URLSearchParams({ startDate, endDate });
    return call("GET", `${ANALYTICS}/campaign/${encodeURIComponent(id)}?${query}`);
  },
};
