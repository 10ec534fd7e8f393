// Package logstore keeps function logs: every stdout/stderr line of every
// replica becomes one JSON object in <state-dir>/logs/<function>.ndjson, in
// exactly the shape GET /system/logs returns ({name, namespace, instance,
// timestamp, text}), so the file is readable with jq and the API just
// filters it. It implements the faas-provider logs.Requester interface,
// including follow mode through in-process subscriptions.
package logstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/logs"
)

// DefaultMaxBytes is the size at which a log file is rotated to .1 (one
// previous file is kept), so a chatty function cannot fill the disk.
const DefaultMaxBytes = 32 << 20

// maxLine bounds one message; longer lines are split.
const maxLine = 64 << 10

// followBuffer is how many live messages a slow follower may lag behind
// before messages are dropped for it (never blocking the replica).
const followBuffer = 1024

// Store is the per-function log files plus live subscribers.
type Store struct {
	dir       string
	namespace string
	MaxBytes  int64

	mu    sync.Mutex
	sinks map[string]*sink
}

type sink struct {
	mu   sync.Mutex
	path string
	f    *os.File
	size int64
	subs map[chan logs.Message]struct{}
	gone chan struct{} // closed when the function's logs are removed
}

// New creates the log directory.
func New(dir, namespace string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Store{dir: dir, namespace: namespace, MaxBytes: DefaultMaxBytes, sinks: map[string]*sink{}}, nil
}

// Path is the log file of function fn.
func (s *Store) Path(fn string) string { return filepath.Join(s.dir, fn+".ndjson") }

func (s *Store) sink(fn string) *sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	sk := s.sinks[fn]
	if sk == nil {
		sk = &sink{path: s.Path(fn), subs: map[chan logs.Message]struct{}{}, gone: make(chan struct{})}
		s.sinks[fn] = sk
	}
	return sk
}

// Append records one message for fn and hands it to live followers.
func (s *Store) Append(fn string, m logs.Message) {
	sk := s.sink(fn)
	line, err := json.Marshal(m)
	if err != nil {
		return
	}
	line = append(line, '\n')

	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.f == nil {
		f, err := os.OpenFile(sk.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Printf("logs: cannot open %s: %v", sk.path, err)
			return
		}
		st, _ := f.Stat()
		sk.f = f
		if st != nil {
			sk.size = st.Size()
		}
	}
	if s.MaxBytes > 0 && sk.size+int64(len(line)) > s.MaxBytes && sk.size > 0 {
		sk.f.Close()
		_ = os.Rename(sk.path, sk.path+".1")
		f, err := os.OpenFile(sk.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
		if err != nil {
			sk.f = nil
			log.Printf("logs: cannot reopen %s: %v", sk.path, err)
			return
		}
		sk.f, sk.size = f, 0
	}
	n, err := sk.f.Write(line)
	sk.size += int64(n)
	if err != nil {
		log.Printf("logs: write %s: %v", sk.path, err)
	}
	for ch := range sk.subs {
		select {
		case ch <- m:
		default: // slow follower: drop rather than block the replica
		}
	}
}

// Consume reads r line by line until EOF and appends each line as a message
// from instance of fn. Over-long lines are split, never dropped, and the
// reader is always drained so the replica never blocks on a full pipe.
func (s *Store) Consume(fn, instance string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	var partial []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(chunk) > 0 || (err == nil && !isPrefix) {
			partial = append(partial, chunk...)
			if !isPrefix || len(partial) >= maxLine {
				s.Append(fn, logs.Message{
					Name:      fn,
					Namespace: s.namespace,
					Instance:  instance,
					Timestamp: time.Now().UTC(),
					Text:      string(bytes.TrimRight(partial, "\r")),
				})
				partial = partial[:0]
			}
		}
		if err != nil {
			if len(partial) > 0 {
				s.Append(fn, logs.Message{Name: fn, Namespace: s.namespace, Instance: instance, Timestamp: time.Now().UTC(), Text: string(partial)})
			}
			return
		}
	}
}

// Remove deletes fn's log files and ends its followers' streams.
func (s *Store) Remove(fn string) {
	s.mu.Lock()
	sk := s.sinks[fn]
	delete(s.sinks, fn)
	s.mu.Unlock()
	if sk != nil {
		sk.mu.Lock()
		if sk.f != nil {
			sk.f.Close()
			sk.f = nil
		}
		close(sk.gone)
		sk.mu.Unlock()
	}
	_ = os.Remove(s.Path(fn))
	_ = os.Remove(s.Path(fn) + ".1")
}

// Close closes all open files.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sk := range s.sinks {
		sk.mu.Lock()
		if sk.f != nil {
			sk.f.Close()
			sk.f = nil
		}
		sk.mu.Unlock()
	}
}

// Query implements logs.Requester: the stored history filtered by instance,
// since and tail, then (with follow) live messages until ctx ends or the
// function is deleted. Callers check that the function exists.
func (s *Store) Query(ctx context.Context, req logs.Request) (<-chan logs.Message, error) {
	if req.Name == "" {
		return nil, errors.New("function name is required")
	}
	sk := s.sink(req.Name)

	// Open the files and subscribe under the sink lock, so history and live
	// messages neither overlap nor leave a gap.
	sk.mu.Lock()
	var sub chan logs.Message
	if req.Follow {
		sub = make(chan logs.Message, followBuffer)
		sk.subs[sub] = struct{}{}
	}
	var readers []io.Reader
	var closers []io.Closer
	if f, err := os.Open(sk.path + ".1"); err == nil {
		readers = append(readers, f)
		closers = append(closers, f)
	}
	if f, err := os.Open(sk.path); err == nil {
		limit := sk.size
		if sk.f == nil { // not written by this process yet: read it whole
			if st, err := f.Stat(); err == nil {
				limit = st.Size()
			}
		}
		readers = append(readers, io.LimitReader(f, limit))
		closers = append(closers, f)
	}
	gone := sk.gone
	sk.mu.Unlock()

	unsubscribe := func() {
		if sub != nil {
			sk.mu.Lock()
			delete(sk.subs, sub)
			sk.mu.Unlock()
		}
	}

	history, err := readHistory(io.MultiReader(readers...), req.Instance, req.Since, req.Tail)
	for _, c := range closers {
		c.Close()
	}
	if err != nil {
		unsubscribe()
		return nil, err
	}

	out := make(chan logs.Message, 64)
	go func() {
		defer close(out)
		defer unsubscribe()
		for _, m := range history {
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
		}
		if sub == nil {
			return
		}
		for {
			select {
			case m := <-sub:
				if !Matches(m, req.Instance, req.Since) {
					continue
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-gone:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// readHistory parses NDJSON and keeps what Filter would keep, holding at
// most about 2*tail messages in memory when tail is set.
func readHistory(r io.Reader, instance string, since *time.Time, tail int) ([]logs.Message, error) {
	var kept []logs.Message
	br := bufio.NewReaderSize(r, 256<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var m logs.Message
			if json.Unmarshal(line, &m) == nil && Matches(m, instance, since) {
				kept = append(kept, m)
				if tail > 0 && len(kept) >= 2*tail+64 {
					kept = append(kept[:0], kept[len(kept)-tail:]...)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return Filter(kept, instance, since, tail), nil
}

// Matches reports whether m passes the instance and since filters.
func Matches(m logs.Message, instance string, since *time.Time) bool {
	if instance != "" && m.Instance != instance {
		return false
	}
	if since != nil && m.Timestamp.Before(*since) {
		return false
	}
	return true
}

// Filter applies the instance and since filters, then keeps the last tail
// messages (tail <= 0: all), as the logs API specifies.
func Filter(msgs []logs.Message, instance string, since *time.Time, tail int) []logs.Message {
	out := make([]logs.Message, 0, len(msgs))
	for _, m := range msgs {
		if Matches(m, instance, since) {
			out = append(out, m)
		}
	}
	if tail > 0 && len(out) > tail {
		out = out[len(out)-tail:]
	}
	return out
}
