package netns

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAllocatorLayout(t *testing.T) {
	a, err := NewAllocator("10.62.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Host().String(); got != "10.62.0.1" {
		t.Errorf("host = %s, want 10.62.0.1", got)
	}
	ip, err := a.Allocate()
	if err != nil || ip.String() != "10.62.0.10" {
		t.Fatalf("first replica = %s, %v; want 10.62.0.10", ip, err)
	}
	ip2, _ := a.Allocate()
	if ip2.String() != "10.62.0.11" {
		t.Errorf("second replica = %s, want 10.62.0.11", ip2)
	}
	// A non-canonical CIDR is masked.
	b, err := NewAllocator("10.199.3.7/24")
	if err != nil || b.Host().String() != "10.199.3.1" || b.Prefix().String() != "10.199.3.0/24" {
		t.Errorf("masked: host %s prefix %s err %v", b.Host(), b.Prefix(), err)
	}
}

func TestAllocatorNeverReusesInUse(t *testing.T) {
	a, err := NewAllocator("192.168.7.0/27") // replicas .10 .. .30 = 21 addresses
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for i := 0; i < 21; i++ {
		ip, err := a.Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[ip] {
			t.Fatalf("%s handed out twice", ip)
		}
		if ip.String() == "192.168.7.31" || ip.String() == "192.168.7.1" {
			t.Fatalf("handed out broadcast or host address %s", ip)
		}
		seen[ip] = true
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrExhausted) {
		t.Fatalf("full network: err = %v, want ErrExhausted", err)
	}
	a.Release(netip.MustParseAddr("192.168.7.15"))
	ip, err := a.Allocate()
	if err != nil || ip.String() != "192.168.7.15" {
		t.Fatalf("after release: %s, %v", ip, err)
	}
	if a.InUse() != 21 {
		t.Errorf("InUse = %d, want 21", a.InUse())
	}
}

func TestAllocatorNextFit(t *testing.T) {
	a, _ := NewAllocator("10.0.0.0/24")
	first, _ := a.Allocate() // .10
	a.Release(first)
	next, _ := a.Allocate()
	if next == first {
		t.Errorf("freed address %s handed out again at once", first)
	}
}

func TestAllocatorRejects(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0", "fd00::/64", "10.0.0.0/28", "nonsense/8"} {
		if _, err := NewAllocator(bad); err == nil {
			t.Errorf("NewAllocator(%q) accepted", bad)
		}
	}
}
