// Package openfaasads is the Prebid Server adapter for the ad server's OpenRTB 2.6 bidder (the
// `openrtb` function, reached at <gateway>/function/openrtb).
//
// MakeRequests sends every banner imp of the auction in one BidRequest (at most 20 imps, the
// bidder's limit, per request), with each imp's tagid set to its placementId param: the bidder
// runs one auction per imp inside one request, so one call costs one round trip and one tmax.
// MakeBids types each bid by its mtype (falling back to the imp's media type) and resolves the
// OpenRTB auction macros in nurl, burl and adm, because Prebid Server never substitutes them.
package openfaasads

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/prebid/prebid-server/v4/adapters"
	"github.com/prebid/prebid-server/v4/config"
	"github.com/prebid/prebid-server/v4/errortypes"
	"github.com/prebid/prebid-server/v4/openrtb_ext"
	"github.com/prebid/prebid-server/v4/util/jsonutil"
)

// maxImpsPerRequest is the bidder's own limit: a BidRequest with more imps is refused whole.
const maxImpsPerRequest = 20

// defaultCurrency is the bidder's currency when its BidResponse names none.
const defaultCurrency = "USD"

// ImpExt is imp.ext.bidder, as static/bidder-params/openfaasads.json validates it.
type ImpExt struct {
	PlacementID string `json:"placementId"`
}

// errorBody is the bidder's body for every 4xx and 5xx answer.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

type adapter struct {
	endpoint string
}

// Builder builds the adapter for the endpoint in Prebid Server's configuration
// (adapters.openfaasads.endpoint), e.g. https://ads.example.com/function/openrtb.
func Builder(_ openrtb_ext.BidderName, cfg config.Adapter, _ config.Server) (adapters.Bidder, error) {
	endpoint, err := url.Parse(cfg.Endpoint)
	if err != nil || endpoint.Host == "" || (endpoint.Scheme != "http" && endpoint.Scheme != "https") {
		return nil, fmt.Errorf("openfaasads: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	return &adapter{endpoint: cfg.Endpoint}, nil
}

// MakeRequests sends the banner imps, each with its placement as tagid; an imp without a
// banner gets no bid (the bidder serves banners only) and is reported, not sent.
func (a *adapter) MakeRequests(request *openrtb2.BidRequest, _ *adapters.ExtraRequestInfo) ([]*adapters.RequestData, []error) {
	var errs []error
	imps := make([]openrtb2.Imp, 0, len(request.Imp))
	for _, imp := range request.Imp {
		if imp.Banner == nil {
			errs = append(errs, &errortypes.BadInput{
				Message: fmt.Sprintf("imp %s: openfaasads bids on banner impressions only", imp.ID),
			})
			continue
		}
		placement, err := placementOf(&imp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		imp.TagID = placement
		imps = append(imps, imp)
	}

	var requests []*adapters.RequestData
	for start := 0; start < len(imps); start += maxImpsPerRequest {
		chunk := imps[start:min(start+maxImpsPerRequest, len(imps))]
		outgoing := *request
		outgoing.Imp = chunk
		body, err := jsonutil.Marshal(outgoing)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		requests = append(requests, &adapters.RequestData{
			Method:  http.MethodPost,
			Uri:     a.endpoint,
			Body:    body,
			Headers: requestHeaders(),
			ImpIDs:  openrtb_ext.GetImpIDs(chunk),
		})
	}
	return requests, errs
}

func placementOf(imp *openrtb2.Imp) (string, error) {
	var bidderExt adapters.ExtImpBidder
	var params ImpExt
	if err := jsonutil.Unmarshal(imp.Ext, &bidderExt); err != nil {
		return "", &errortypes.BadInput{Message: fmt.Sprintf("imp %s: imp.ext: %v", imp.ID, err)}
	}
	if err := jsonutil.Unmarshal(bidderExt.Bidder, &params); err != nil {
		return "", &errortypes.BadInput{Message: fmt.Sprintf("imp %s: imp.ext.bidder: %v", imp.ID, err)}
	}
	if params.PlacementID == "" {
		return "", &errortypes.BadInput{Message: fmt.Sprintf("imp %s: imp.ext.bidder.placementId is empty", imp.ID)}
	}
	return params.PlacementID, nil
}

func requestHeaders() http.Header {
	headers := http.Header{}
	headers.Set("Content-Type", "application/json;charset=utf-8")
	headers.Set("Accept", "application/json")
	headers.Set("X-Openrtb-Version", "2.6")
	return headers
}

// MakeBids: 204 is no bid; 400 is a request the bidder refused (bad input, with its message);
// any other answer but 200 is the bidder's failure.
func (a *adapter) MakeBids(request *openrtb2.BidRequest, _ *adapters.RequestData, response *adapters.ResponseData) (*adapters.BidderResponse, []error) {
	switch response.StatusCode {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
	case http.StatusBadRequest:
		return nil, []error{&errortypes.BadInput{Message: "openfaasads refused the request: " + describe(response)}}
	default:
		return nil, []error{&errortypes.BadServerResponse{Message: "openfaasads failed: " + describe(response)}}
	}

	var bidResponse openrtb2.BidResponse
	if err := jsonutil.Unmarshal(response.Body, &bidResponse); err != nil {
		return nil, []error{&errortypes.BadServerResponse{Message: fmt.Sprintf("openfaasads sent a BidResponse that does not parse: %v", err)}}
	}
	currency := bidResponse.Cur
	if currency == "" {
		currency = defaultCurrency
	}
	imps := make(map[string]*openrtb2.Imp, len(request.Imp))
	for i := range request.Imp {
		imps[request.Imp[i].ID] = &request.Imp[i]
	}

	var errs []error
	result := adapters.NewBidderResponseWithBidsCapacity(len(request.Imp))
	result.Currency = currency
	for _, seatBid := range bidResponse.SeatBid {
		for i := range seatBid.Bid {
			bid := &seatBid.Bid[i]
			markup, err := markupType(bid, imps[bid.ImpID])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			bid.MType = markup
			resolveMacros(bid, macroValues(request, &bidResponse, seatBid.Seat, bid, currency))
			result.Bids = append(result.Bids, &adapters.TypedBid{Bid: bid, BidType: bidTypes[markup]})
		}
	}
	return result, errs
}

// describe names the status and, where the body is the bidder's error body, its message.
func describe(response *adapters.ResponseData) string {
	var body errorBody
	if err := jsonutil.Unmarshal(response.Body, &body); err != nil || body.Message == "" {
		return fmt.Sprintf("status %d", response.StatusCode)
	}
	return fmt.Sprintf("status %d, %s: %s (requestId %s)", response.StatusCode, body.Error, body.Message, body.RequestID)
}

var bidTypes = map[openrtb2.MarkupType]openrtb_ext.BidType{
	openrtb2.MarkupBanner: openrtb_ext.BidTypeBanner,
	openrtb2.MarkupVideo:  openrtb_ext.BidTypeVideo,
	openrtb2.MarkupAudio:  openrtb_ext.BidTypeAudio,
	openrtb2.MarkupNative: openrtb_ext.BidTypeNative,
}

// markupType is the bid's mtype, or where the bid has none, the imp's media type (banner
// first: the one markup the bidder makes).
func markupType(bid *openrtb2.Bid, imp *openrtb2.Imp) (openrtb2.MarkupType, error) {
	if imp == nil {
		return 0, &errortypes.BadServerResponse{Message: fmt.Sprintf("bid %s is for imp %s, which the request does not have", bid.ID, bid.ImpID)}
	}
	if bid.MType != 0 {
		if _, known := bidTypes[bid.MType]; !known {
			return 0, &errortypes.BadServerResponse{Message: fmt.Sprintf("bid %s has an unknown mtype %d", bid.ID, bid.MType)}
		}
		return bid.MType, nil
	}
	switch {
	case imp.Banner != nil:
		return openrtb2.MarkupBanner, nil
	case imp.Video != nil:
		return openrtb2.MarkupVideo, nil
	case imp.Audio != nil:
		return openrtb2.MarkupAudio, nil
	case imp.Native != nil:
		return openrtb2.MarkupNative, nil
	}
	return 0, &errortypes.BadServerResponse{Message: fmt.Sprintf("bid %s has no mtype and imp %s no media type", bid.ID, bid.ImpID)}
}

// macroValues are the OpenRTB 2.6 auction macros (section 4.4) as the adapter knows them when
// the bid leaves: the price is the bid's own (Prebid Server's auction is first-price).
func macroValues(request *openrtb2.BidRequest, response *openrtb2.BidResponse, seat string, bid *openrtb2.Bid, currency string) map[string]string {
	return map[string]string{
		"${AUCTION_PRICE}":    strconv.FormatFloat(bid.Price, 'f', -1, 64),
		"${AUCTION_ID}":       request.ID,
		"${AUCTION_IMP_ID}":   bid.ImpID,
		"${AUCTION_BID_ID}":   response.BidID,
		"${AUCTION_SEAT}":     seat,
		"${AUCTION_AD_ID}":    bid.AdID,
		"${AUCTION_CURRENCY}": currency,
	}
}

// resolveMacros substitutes each macro in nurl, burl and adm, query-escaped: the macros stand
// in URLs, and an id must not add a parameter to a notice URL.
func resolveMacros(bid *openrtb2.Bid, values map[string]string) {
	pairs := make([]string, 0, 2*len(values))
	for macro, value := range values {
		pairs = append(pairs, macro, url.QueryEscape(value))
	}
	replacer := strings.NewReplacer(pairs...)
	bid.NURL = replacer.Replace(bid.NURL)
	bid.BURL = replacer.Replace(bid.BURL)
	bid.AdM = replacer.Replace(bid.AdM)
}
