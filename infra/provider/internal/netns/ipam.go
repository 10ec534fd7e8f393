package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// firstReplicaOffset keeps the low addresses of the bridge network free for
// the host (the first address) and anything the orchestrator may add later.
const firstReplicaOffset = 10

// ErrExhausted is returned when every replica address is in use.
var ErrExhausted = errors.New("no free replica address left in the bridge network")

// Allocator hands out replica addresses on the bridge network. It is next-fit:
// it keeps moving forwards and wraps around, so an address that was just freed
// is not handed out again at once (stale ARP entries and half-closed
// connections then point nowhere rather than at a different replica), and an
// address is never handed out twice while it is in use.
type Allocator struct {
	mu     sync.Mutex
	prefix netip.Prefix
	host   netip.Addr
	first  netip.Addr
	last   netip.Addr
	next   netip.Addr
	used   map[netip.Addr]bool
}

// NewAllocator parses an IPv4 CIDR such as 10.62.0.0/16. The host (bridge)
// address is the first address of the network; replicas get network+10
// upwards, up to the address before broadcast.
func NewAllocator(cidr string) (*Allocator, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("bridge CIDR %q: %w", cidr, err)
	}
	if !p.Addr().Is4() {
		return nil, fmt.Errorf("bridge CIDR %q: only IPv4 is supported", cidr)
	}
	if p.Bits() > 27 {
		return nil, fmt.Errorf("bridge CIDR %q is too small: need at least a /27", cidr)
	}
	p = p.Masked()
	network := p.Addr()
	host := network.Next()
	first := network
	for range firstReplicaOffset {
		first = first.Next()
	}
	last := lastAddr(p).Prev() // skip broadcast
	return &Allocator{
		prefix: p,
		host:   host,
		first:  first,
		last:   last,
		next:   first,
		used:   map[netip.Addr]bool{},
	}, nil
}

// lastAddr returns the highest address of p (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Prefix is the bridge network.
func (a *Allocator) Prefix() netip.Prefix { return a.prefix }

// Host is the bridge (host) address, the replicas' default gateway.
func (a *Allocator) Host() netip.Addr { return a.host }

// Allocate returns a free address and marks it used.
func (a *Allocator) Allocate() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	start := a.next
	ip := start
	for {
		if !a.used[ip] {
			a.used[ip] = true
			a.next = a.advance(ip)
			return ip, nil
		}
		ip = a.advance(ip)
		if ip == start {
			return netip.Addr{}, ErrExhausted
		}
	}
}

func (a *Allocator) advance(ip netip.Addr) netip.Addr {
	if ip == a.last {
		return a.first
	}
	return ip.Next()
}

// Release frees an address handed out by Allocate.
func (a *Allocator) Release(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.used, ip)
}

// InUse reports how many addresses are handed out.
func (a *Allocator) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}
