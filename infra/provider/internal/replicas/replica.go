package replicas

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"adserver/provider/internal/watchdog"
)

// stopGrace is how long a replica's of-watchdog gets, beyond its own
// healthcheck_interval + write_timeout, between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// Readiness probing: fast while a replica starts so that it takes traffic
// as soon as it can, slower once it serves. A serving replica is taken out
// of rotation after readyFailures failed probes in a row (at once if its
// process is gone).
const (
	probeStarting = 150 * time.Millisecond
	probeServing  = time.Second
	probeTimeout  = time.Second
	readyFailures = 3
)

// replica is one running copy of a function: a network namespace, an
// address, a directory and a process group that is restarted when it dies.
type replica struct {
	id       string // 8 hex characters, unique among live replicas
	name     string // <function>-<id>, the instance name in logs
	fn       string
	gen      int
	ip       netip.Addr
	hostPort string // ip:8080, precomputed for the invocation path
	dir      string
	launch   launch
	created  time.Time
	wd       watchdog.Config

	ready    atomic.Bool
	inflight atomic.Int64 // invocations forwarded to it and not yet answered
	running  atomic.Bool
	restarts atomic.Int64
	started  atomic.Int64 // unix nanoseconds of the current process start

	mu       sync.Mutex
	stopping bool
	pgid     int

	stopOnce sync.Once
	stopCh   chan struct{} // closed when the replica is being stopped
	exited   chan struct{} // closed when the process loop has ended
	probed   chan struct{} // closed when the readiness prober has ended
}

func (r *replica) info() ReplicaInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ReplicaInfo{
		Function: r.fn, Replica: r.name, ID: r.id, IP: r.ip.String(),
		Ready: r.ready.Load(), Stopping: r.stopping, PID: r.pgid, Restarts: int(r.restarts.Load()),
		Inflight: int(r.inflight.Load()), MaxInflight: r.wd.MaxInflight,
	}
}

func newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startReplica creates the sandbox and directory of a new replica, starts
// its process loop and readiness prober, and adds it to f.
func (s *Supervisor) startReplica(f *function, gen int) (*replica, error) {
	f.mu.Lock()
	spec, manifest, merr := f.spec, f.manifest, f.manifestErr
	f.mu.Unlock()
	if manifest == nil {
		if merr == nil {
			merr = errors.New("no image manifest")
		}
		return nil, fmt.Errorf("image %s: %w", spec.Image, merr)
	}

	id := newID()
	for s.idInUse(id) {
		id = newID()
	}
	r := &replica{
		id:      id,
		name:    f.name + "-" + id,
		fn:      f.name,
		gen:     gen,
		dir:     filepath.Join(s.cfg.StateDir, "replicas", f.name+"-"+id),
		created: time.Now(),
		stopCh:  make(chan struct{}),
		exited:  make(chan struct{}),
		probed:  make(chan struct{}),
	}
	l, err := buildLaunch(launchInput{
		Function: f.name, Replica: r.name, ReplicaDir: r.dir, Manifest: manifest,
		Spec: spec, Watchdog: s.cfg.Watchdog, HostPATH: s.cfg.HostPATH, Launcher: s.cfg.Launcher,
	})
	if err != nil {
		return nil, err
	}
	r.launch = l
	r.wd = l.Watchdog
	for _, p := range l.WatchdogProblems {
		log.Printf("function %s: watchdog setting %s", f.name, p)
	}

	if err := os.MkdirAll(filepath.Join(r.dir, replicaTmpDir), 0o700); err != nil {
		return nil, err
	}
	missing, err := s.cfg.Secrets.CopyTo(spec.Secrets, filepath.Join(r.dir, replicaSecretDir))
	if err != nil {
		_ = os.RemoveAll(r.dir)
		return nil, fmt.Errorf("copy secrets: %w", err)
	}
	if len(missing) > 0 {
		log.Printf("function %s: replica %s starts without deleted secrets %v", f.name, r.name, missing)
	}

	ip, err := s.cfg.IPs.Allocate()
	if err != nil {
		_ = os.RemoveAll(r.dir)
		return nil, err
	}
	r.ip = ip
	r.hostPort = fmt.Sprintf("%s:%d", ip, FunctionPort)
	if err := s.cfg.Net.Create(id, ip); err != nil {
		s.cfg.IPs.Release(ip)
		_ = os.RemoveAll(r.dir)
		return nil, fmt.Errorf("network namespace: %w", err)
	}

	f.mu.Lock()
	f.replicas = append(f.replicas, r)
	f.lastErr = ""
	f.mu.Unlock()

	go s.superviseProcess(r)
	go s.probe(r)
	log.Printf("function %s: replica %s starting at %s", f.name, r.name, ip)
	return r, nil
}

func (s *Supervisor) idInUse(id string) bool {
	for _, ri := range s.Replicas() {
		if ri.ID == id {
			return true
		}
	}
	return false
}

// superviseProcess runs the replica's process and restarts it with backoff
// whenever it exits, until the replica is stopped.
func (s *Supervisor) superviseProcess(r *replica) {
	defer close(r.exited)
	bo := NewBackoff()
	for {
		started := time.Now()
		err := s.runOnce(r)
		r.running.Store(false)
		r.ready.Store(false)
		if r.isStopping() {
			return
		}
		delay := bo.Next(time.Since(started))
		r.restarts.Add(1)
		s.metrics.restarts.WithLabelValues(r.fn).Inc()
		log.Printf("function %s: replica %s exited (%v) after %s; restarting in %s",
			r.fn, r.name, describeExit(err), time.Since(started).Round(time.Millisecond), delay)
		select {
		case <-time.After(delay):
		case <-r.stopCh:
			return
		}
	}
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (r *replica) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// runOnce starts the replica's process group inside its namespace and waits
// for it to exit. stdout and stderr share one pipe, read into the log store.
func (s *Supervisor) runOnce(r *replica) error {
	// The child gets SIGKILL if this OS thread dies (Pdeathsig is per thread),
	// i.e. when the provider itself dies; keep the thread for the child's life.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	argv := s.cfg.Net.ExecArgs(r.id, r.launch.Argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = r.launch.Dir
	cmd.Env = r.launch.Env
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		pr.Close()
		pw.Close()
		return nil
	}
	err = cmd.Start()
	if err == nil {
		r.pgid = cmd.Process.Pid
		r.started.Store(time.Now().UnixNano())
		r.running.Store(true)
	}
	r.mu.Unlock()
	pw.Close()
	if err != nil {
		pr.Close()
		return err
	}

	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		defer pr.Close()
		s.cfg.Logs.Consume(r.fn, r.name, pr)
	}()

	err = cmd.Wait()
	r.running.Store(false)
	r.ready.Store(false)
	r.mu.Lock()
	pgid := r.pgid
	r.pgid = 0
	r.mu.Unlock()
	// Whatever is left of the group (the watchdog's child, a forked worker)
	// must not hold the ports when the replica restarts.
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	select {
	case <-logsDone:
	case <-time.After(500 * time.Millisecond):
		s.cfg.Net.KillAll(r.id) // something outside the group still holds the pipe
		select {
		case <-logsDone:
		case <-time.After(2 * time.Second):
		}
	}
	return err
}

// probe marks the replica ready while GET /_/ready on port 8080 answers 200.
func (s *Supervisor) probe(r *replica) {
	defer close(r.probed)
	client := &http.Client{
		Timeout:   probeTimeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	target := fmt.Sprintf("http://%s:%d%s", r.ip, FunctionPort, ReadyPath)
	failures := 0
	for {
		interval := probeStarting
		if r.ready.Load() {
			interval = probeServing
		}
		select {
		case <-time.After(interval):
		case <-r.stopCh:
			r.ready.Store(false)
			return
		}
		ok := r.running.Load() && probeOnce(client, target)
		switch {
		case ok:
			failures = 0
			if !r.ready.Load() && r.running.Load() && r.markReady() {
				up := time.Since(time.Unix(0, r.started.Load())).Round(time.Millisecond)
				log.Printf("function %s: replica %s ready (%s after its process started)", r.fn, r.name, up)
			}
		case !r.running.Load():
			failures = 0
			r.ready.Store(false)
		default:
			failures++
			if r.ready.Load() && failures >= readyFailures {
				r.ready.Store(false)
				log.Printf("function %s: replica %s not ready (%d failed probes of %s)", r.fn, r.name, failures, ReadyPath)
			}
		}
	}
}

// markReady puts the replica into rotation unless it is being stopped (a
// probe that was in flight when the drain began must not undo it).
func (r *replica) markReady() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return false
	}
	r.ready.Store(true)
	return true
}

// probeAgent is the probes' User-Agent: of-watchdog logs every request it
// forwards, except the kubelet's probes (User-Agent kube-probe/...), and
// the provider probes as the kubelet does.
const probeAgent = "kube-probe/ads-provider"

func probeOnce(c *http.Client, target string) bool {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", probeAgent)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stopReplica takes a replica out of rotation and stops it as a container
// runtime stops a container: SIGTERM to its process (of-watchdog), which
// keeps serving for healthcheck_interval, then finishes the requests it
// accepted within write_timeout and exits; SIGKILL to whatever is left if
// that takes longer than both plus stopGrace. Then its namespace, veth,
// address and directory go, and it is removed from f.
func (s *Supervisor) stopReplica(f *function, r *replica) {
	r.mu.Lock()
	r.stopping = true
	r.ready.Store(false)
	pid := r.pgid
	r.mu.Unlock()
	// Barrier: a Pick that saw the replica ready holds f.mu for reading
	// until it has counted its request; after this, none can start.
	f.mu.Lock()
	f.mu.Unlock() //nolint:staticcheck // an empty critical section on purpose
	r.stopOnce.Do(func() { close(r.stopCh) })

	started := time.Now()
	inflight := r.inflight.Load()
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	bound := r.wd.StopBound() + stopGrace
	select {
	case <-r.exited:
		if inflight > 0 {
			log.Printf("function %s: replica %s drained %d request(s) and exited in %s",
				r.fn, r.name, inflight, time.Since(started).Round(time.Millisecond))
		}
	case <-time.After(bound):
		log.Printf("function %s: replica %s still running %s after SIGTERM (healthcheck_interval %s + write_timeout %s); killing it",
			r.fn, r.name, bound, r.wd.HealthcheckInterval, r.wd.WriteTimeout)
		r.mu.Lock()
		if r.pgid > 0 {
			_ = syscall.Kill(-r.pgid, syscall.SIGKILL)
		}
		r.mu.Unlock()
		s.cfg.Net.KillAll(r.id)
		<-r.exited
	}
	<-r.probed
	// The watchdog answered what it accepted before it exited, but an answer can still be on
	// its way through the veth: keep the network until the proxy has read every one.
	for deadline := time.Now().Add(stopGrace); r.inflight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}

	if err := s.cfg.Net.Delete(r.id); err != nil {
		log.Printf("function %s: replica %s: cleaning up network: %v", r.fn, r.name, err)
	}
	s.cfg.IPs.Release(r.ip)
	if err := os.RemoveAll(r.dir); err != nil {
		log.Printf("function %s: replica %s: removing %s: %v", r.fn, r.name, r.dir, err)
	}

	f.mu.Lock()
	for i, x := range f.replicas {
		if x == r {
			f.replicas = append(f.replicas[:i], f.replicas[i+1:]...)
			break
		}
	}
	f.mu.Unlock()
	log.Printf("function %s: replica %s stopped", r.fn, r.name)
}
