package openfaasads

import (
	"testing"

	"github.com/prebid/prebid-server/v4/adapters/adapterstest"
	"github.com/prebid/prebid-server/v4/config"
	"github.com/prebid/prebid-server/v4/openrtb_ext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testEndpoint = "https://ads.example.com/function/openrtb"

func TestJsonSamples(t *testing.T) {
	bidder, err := Builder(openrtb_ext.BidderOpenfaasads, config.Adapter{Endpoint: testEndpoint}, config.Server{})
	require.NoError(t, err)
	adapterstest.RunJSONBidderTest(t, "openfaasadstest", bidder)
}

func TestAnEndpointThatIsNotAnHTTPURLIsRefusedAtStartUp(t *testing.T) {
	for _, endpoint := range []string{"", "ads.example.com/function/openrtb", "ftp://ads.example.com/", "http://"} {
		_, err := Builder(openrtb_ext.BidderOpenfaasads, config.Adapter{Endpoint: endpoint}, config.Server{})
		assert.Error(t, err, endpoint)
	}
}
