package replicas

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := NewBackoff()
	ms := time.Millisecond
	want := []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms, 2000 * ms}
	for i, w := range want {
		if got := b.Next(100 * ms); got != w {
			t.Fatalf("crash %d: delay %s, want %s", i+1, got, w)
		}
	}
	// A run that lasted 30 s resets the delay.
	if got := b.Next(30 * time.Second); got != 200*ms {
		t.Errorf("after a long run: %s, want 200ms", got)
	}
	if got := b.Next(time.Second); got != 400*ms {
		t.Errorf("then: %s, want 400ms", got)
	}
	// Worst case from the first crash: a killed replica is restarted well
	// within 5 s.
	if NewBackoff().Next(0) > time.Second {
		t.Error("first restart delay too long")
	}
}
