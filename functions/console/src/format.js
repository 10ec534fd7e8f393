// Numbers as advertisers read them, and the report as CSV.

const plain = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
let money = plain;
const precise = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 4 });
const count = new Intl.NumberFormat("en-US");

export const fmt = {
  money: (v) => (v === null || v === undefined ? "–" : money.format(v)),
  price: (v) => (v === null || v === undefined ? "–" : precise.format(v)),
  count: (v) => (v === null || v === undefined ? "–" : count.format(v)),
  percent: (v) => (v === null || v === undefined ? "–" : `${precise.format(v)} %`),
  /** A chart's x value (seconds at a day's 00:00 UTC) as that day, YYYY-MM-DD. */
  day: (ts) => (ts === null || ts === undefined ? "–" : new Date(ts * 1e3).toISOString().slice(0, 10)),
};

/** Money in the signed-in advertiser's currency ("€1,234.50"); plain numbers without one (an
 * admin key sees several advertisers). */
export function useCurrency(code) {
  money = code ? new Intl.NumberFormat("en-US", { style: "currency", currency: code }) : plain;
}

/** Today as a UTC day (YYYY-MM-DD): analytics' days are UTC days. */
export function utcToday() {
  return new Date().toISOString().slice(0, 10);
}

export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** The share of today's UTC day already gone, 0..1 (pacing compares spend against it). */
export function dayElapsed(now = new Date()) {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return (now.getTime() - midnight) / 86_400_000;
}

const CSV_COLUMNS = ["date", "impressions", "clicks", "ctr", "spend", "cpc", "cpm"];

/** The report as CSV: one line per day, then the totals. Values are numbers or dates only. */
export function reportCsv(report) {
  const cell = (v) => (v === null || v === undefined ? "" : String(v));
  const lines = [CSV_COLUMNS.join(",")];
  for (const day of report.dailyMetrics) {
    lines.push(CSV_COLUMNS.map((c) => cell(day[c])).join(","));
  }
  const s = report.summary;
  lines.push(["total", s.totalImpressions, s.totalClicks, s.ctr, s.totalSpend, s.cpc, s.cpm].map(cell).join(","));
  return lines.join("\r\n") + "\r\n";
}
