// Package replicas runs functions: it keeps each deployment's replicas at
// the desired count, restarts crashed ones, rolls updates one replica at a
// time, tracks readiness for the invocation proxy and persists deployments.
//
// Each function has one controller goroutine that converges the actual
// replicas towards the desired state; API handlers only change the desired
// state and wake it. This keeps every change to a function's replicas in
// one place, so concurrent deploy, scale and delete calls cannot race.
package replicas

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openfaas/faas-provider/types"
	"github.com/prometheus/client_golang/prometheus"

	"adserver/provider/internal/images"
	"adserver/provider/internal/logstore"
	"adserver/provider/internal/naming"
	"adserver/provider/internal/netns"
	"adserver/provider/internal/secrets"
	"adserver/provider/internal/state"
)

var (
	// ErrNotFound: no such function.
	ErrNotFound = errors.New("function not found")
	// ErrExists: deploy of a function that exists (or is being deleted).
	ErrExists = errors.New("function already exists")
)

// InputError is a request the supervisor refuses (maps to 400).
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// Config is what the supervisor needs from the rest of the provider.
type Config struct {
	StateDir     string
	ImagesDir    string
	Watchdog     string // path of the of-watchdog binary every replica runs
	MaxReplicas  int
	ReadyTimeout time.Duration
	HostPATH     string
	// Resolve finds the image a deploy names (default: images.Resolve in
	// ImagesDir); the provider also looks in the local Docker daemon.
	Resolve func(ref string) (string, *images.Manifest, error)
	// Launcher is the provider's executable, which starts replicas of
	// container images (package rootfs).
	Launcher string

	Net      *netns.Manager
	IPs      *netns.Allocator
	Secrets  *secrets.Store
	Logs     *logstore.Store
	Registry prometheus.Registerer
}

// Supervisor owns all functions and their replicas.
type Supervisor struct {
	cfg     Config
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	metrics *metrics

	mu  sync.RWMutex // guards fns and serialises persisting
	fns map[string]*function
}

// function is one deployment and its replicas.
type function struct {
	name string
	wake chan struct{}
	done chan struct{}
	rr   atomic.Uint64

	mu          sync.RWMutex
	spec        types.FunctionDeployment
	imageDir    string
	manifest    *images.Manifest
	manifestErr error
	createdAt   time.Time
	desired     int
	gen         int
	deleted     bool
	stalledGen  int
	lastErr     string
	replicas    []*replica
}

// New creates a supervisor; call Restore to bring back stored deployments.
func New(cfg Config) (*Supervisor, error) {
	if cfg.MaxReplicas < 1 {
		return nil, fmt.Errorf("max replicas must be at least 1")
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{cfg: cfg, ctx: ctx, cancel: cancel, fns: map[string]*function{}}
	m, err := newMetrics(s, cfg.Registry)
	if err != nil {
		cancel()
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// MaxReplicas is the per-function replica limit.
func (s *Supervisor) MaxReplicas() int { return s.cfg.MaxReplicas }

// Restore re-creates every deployment stored in the state directory.
func (s *Supervisor) Restore() error {
	deps, err := state.Load(s.cfg.StateDir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range deps {
		name := d.Spec.Service
		if naming.ValidateFunctionName(name) != nil || s.fns[name] != nil {
			log.Printf("state: skipping invalid or duplicate deployment %q", name)
			continue
		}
		f := newFunction(d.Spec, d.ImageDir, d.Replicas, d.CreatedAt)
		f.manifest, f.manifestErr = images.Load(d.ImageDir)
		if f.manifestErr != nil {
			log.Printf("function %s: image %s: %v (replicas will not start until it is redeployed)", name, d.Spec.Image, f.manifestErr)
		}
		s.fns[name] = f
		s.startController(f)
		log.Printf("function %s: restored (%d replicas, image %s)", name, d.Replicas, d.Spec.Image)
	}
	return nil
}

func newFunction(spec types.FunctionDeployment, imageDir string, replicas int, created time.Time) *function {
	return &function{
		name:      spec.Service,
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		spec:      spec,
		imageDir:  imageDir,
		createdAt: created,
		desired:   replicas,
		gen:       1,
	}
}

func (f *function) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (s *Supervisor) startController(f *function) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.control(f)
	}()
}

// prepare puts the spec in our one namespace, resolves its image and checks its secrets, for a
// deploy or an update.
func (s *Supervisor) prepare(spec *types.FunctionDeployment) (string, *images.Manifest, error) {
	spec.Namespace = naming.Namespace
	resolve := s.cfg.Resolve
	if resolve == nil {
		resolve = func(ref string) (string, *images.Manifest, error) { return images.Resolve(s.cfg.ImagesDir, ref) }
	}
	dir, m, err := resolve(spec.Image)
	if err != nil {
		return "", nil, err
	}
	if missing := s.cfg.Secrets.Missing(spec.Secrets); len(missing) > 0 {
		return "", nil, &InputError{Msg: fmt.Sprintf("secrets %v do not exist: create them first (faas-cli secret create)", missing)}
	}
	return dir, m, nil
}

// Deploy creates a function with the given initial replica count.
func (s *Supervisor) Deploy(spec types.FunctionDeployment, replicas int) error {
	dir, m, err := s.prepare(&spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return errors.New("provider is shutting down")
	}
	if f := s.fns[spec.Service]; f != nil {
		f.mu.Lock()
		deleting := f.deleted
		f.mu.Unlock()
		if deleting {
			return fmt.Errorf("%w: %s is still being deleted, retry in a few seconds", ErrExists, spec.Service)
		}
		return fmt.Errorf("%w: %s (use PUT /system/functions to update it)", ErrExists, spec.Service)
	}
	f := newFunction(spec, dir, replicas, time.Now().UTC())
	f.manifest = m
	s.fns[spec.Service] = f
	if err := s.persistLocked(); err != nil {
		delete(s.fns, spec.Service)
		return fmt.Errorf("could not save deployments: %w", err)
	}
	s.startController(f)
	log.Printf("function %s: deployed image %s (%s), %d replicas", spec.Service, spec.Image, dir, replicas)
	return nil
}

// Update replaces a function's spec and rolls its replicas one by one.
// The replica count is kept, as faas-netes does.
func (s *Supervisor) Update(spec types.FunctionDeployment) error {
	dir, m, err := s.prepare(&spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.live(spec.Service)
	if f == nil {
		return ErrNotFound
	}
	f.mu.Lock()
	f.spec = spec
	f.imageDir = dir
	f.manifest, f.manifestErr = m, nil
	f.gen++
	f.lastErr = ""
	f.mu.Unlock()
	f.poke()
	log.Printf("function %s: updating to image %s (%s)", spec.Service, spec.Image, dir)
	if err := s.persistLocked(); err != nil {
		return fmt.Errorf("update applied but could not save deployments: %w", err)
	}
	return nil
}

// Scale sets the desired replica count (0..MaxReplicas).
func (s *Supervisor) Scale(name string, replicas int) error {
	if replicas < 0 || replicas > s.cfg.MaxReplicas {
		return &InputError{Msg: fmt.Sprintf("replicas must be between 0 and %d, got %d", s.cfg.MaxReplicas, replicas)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.live(name)
	if f == nil {
		return ErrNotFound
	}
	f.mu.Lock()
	changed := f.desired != replicas
	f.desired = replicas
	f.mu.Unlock()
	f.poke()
	if !changed {
		return nil
	}
	log.Printf("function %s: scaling to %d replicas", name, replicas)
	if err := s.persistLocked(); err != nil {
		return fmt.Errorf("scale applied but could not save deployments: %w", err)
	}
	return nil
}

// Delete stops and removes every replica of a function, then forgets it
// and its logs. It returns once the replicas are gone, so that a deploy of
// the same name right after (faas-cli deploy --replace) succeeds.
func (s *Supervisor) Delete(name string) error {
	s.mu.Lock()
	f := s.live(name)
	if f == nil {
		s.mu.Unlock()
		return ErrNotFound
	}
	f.mu.Lock()
	f.deleted = true
	f.mu.Unlock()
	perr := s.persistLocked()
	s.mu.Unlock()

	f.poke()
	<-f.done

	s.mu.Lock()
	if s.fns[name] == f {
		delete(s.fns, name)
	}
	s.mu.Unlock()
	s.cfg.Logs.Remove(name)
	s.metrics.forget(name)
	log.Printf("function %s: deleted", name)
	if perr != nil {
		return fmt.Errorf("deleted but could not save deployments: %w", perr)
	}
	return nil
}

// live returns a function that exists and is not being deleted. Caller holds s.mu.
func (s *Supervisor) live(name string) *function {
	f := s.fns[name]
	if f == nil {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.deleted {
		return nil
	}
	return f
}

// ImageDirs lists the image directories that deployments (being deleted
// included) and their replicas use, a rollout's old replicas too.
func (s *Supervisor) ImageDirs() map[string]bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	dirs := map[string]bool{}
	for _, f := range s.fns {
		f.mu.RLock()
		dirs[f.imageDir] = true
		for _, r := range f.replicas {
			if r.launch.Rootfs != "" {
				dirs[filepath.Dir(r.launch.Rootfs)] = true
			}
		}
		f.mu.RUnlock()
	}
	return dirs
}

// lookup is live for readers: the invocation path takes only read locks.
func (s *Supervisor) lookup(name string) *function {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.live(name)
}

// persistLocked writes deployments.json. Caller holds s.mu.
func (s *Supervisor) persistLocked() error {
	deps := make([]state.Deployment, 0, len(s.fns))
	for _, f := range s.fns {
		f.mu.RLock()
		if !f.deleted {
			deps = append(deps, state.Deployment{Spec: f.spec, ImageDir: f.imageDir, Replicas: f.desired, CreatedAt: f.createdAt})
		}
		f.mu.RUnlock()
	}
	err := state.Save(s.cfg.StateDir, deps)
	if err != nil {
		log.Printf("state: could not save %s: %v", state.FileName, err)
	}
	return err
}

// Exists reports whether a (non-deleted) function exists.
func (s *Supervisor) Exists(name string) bool {
	return s.lookup(name) != nil
}

// Status describes one function.
func (s *Supervisor) Status(name string) (types.FunctionStatus, error) {
	f := s.lookup(name)
	if f == nil {
		return types.FunctionStatus{}, ErrNotFound
	}
	return f.status(), nil
}

// List describes all functions, sorted by name.
func (s *Supervisor) List() []types.FunctionStatus {
	s.mu.RLock()
	fns := make([]*function, 0, len(s.fns))
	for _, f := range s.fns {
		fns = append(fns, f)
	}
	s.mu.RUnlock()
	out := []types.FunctionStatus{}
	for _, f := range fns {
		f.mu.RLock()
		deleted := f.deleted
		f.mu.RUnlock()
		if !deleted {
			out = append(out, f.status())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *function) status() types.FunctionStatus {
	f.mu.RLock()
	defer f.mu.RUnlock()
	sp := f.spec
	return types.FunctionStatus{
		Name:                   f.name,
		Image:                  sp.Image,
		Namespace:              naming.Namespace,
		EnvProcess:             sp.EnvProcess,
		EnvVars:                sp.EnvVars,
		Constraints:            sp.Constraints,
		Secrets:                sp.Secrets,
		Labels:                 sp.Labels,
		Annotations:            sp.Annotations,
		Limits:                 sp.Limits,
		Requests:               sp.Requests,
		ReadOnlyRootFilesystem: sp.ReadOnlyRootFilesystem,
		Replicas:               uint64(f.desired),
		AvailableReplicas:      uint64(f.readyLocked()),
		CreatedAt:              f.createdAt,
	}
}

// Availability returns (exists, ready replicas, replicas) for a function.
func (s *Supervisor) Availability(name string) (bool, int, int) {
	f := s.lookup(name)
	if f == nil {
		return false, 0, 0
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return true, f.readyLocked(), len(f.replicas)
}

// readyLocked counts the replicas that passed their readiness check.
// Caller holds f.mu.
func (f *function) readyLocked() int {
	ready := 0
	for _, r := range f.replicas {
		if r.ready.Load() {
			ready++
		}
	}
	return ready
}

// Target is the replica chosen for one invocation. Done must be called
// once its answer is complete.
type Target struct {
	Function string
	Replica  string
	HostPort string // ip:8080, where its of-watchdog listens
	r        *replica
}

// Done ends the invocation that Pick counted.
func (t Target) Done() { t.r.inflight.Add(-1) }

// Pick chooses the replica for one invocation, round-robin over the ready
// replicas, and counts the request as in flight there (for `make status`;
// the cap on it, max_inflight, is of-watchdog's). ok is false when the
// function does not exist or has no ready replica.
func (s *Supervisor) Pick(name string) (Target, bool) {
	f := s.lookup(name)
	if f == nil {
		return Target{}, false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	ready := f.readyLocked()
	if ready == 0 {
		return Target{}, false
	}
	// The k-th ready replica, so that each gets an equal share even when
	// some in between are starting.
	k := int(f.rr.Add(1) % uint64(ready))
	for _, r := range f.replicas {
		if !r.ready.Load() {
			continue
		}
		if k == 0 {
			r.inflight.Add(1)
			return Target{Function: r.fn, Replica: r.name, HostPort: r.hostPort, r: r}, true
		}
		k--
	}
	return Target{}, false // a replica left rotation between the two passes
}

// DrainBound is the longest any current replica's of-watchdog may take to
// stop (healthcheck_interval + write_timeout); shutdown waits at least this
// long for invocations.
func (s *Supervisor) DrainBound() time.Duration {
	var longest time.Duration
	for _, f := range s.snapshot() {
		f.mu.RLock()
		for _, r := range f.replicas {
			if d := r.wd.StopBound(); d > longest {
				longest = d
			}
		}
		f.mu.RUnlock()
	}
	return longest
}

func (s *Supervisor) snapshot() []*function {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fns := make([]*function, 0, len(s.fns))
	for _, f := range s.fns {
		fns = append(fns, f)
	}
	return fns
}

// ReplicaInfo describes one replica for service discovery and tests.
type ReplicaInfo struct {
	Function string
	Replica  string
	ID       string
	Netns    string
	IP       string
	Ready    bool
	Stopping bool
	PID      int
	Restarts int
	// Inflight is the number of invocations forwarded to the replica and
	// not yet answered; MaxInflight its of-watchdog's max_inflight (0: no cap).
	Inflight    int
	MaxInflight int
}

// Replicas lists every replica of every function, sorted by function and name.
func (s *Supervisor) Replicas() []ReplicaInfo {
	s.mu.RLock()
	fns := make([]*function, 0, len(s.fns))
	for _, f := range s.fns {
		fns = append(fns, f)
	}
	s.mu.RUnlock()
	var out []ReplicaInfo
	for _, f := range fns {
		f.mu.RLock()
		for _, r := range f.replicas {
			info := r.info()
			if s.cfg.Net != nil {
				info.Netns = s.cfg.Net.Namespace(r.id)
			}
			out = append(out, info)
		}
		f.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Replica < out[j].Replica
	})
	return out
}

// Shutdown stops every replica (in parallel) and waits for the controllers.
// Deployments stay in deployments.json and come back on the next start.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
