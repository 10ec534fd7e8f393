// Command openrtb_client is an OpenRTB 2.6 exchange in miniature for our end-to-end tests: it
// builds BidRequests with the Prebid project's openrtb types (github.com/prebid/openrtb/v20,
// written by people who are not us), sends them to the openrtb function through the gateway,
// parses every answer into openrtb2.BidResponse and checks each field it reads; it then fires
// each bid's win and billing notices, each twice, as exchanges that retry do.
//
// Input (stdin, JSON): {"endpoint": URL, "cases": [Case, ...]}. Output (stdout, JSON): one
// Result per case. Exit status 1 with every problem on stderr if any check failed.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/openrtb2"
)

const auctionPriceMacro = "${AUCTION_PRICE}"

// Case is one BidRequest and what the test expects of its answer.
type Case struct {
	Name       string   `json:"name"`
	TagID      string   `json:"tagid"`
	SiteID     string   `json:"siteId"`
	AppID      string   `json:"appId"`
	Country    string   `json:"country"`    // ISO 3166-1 alpha-3, as OpenRTB sends it
	DeviceType int      `json:"devicetype"` // AdCOM DeviceType
	UserID     string   `json:"userId"`
	Yob        int64    `json:"yob"`
	BidFloor   float64  `json:"bidfloor"`
	FloorCur   string   `json:"bidfloorcur"` // default USD
	Formats    [][2]int `json:"formats"`
	TMax       int64    `json:"tmax"`
	Imps       int      `json:"imps"`   // how many impressions (default 1), each with the tagid
	Expect     string   `json:"expect"` // "bid" or "nobid"
	Campaign   string   `json:"campaignId"`
	Notices    bool     `json:"notices"` // fire nurl and burl twice each, and a forged one
	Clearing   float64  `json:"clearingPrice"`
}

// Result is what the test reads back: the bids as parsed, and the notices' answers.
type Result struct {
	Name    string         `json:"name"`
	Status  int            `json:"status"`
	Bids    []openrtb2.Bid `json:"bids"`
	Notices []NoticeResult `json:"notices"`
	Seconds float64        `json:"seconds"`
}

// NoticeResult is one notice fired and what came back.
type NoticeResult struct {
	Kind     string `json:"kind"`
	BidID    string `json:"bidId"`
	Status   int    `json:"status"`
	Recorded string `json:"recorded"`
}

type checker struct{ problems []string }

func (c *checker) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func buildRequest(tc Case, n int) *openrtb2.BidRequest {
	imps, floorCur := tc.Imps, tc.FloorCur
	if imps == 0 {
		imps = 1
	}
	if floorCur == "" {
		floorCur = "USD"
	}
	req := &openrtb2.BidRequest{ID: fmt.Sprintf("%s-%d-%d", tc.Name, n, time.Now().UnixNano()), TMax: tc.TMax, Cur: []string{"USD"}, AT: 1}
	for i := 0; i < imps; i++ {
		banner := &openrtb2.Banner{}
		for _, f := range tc.Formats {
			banner.Format = append(banner.Format, openrtb2.Format{W: int64(f[0]), H: int64(f[1])})
		}
		req.Imp = append(req.Imp, openrtb2.Imp{
			ID: strconv.Itoa(i + 1), Banner: banner, TagID: tc.TagID,
			BidFloor: tc.BidFloor, BidFloorCur: floorCur,
		})
	}
	if tc.AppID != "" {
		req.App = &openrtb2.App{ID: tc.AppID, Bundle: "com.example.app"}
	} else {
		req.Site = &openrtb2.Site{ID: tc.SiteID, Domain: "news.example.com", Page: "https://news.example.com/"}
	}
	req.Device = &openrtb2.Device{DeviceType: adcom1.DeviceType(tc.DeviceType), UA: "Mozilla/5.0", IP: "192.0.2.1"}
	if tc.Country != "" {
		req.Device.Geo = &openrtb2.Geo{Country: tc.Country}
	}
	req.User = &openrtb2.User{ID: tc.UserID, Yob: tc.Yob}
	return req
}

func post(endpoint string, req *openrtb2.BidRequest) (int, []byte, http.Header, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, nil, nil, err
	}
	httpReq, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("x-openrtb-version", "2.6")
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header, err
}

func checkNoticeURL(c *checker, name, kind, raw string) {
	if !strings.Contains(raw, auctionPriceMacro) {
		c.fail("%s: %s %q has no %s macro", name, kind, raw, auctionPriceMacro)
	}
	u, err := url.Parse(strings.ReplaceAll(raw, auctionPriceMacro, "1"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.fail("%s: %s %q is not an absolute http(s) URL", name, kind, raw)
		return
	}
	if t := u.Query().Get("t"); !strings.HasPrefix(t, "n1.") || strings.Count(t, ".") != 2 {
		c.fail("%s: %s %q carries no signed token", name, kind, raw)
	}
}

func checkBidResponse(c *checker, tc Case, req *openrtb2.BidRequest, data []byte) []openrtb2.Bid {
	var resp openrtb2.BidResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		c.fail("%s: the answer is not an OpenRTB BidResponse: %v: %s", tc.Name, err, data)
		return nil
	}
	if resp.ID != req.ID {
		c.fail("%s: BidResponse.id %q is not the BidRequest's %q", tc.Name, resp.ID, req.ID)
	}
	if resp.Cur != "" && resp.Cur != "USD" {
		c.fail("%s: currency %q, we asked for USD", tc.Name, resp.Cur)
	}
	if len(resp.SeatBid) == 0 {
		c.fail("%s: a 200 without seatbid", tc.Name)
	}
	imps := map[string]openrtb2.Imp{}
	for _, imp := range req.Imp {
		imps[imp.ID] = imp
	}
	var bids []openrtb2.Bid
	for _, seat := range resp.SeatBid {
		if len(seat.Bid) == 0 {
			c.fail("%s: a seatbid without bids", tc.Name)
		}
		for _, bid := range seat.Bid {
			imp, ok := imps[bid.ImpID]
			if !ok {
				c.fail("%s: bid.impid %q matches no imp of the request", tc.Name, bid.ImpID)
			}
			if bid.ID == "" {
				c.fail("%s: bid without id", tc.Name)
			}
			if bid.Price <= 0 || bid.Price < imp.BidFloor {
				c.fail("%s: bid.price %v is below the floor %v", tc.Name, bid.Price, imp.BidFloor)
			}
			if bid.CrID == "" {
				c.fail("%s: bid without crid", tc.Name)
			}
			if len(bid.ADomain) == 0 || bid.ADomain[0] == "" {
				c.fail("%s: bid without adomain", tc.Name)
			}
			if bid.AdM == "" && bid.NURL == "" {
				c.fail("%s: bid with neither adm nor nurl", tc.Name)
			}
			checkNoticeURL(c, tc.Name, "nurl", bid.NURL)
			checkNoticeURL(c, tc.Name, "burl", bid.BURL)
			if imp.Banner != nil && len(imp.Banner.Format) > 0 {
				f := imp.Banner.Format[0]
				if bid.W != f.W || bid.H != f.H {
					c.fail("%s: bid size %dx%d, the imp's first format is %dx%d", tc.Name, bid.W, bid.H, f.W, f.H)
				}
			}
			if tc.Campaign != "" && bid.CID != tc.Campaign {
				c.fail("%s: campaign %q won, expected %q", tc.Name, bid.CID, tc.Campaign)
			}
			bids = append(bids, bid)
		}
	}
	return bids
}

func fire(raw string, price float64) (int, string, error) {
	target := strings.ReplaceAll(raw, auctionPriceMacro, strconv.FormatFloat(price, 'f', -1, 64))
	resp, err := http.Get(target)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Notice-Recorded"), nil
}

func fireNotices(c *checker, tc Case, bid openrtb2.Bid) []NoticeResult {
	price := tc.Clearing
	if price == 0 || price > bid.Price {
		price = bid.Price
	}
	var out []NoticeResult
	for _, notice := range []struct{ kind, url string }{{"win", bid.NURL}, {"bill", bid.BURL}} {
		for attempt := 0; attempt < 2; attempt++ {
			status, recorded, err := fire(notice.url, price)
			if err != nil {
				c.fail("%s: %s notice: %v", tc.Name, notice.kind, err)
				continue
			}
			want := map[int]string{0: "true", 1: "false"}[attempt]
			if status != http.StatusNoContent || recorded != want {
				c.fail("%s: %s notice #%d: status %d recorded %q, want 204 %q", tc.Name, notice.kind, attempt+1, status, recorded, want)
			}
			out = append(out, NoticeResult{notice.kind, bid.ID, status, recorded})
		}
		// A forged notice: the same URL with one character of the signature changed.
		forged := strings.Replace(notice.url, "t=n1.", "t=n1.A", 1)
		if status, _, err := fire(forged, price); err != nil || status != http.StatusBadRequest {
			c.fail("%s: a forged %s notice answered %d (%v), want 400", tc.Name, notice.kind, status, err)
		}
	}
	return out
}

func main() {
	var input struct {
		Endpoint string `json:"endpoint"`
		Cases    []Case `json:"cases"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		fmt.Fprintln(os.Stderr, "input:", err)
		os.Exit(2)
	}
	c := &checker{}
	var results []Result
	for n, tc := range input.Cases {
		req := buildRequest(tc, n)
		started := time.Now()
		status, data, header, err := post(input.Endpoint, req)
		elapsed := time.Since(started).Seconds()
		if err != nil {
			c.fail("%s: %v", tc.Name, err)
			continue
		}
		result := Result{Name: tc.Name, Status: status, Seconds: elapsed}
		switch {
		case tc.Expect == "nobid" && status != http.StatusNoContent:
			c.fail("%s: expected no bid (204), got %d: %s", tc.Name, status, data)
		case tc.Expect == "nobid" && len(data) != 0:
			c.fail("%s: a 204 with a body", tc.Name)
		case tc.Expect == "bid" && status != http.StatusOK:
			c.fail("%s: expected a bid (200), got %d: %s", tc.Name, status, data)
		case tc.Expect == "bid":
			if header.Get("Content-Type") != "application/json" {
				c.fail("%s: Content-Type %q", tc.Name, header.Get("Content-Type"))
			}
			result.Bids = checkBidResponse(c, tc, req, data)
			if tc.Notices {
				for _, bid := range result.Bids {
					result.Notices = append(result.Notices, fireNotices(c, tc, bid)...)
				}
			}
		}
		if tc.TMax > 0 && elapsed > float64(tc.TMax)/1000 {
			fmt.Fprintf(os.Stderr, "note: %s answered in %.3fs, tmax %dms\n", tc.Name, elapsed, tc.TMax)
		}
		results = append(results, result)
	}
	_ = json.NewEncoder(os.Stdout).Encode(results)
	if len(c.problems) > 0 {
		fmt.Fprintln(os.Stderr, strings.Join(c.problems, "\n"))
		os.Exit(1)
	}
}
