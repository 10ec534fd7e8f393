package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/server"
)

// crashScript exits at once, as a function with a broken import would.
const crashScript = `import sys
print("crashing on purpose", flush=True)
sys.exit(3)
`

// TestCrashingFunction: a function that never becomes ready keeps being
// restarted with backoff and answers 503; a rolling update to a broken image
// stalls and leaves the old replicas serving.
func TestCrashingFunction(t *testing.T) {
	requireRoot(t)
	tn := setupNetwork(t)
	images := t.TempDir()
	writeImage(t, images, ref, functionScript, nil)
	writeImage(t, images, "ads/crash:1", crashScript, nil)
	in := startProvider(t, server.Config{
		StateDir: t.TempDir(), ImagesDir: images,
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
		MaxReplicas: 5, ReadyTimeout: 2 * time.Second,
	})
	api := client{t: t, base: in.API.URL}
	ops := client{t: t, base: in.Ops.URL}

	api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{Service: "crashy", Image: "ads/crash:1"})
	eventually(t, 5*time.Second, "crash loop restarts counted", func() (bool, string) {
		m := ops.expect(http.StatusOK, "", "GET", "/metrics", nil)
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, `provider_replica_restarts_total{function_name="crashy"} `) {
				return !strings.HasSuffix(line, " 1") && !strings.HasSuffix(line, " 0"), line
			}
		}
		return false, "no restart series"
	})
	api.expect(http.StatusServiceUnavailable, "no ready replica", "GET", "/function/crashy", nil)
	if st := status(t, api, "crashy"); st.Replicas != 1 || st.AvailableReplicas != 0 {
		t.Errorf("crash-looping status: %+v", st)
	}
	api.expect(http.StatusOK, "crashing on purpose", "GET", "/system/logs?name=crashy&follow=false", nil)

	// Fixing the image through an update brings it up.
	api.expect(http.StatusAccepted, "", "PUT", "/system/functions", types.FunctionDeployment{Service: "crashy", Image: ref})
	waitAvailable(t, api, "crashy", 1, 10*time.Second)
	var good string
	eventually(t, 5*time.Second, "crash-looping replica replaced", func() (bool, string) {
		rs := replicasOf(in.P, "crashy")
		if len(rs) != 1 || !rs[0].Ready {
			return false, fmt.Sprintf("%+v", rs)
		}
		good = rs[0].Replica
		return true, ""
	})

	// Updating to a broken image stalls after --ready-timeout: the old
	// replica keeps serving and the broken one is removed.
	api.expect(http.StatusAccepted, "", "PUT", "/system/functions", types.FunctionDeployment{Service: "crashy", Image: "ads/crash:1"})
	time.Sleep(500 * time.Millisecond)
	api.expect(http.StatusOK, "hello from "+good, "GET", "/function/crashy", nil)
	eventually(t, 6*time.Second, "rollout stalled, broken replica removed", func() (bool, string) {
		rs := replicasOf(in.P, "crashy")
		return len(rs) == 1 && rs[0].Replica == good && rs[0].Ready, ""
	})
	api.expect(http.StatusOK, "hello from "+good, "GET", "/function/crashy", nil)

	in.Stop(t)
	if left := tn.leftovers(t); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
