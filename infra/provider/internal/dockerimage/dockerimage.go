// Package dockerimage takes a function image from the local Docker daemon,
// as a container runtime would: it reads the image's config (entrypoint,
// cmd, env, working directory, user) and unpacks its filesystem once per
// image id into an image directory that replicas run chrooted into
// (package rootfs). This is what makes `faas-cli build` followed by
// `faas-cli deploy` work against the provider, with no registry in between.
//
// Layout, under <images-dir>/.docker/ (a name no image reference can take):
//
//	<image id hex>/image.json    the manifest, with its Container section
//	<image id hex>/rootfs/       the image's filesystem, never written by a replica
//
// A directory appears only complete (unpacked beside it, then renamed), so
// a crash mid-unpack leaves only a .tmp-* directory, swept by New. A rebuilt
// tag has a new id, so the next deploy unpacks it, and the copies of that
// tag's earlier ids go then, unless a deployment or replica still uses them.
package dockerimage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"adserver/provider/internal/fsutil"
	"adserver/provider/internal/images"
)

// DirName is the cache directory's name inside --images-dir.
const DirName = ".docker"

// unpackTimeout bounds one `docker export` of an image.
const unpackTimeout = 10 * time.Minute

// Importer unpacks images from the Docker daemon the docker CLI talks to.
type Importer struct {
	dir    string
	docker string
	mu     sync.Mutex // one unpack at a time: each is disk- and CPU-bound
	// InUse lists the image directories still used (deployments, replicas),
	// which pruning keeps; set it before the first Import.
	InUse func() map[string]bool
}

// New prepares <imagesDir>/.docker and finds the docker CLI; it fails when
// there is none, and then images come only from --images-dir.
func New(imagesDir string) (*Importer, error) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		return nil, fmt.Errorf("no docker CLI in PATH: %w", err)
	}
	dir := filepath.Join(imagesDir, DirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	for _, l := range leftovers {
		_ = os.RemoveAll(l)
	}
	return &Importer{dir: dir, docker: docker}, nil
}

// config is the part of `docker image inspect` a runtime needs.
type config struct {
	ID     string `json:"Id"`
	Config struct {
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
		Env        []string `json:"Env"`
		WorkingDir string   `json:"WorkingDir"`
		User       string   `json:"User"`
	} `json:"Config"`
}

var imageID = regexp.MustCompile(`^sha256:([0-9a-f]{64})$`)

// parseInspect reads `docker image inspect --format '{{json .}}'`.
func parseInspect(data []byte) (config, error) {
	var c config
	if err := json.Unmarshal(bytes.TrimSpace(data), &c); err != nil {
		return c, fmt.Errorf("docker image inspect: %w", err)
	}
	if !imageID.MatchString(c.ID) {
		return c, fmt.Errorf("docker image inspect: unexpected image id %q", c.ID)
	}
	return c, nil
}

// Import returns the image directory of ref, unpacking the image first if
// its id has not been unpacked yet. A ref Docker does not know gives an
// images.NotBuiltError, like a missing image directory.
func (im *Importer) Import(ref string) (string, *images.Manifest, error) {
	out, err := im.run(context.Background(), "image", "inspect", "--format", "{{json .}}", ref)
	if err != nil {
		return "", nil, &images.NotBuiltError{Ref: ref, Reason: "not in the local Docker daemon either: " + err.Error()}
	}
	cfg, err := parseInspect(out)
	if err != nil {
		return "", nil, err
	}
	if len(cfg.Config.Entrypoint)+len(cfg.Config.Cmd) == 0 {
		return "", nil, &images.NotBuiltError{Ref: ref, Reason: "the Docker image has neither an entrypoint nor a cmd"}
	}
	dir := filepath.Join(im.dir, imageID.FindStringSubmatch(cfg.ID)[1])
	if m, err := images.Load(dir); err == nil {
		return dir, m, nil
	}

	im.mu.Lock()
	defer im.mu.Unlock()
	if m, err := images.Load(dir); err == nil { // unpacked while we waited
		return dir, m, nil
	}
	started := time.Now()
	if err := im.unpack(ref, cfg, dir); err != nil {
		return "", nil, fmt.Errorf("unpacking Docker image %s: %w", ref, err)
	}
	m, err := images.Load(dir)
	if err != nil {
		return "", nil, err
	}
	log.Printf("image %s: unpacked Docker image %s into %s in %s", ref, cfg.ID[:19], dir, time.Since(started).Round(time.Millisecond))
	im.pruneSuperseded(ref, dir)
	return dir, m, nil
}

// pruneSuperseded removes the copies of ref's earlier ids, which Docker no
// longer gives for ref (current is what it gives now), unless still in use.
// Each rebuild of a function would otherwise leave a copy of its image.
func (im *Importer) pruneSuperseded(ref, current string) {
	inUse := map[string]bool{}
	if im.InUse != nil {
		inUse = im.InUse()
	}
	entries, err := os.ReadDir(im.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(im.dir, e.Name())
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || dir == current || inUse[dir] {
			continue
		}
		if m, err := images.Load(dir); err != nil || m.Ref != ref {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Printf("image %s: removing the superseded copy %s: %v", ref, dir, err)
			continue
		}
		log.Printf("image %s: removed the superseded copy %s", ref, dir)
	}
}

// unpack exports the image's filesystem into a fresh directory beside dir,
// writes its manifest and renames it into place.
func (im *Importer) unpack(ref string, cfg config, dir string) error {
	tmp, err := os.MkdirTemp(im.dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), unpackTimeout)
	defer cancel()

	// `docker export` works on containers: create one that never starts.
	out, err := im.run(ctx, "create", cfg.ID)
	if err != nil {
		return err
	}
	container := strings.TrimSpace(string(out))
	defer func() { _, _ = im.run(context.Background(), "rm", "--force", container) }()
	if err := im.export(ctx, container, rootfs); err != nil {
		return err
	}

	m, err := manifest(ref, cfg, filepath.Join(dir, "rootfs"), rootfs)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, images.ManifestFile), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, lerr := images.Load(dir); lerr == nil {
			return nil // another provider sharing the images directory unpacked it first
		}
		return err
	}
	return nil
}

// export streams `docker export` into tar, keeping numeric owners (the
// image's users are not the host's) and modes.
func (im *Importer) export(ctx context.Context, container, rootfs string) error {
	exp := exec.CommandContext(ctx, im.docker, "export", container)
	untar := exec.CommandContext(ctx, "tar", "--numeric-owner", "--same-permissions", "-xf", "-", "-C", rootfs)
	pipe, err := exp.StdoutPipe()
	if err != nil {
		return err
	}
	var expErr, tarErr bytes.Buffer
	exp.Stderr = &expErr
	untar.Stdin = pipe
	untar.Stderr = &tarErr
	if err := untar.Start(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	if err := exp.Run(); err != nil {
		_ = untar.Wait()
		return fmt.Errorf("docker export: %w: %s", err, strings.TrimSpace(expErr.String()))
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("tar -x: %w: %s", err, strings.TrimSpace(tarErr.String()))
	}
	return nil
}

// manifest composes image.json from the image config; the user is resolved
// against the image's own /etc/passwd and /etc/group (in unpacked).
func manifest(ref string, cfg config, finalRootfs, unpacked string) (*images.Manifest, error) {
	env := map[string]string{}
	for _, kv := range cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	workdir := cfg.Config.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	passwd, _ := readSmall(filepath.Join(unpacked, "etc", "passwd"))
	group, _ := readSmall(filepath.Join(unpacked, "etc", "group"))
	u, err := resolveUser(cfg.Config.User, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("image user: %w", err)
	}
	return &images.Manifest{
		Ref: ref, Workdir: workdir, Fprocess: env["fprocess"], Env: env,
		Container: &images.Container{
			ID: cfg.ID, Rootfs: finalRootfs, Argv: append(append([]string{}, cfg.Config.Entrypoint...), cfg.Config.Cmd...),
			UID: u.uid, GID: u.gid, Groups: u.groups, Home: u.home,
		},
	}, nil
}

func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4<<20))
	return string(data), err
}

// run runs the docker CLI and returns its stdout; an error carries its stderr.
func (im *Importer) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, im.docker, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, errors.New(msg)
	}
	return out, nil
}
