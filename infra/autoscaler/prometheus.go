package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Queries, one per scaling type, each answering for every function at once
// (label function_name, from the provider's service discovery). The
// replicas' of-watchdog metrics (kind="watchdog") give requests and
// in-flight counts; the function process's own metrics (kind="function")
// give its CPU.
func loadQueries(window time.Duration) map[string]string {
	w := promDuration(window)
	// The function job is scraped every 5 s: a rate needs two samples.
	cpu := promDuration(max(window, 15*time.Second))
	const inFlight = `http_requests_in_flight{kind="watchdog"}`
	return map[string]string{
		TypeRPS: `sum by (function_name) (rate(http_requests_total{kind="watchdog"}[` + w + `]))`,
		// `and` the instant vector: only replicas that are still scraped count.
		// A replica just scaled away keeps its samples in the window, and
		// without this its old in-flight average is added to the survivors'
		// (one caller read as 2.07 in flight right after a scale-in and
		// scaled the function out again).
		TypeCapacity: `sum by (function_name) (avg_over_time(` + inFlight + `[` + w + `]) and ` + inFlight + `)`,
		TypeCPU:      `sum by (function_name) (rate(process_cpu_seconds_total{kind="function"}[` + cpu + `])) * 1000`,
	}
}

func promDuration(d time.Duration) string {
	return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s"
}

// promClient runs instant queries against the Prometheus HTTP API.
type promClient struct {
	base string
	http *http.Client
}

// byFunction runs an instant query whose result is a vector labelled by
// function_name; a function absent from the answer has no series (no
// traffic) and reads as 0.
func (c promClient) byFunction(ctx context.Context, query string) (map[string]float64, error) {
	u := c.base + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("prometheus: HTTP %d, unreadable answer: %w", resp.StatusCode, err)
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s (HTTP %d) for %s", answer.Error, resp.StatusCode, query)
	}
	out := map[string]float64{}
	for _, r := range answer.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			continue
		}
		out[r.Metric["function_name"]] = v
	}
	return out, nil
}
