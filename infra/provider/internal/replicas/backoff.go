package replicas

import "time"

// Backoff is the restart delay of a crashing replica: exponential from
// Initial, capped at Max, and back to Initial once a run lasted Reset. It is
// short on purpose: a killed replica must be serving again within seconds,
// while a replica that crashes at once must not spin the CPU.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Reset   time.Duration
	cur     time.Duration
}

// NewBackoff returns the provider's restart policy: 200 ms doubling to 2 s,
// reset after 30 s of uptime.
func NewBackoff() *Backoff {
	return &Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Reset: 30 * time.Second}
}

// Next returns the delay before the next start, given how long the last
// run stayed up.
func (b *Backoff) Next(uptime time.Duration) time.Duration {
	switch {
	case b.cur == 0 || uptime >= b.Reset:
		b.cur = b.Initial
	default:
		b.cur *= 2
		if b.cur > b.Max {
			b.cur = b.Max
		}
	}
	return b.cur
}
