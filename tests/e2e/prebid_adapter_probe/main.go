// Command openfaasads-probe runs the openfaasads Prebid Server adapter against a live bidder, as
// Prebid Server would: MakeRequests on each BidRequest (imps carrying imp.ext.bidder params),
// each request sent over HTTP, and MakeBids on each answer. It is built inside a Prebid Server
// tree with the adapter installed (tests/e2e/test_prebid_server_adapter_e2e.py copies it there).
//
// stdin:  {"endpoint": "http://.../function/openrtb", "requests": [BidRequest, ...]}
// stdout: one result per BidRequest: the requests the adapter made, the bidder's answers, the
// typed bids MakeBids returned and every error of either step.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/prebid/prebid-server/v4/adapters"
	"github.com/prebid/prebid-server/v4/adapters/openfaasads"
	"github.com/prebid/prebid-server/v4/config"
	"github.com/prebid/prebid-server/v4/openrtb_ext"
)

type input struct {
	Endpoint string                `json:"endpoint"`
	Requests []openrtb2.BidRequest `json:"requests"`
}

type sent struct {
	URI     string          `json:"uri"`
	Headers http.Header     `json:"headers"`
	Body    json.RawMessage `json:"body"`
	Status  int             `json:"status"`
	Answer  string          `json:"answer"`
}

type typedBid struct {
	Bid  *openrtb2.Bid       `json:"bid"`
	Type openrtb_ext.BidType `json:"type"`
}

type result struct {
	Calls              []sent     `json:"calls"`
	Bids               []typedBid `json:"bids"`
	Currencies         []string   `json:"currencies"`
	MakeRequestsErrors []string   `json:"makeRequestsErrors"`
	MakeBidsErrors     []string   `json:"makeBidsErrors"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("stdin: %v", err)
	}
	bidder, err := openfaasads.Builder(openrtb_ext.BidderOpenfaasads, config.Adapter{Endpoint: in.Endpoint}, config.Server{})
	if err != nil {
		fail("builder: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	results := make([]result, 0, len(in.Requests))
	for i := range in.Requests {
		results = append(results, run(bidder, client, &in.Requests[i]))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fail("stdout: %v", err)
	}
}

func run(bidder adapters.Bidder, client *http.Client, request *openrtb2.BidRequest) result {
	out := result{Calls: []sent{}, Bids: []typedBid{}, Currencies: []string{}, MakeRequestsErrors: []string{}, MakeBidsErrors: []string{}}
	requests, errs := bidder.MakeRequests(request, &adapters.ExtraRequestInfo{})
	out.MakeRequestsErrors = messages(errs)
	for _, data := range requests {
		response, call := send(client, data)
		out.Calls = append(out.Calls, call)
		if response == nil {
			continue
		}
		bids, errs := bidder.MakeBids(request, data, response)
		out.MakeBidsErrors = append(out.MakeBidsErrors, messages(errs)...)
		if bids != nil {
			out.Currencies = append(out.Currencies, bids.Currency)
			for _, bid := range bids.Bids {
				out.Bids = append(out.Bids, typedBid{Bid: bid.Bid, Type: bid.BidType})
			}
		}
	}
	return out
}

// send is what Prebid Server's bidder client does with a RequestData.
func send(client *http.Client, data *adapters.RequestData) (*adapters.ResponseData, sent) {
	call := sent{URI: data.Uri, Headers: data.Headers, Body: data.Body}
	httpRequest, err := http.NewRequest(data.Method, data.Uri, bytes.NewReader(data.Body))
	if err != nil {
		fail("request: %v", err)
	}
	httpRequest.Header = data.Headers.Clone()
	response, err := client.Do(httpRequest)
	if err != nil {
		call.Answer = err.Error()
		return nil, call
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		fail("reading the answer: %v", err)
	}
	call.Status, call.Answer = response.StatusCode, string(body)
	return &adapters.ResponseData{StatusCode: response.StatusCode, Body: body, Headers: response.Header}, call
}

func messages(errs []error) []string {
	out := make([]string, 0, len(errs))
	for _, err := range errs {
		out = append(out, err.Error())
	}
	return out
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "openfaasads-probe: "+format+"\n", args...)
	os.Exit(2)
}
