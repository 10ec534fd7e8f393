package main

import (
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags([]string{"--state-dir", "/s", "--images-dir", "/i"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Listen != "127.0.0.1:8090" || o.OpsListen != "127.0.0.1:8091" || o.Bridge != "ads0" ||
		o.BridgeCIDR != "10.62.0.0/16" || o.NetnsPrefix != "ads-" || o.Watchdog != "" || o.MaxReplicas != 5 ||
		o.ReadyTimeout != time.Minute || o.LogsTimeout != 30*time.Second {
		t.Errorf("defaults: %+v", o)
	}
}

func TestParseFlagsEnvironment(t *testing.T) {
	o, err := parseFlags([]string{"--max-replicas", "3"}, env(map[string]string{
		"ADS_PROVIDER_STATE_DIR":     "/state",
		"ADS_PROVIDER_IMAGES_DIR":    "/images",
		"ADS_PROVIDER_MAX_REPLICAS":  "9", // the command line wins
		"ADS_PROVIDER_READY_TIMEOUT": "5s",
		"ADS_PROVIDER_OPS_LISTEN":    "127.0.0.1:9999",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if o.StateDir != "/state" || o.ImagesDir != "/images" || o.MaxReplicas != 3 || o.ReadyTimeout != 5*time.Second || o.OpsListen != "127.0.0.1:9999" {
		t.Errorf("%+v", o)
	}
	if envName("ops-listen") != "ADS_PROVIDER_OPS_LISTEN" {
		t.Error(envName("ops-listen"))
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"missing dirs":     {nil, nil},
		"bad env value":    {[]string{"--state-dir", "/s", "--images-dir", "/i"}, map[string]string{"ADS_PROVIDER_MAX_REPLICAS": "many"}},
		"stray argument":   {[]string{"--state-dir", "/s", "--images-dir", "/i", "extra"}, nil},
		"negative timeout": {[]string{"--state-dir", "/s", "--images-dir", "/i", "--ready-timeout", "-1s"}, nil},
	} {
		if _, err := parseFlags(c.args, env(c.env)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
