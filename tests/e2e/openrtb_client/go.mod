module adserver.test/openrtbclient

go 1.26

require github.com/prebid/openrtb/v20 v20.3.0
