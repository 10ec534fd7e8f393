package openfaasads

import (
	"encoding/json"
	"testing"

	"github.com/prebid/prebid-server/v4/openrtb_ext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParamsSchema(t *testing.T) {
	validator, err := openrtb_ext.NewBidderParamsValidator("../../static/bidder-params")
	require.NoError(t, err)
	for params, valid := range map[string]bool{
		`{"placementId": "placement-001"}`:         true,
		`{"placementId": "p", "somethingElse": 1}`: true,
		`{}`:                             false,
		`{"placementId": ""}`:            false,
		`{"placementId": 1}`:             false,
		`{"placement": "placement-001"}`: false,
		`"placement-001"`:                false,
		`{"placementId": ["placement-001", "placement-002"]}`: false,
	} {
		err := validator.Validate(openrtb_ext.BidderOpenfaasads, json.RawMessage(params))
		if valid {
			assert.NoError(t, err, params)
		} else {
			assert.Error(t, err, params)
		}
	}
}
