package logstore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/logs"
)

func msg(i int, instance string, ts time.Time) logs.Message {
	return logs.Message{Name: "fn", Namespace: "openfaas-fn", Instance: instance, Timestamp: ts, Text: fmt.Sprintf("line %d", i)}
}

func TestFilter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []logs.Message
	for i := 0; i < 10; i++ {
		inst := "fn-a"
		if i%2 == 1 {
			inst = "fn-b"
		}
		all = append(all, msg(i, inst, t0.Add(time.Duration(i)*time.Second)))
	}
	texts := func(ms []logs.Message) string {
		var s []string
		for _, m := range ms {
			s = append(s, strings.TrimPrefix(m.Text, "line "))
		}
		return strings.Join(s, ",")
	}
	since := t0.Add(6 * time.Second)
	cases := []struct {
		name     string
		instance string
		since    *time.Time
		tail     int
		want     string
	}{
		{"everything", "", nil, 0, "0,1,2,3,4,5,6,7,8,9"},
		{"negative tail means all", "", nil, -1, "0,1,2,3,4,5,6,7,8,9"},
		{"tail", "", nil, 3, "7,8,9"},
		{"tail larger than history", "", nil, 50, "0,1,2,3,4,5,6,7,8,9"},
		{"since is inclusive", "", &since, 0, "6,7,8,9"},
		{"since then tail", "", &since, 2, "8,9"},
		{"instance", "fn-b", nil, 0, "1,3,5,7,9"},
		{"instance, since and tail", "fn-a", &since, 1, "8"},
	}
	for _, c := range cases {
		if got := texts(Filter(all, c.instance, c.since, c.tail)); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func collect(t *testing.T, ch <-chan logs.Message, n int, timeout time.Duration) []logs.Message {
	t.Helper()
	var out []logs.Message
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, m)
		case <-deadline:
			t.Fatalf("timed out after %d of %d messages", len(out), n)
		}
	}
	return out
}

func TestConsumeQueryAndFollow(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, "openfaas-fn")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLine+10)
	s.Consume("fn", "fn-1", strings.NewReader("first\r\nsecond\n"+long+"\nlast without newline"))

	// The file holds one JSON object per line in the API's shape.
	f, err := os.Open(s.Path("fn"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines int
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", lines, err)
		}
		for _, k := range []string{"name", "namespace", "instance", "timestamp", "text"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q", lines, k)
			}
		}
		lines++
	}
	f.Close()
	if lines != 5 { // first, second, long split in two, last
		t.Errorf("%d lines in the file, want 5", lines)
	}

	ch, err := s.Query(context.Background(), logs.Request{Name: "fn", Tail: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, ch, 3, time.Second)
	if len(got) != 2 || got[1].Text != "last without newline" || got[0].Text != strings.Repeat("x", 10) {
		t.Errorf("tail 2 = %+v", got)
	}

	all, _ := s.Query(context.Background(), logs.Request{Name: "fn"})
	if got := collect(t, all, 10, time.Second); len(got) != 5 || got[0].Text != "first" || got[0].Instance != "fn-1" {
		t.Errorf("all = %d messages, first %+v", len(got), got[0])
	}

	// Follow: history first, then live lines, filtered by instance.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow, err := s.Query(ctx, logs.Request{Name: "fn", Tail: 1, Follow: true, Instance: "fn-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, follow, 1, time.Second); got[0].Text != "last without newline" {
		t.Errorf("follow history = %+v", got)
	}
	s.Consume("fn", "fn-2", strings.NewReader("other instance\n"))
	s.Consume("fn", "fn-1", strings.NewReader("live\n"))
	if got := collect(t, follow, 1, time.Second); got[0].Text != "live" {
		t.Errorf("follow live = %+v", got)
	}
	// Removing the function ends the stream.
	s.Remove("fn")
	select {
	case _, ok := <-follow:
		if ok {
			t.Error("message after remove")
		}
	case <-time.After(time.Second):
		t.Error("follow stream not closed after Remove")
	}
	if _, err := os.Stat(s.Path("fn")); !os.IsNotExist(err) {
		t.Error("log file still there after Remove")
	}
}

func TestRotation(t *testing.T) {
	s, _ := New(t.TempDir(), "openfaas-fn")
	s.MaxBytes = 400
	for i := 0; i < 20; i++ {
		s.Append("fn", msg(i, "fn-1", time.Now()))
	}
	if st, err := os.Stat(s.Path("fn")); err != nil || st.Size() > 400 {
		t.Fatalf("current file: %v %v", st, err)
	}
	if _, err := os.Stat(s.Path("fn") + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	ch, _ := s.Query(context.Background(), logs.Request{Name: "fn", Tail: 1})
	if got := collect(t, ch, 1, time.Second); got[0].Text != "line 19" {
		t.Errorf("last line after rotation = %q", got[0].Text)
	}
	s.Close()
}
