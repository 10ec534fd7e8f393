package netns

import (
	"net"
	"reflect"
	"testing"
)

func TestParseNetnsList(t *testing.T) {
	out := "ads-0a1b2c3d (id: 3)\nother\nads-deadbeef\n\n"
	got := filterPrefix(parseNetnsList(out), "ads-")
	want := []string{"ads-0a1b2c3d", "ads-deadbeef"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseLinkList(t *testing.T) {
	out := `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT
4: ads0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT
7: ads-0a1b2c3dh@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master ads0
`
	got := filterPrefix(parseLinkList(out), "ads-")
	if !reflect.DeepEqual(got, []string{"ads-0a1b2c3dh"}) {
		t.Errorf("got %v", got)
	}
	all := parseLinkList(out)
	if !reflect.DeepEqual(all, []string{"lo", "ads0", "ads-0a1b2c3dh"}) {
		t.Errorf("all = %v", all)
	}
}

func TestNewValidatesNames(t *testing.T) {
	a, _ := NewAllocator("10.62.0.0/16")
	for _, c := range []struct{ prefix, bridge string }{
		{"", "ads0"}, {"toolong-", "ads0"}, {"Ads-", "ads0"}, {"1ab-", "ads0"},
		{"ads", "ads0"}, // the sweep would delete the bridge
		{"ads-", ""},
	} {
		if _, err := New(c.prefix, c.bridge, a); err == nil {
			t.Errorf("New(%q, %q) accepted", c.prefix, c.bridge)
		}
	}
	m, err := New("ads-", "ads0", a)
	if err != nil {
		t.Skipf("ip not available: %v", err)
	}
	id := "0a1b2c3d"
	for _, name := range []string{m.hostVeth(id), m.peerVeth(id), m.Namespace(id)} {
		if len(name) > 15 {
			t.Errorf("%q is longer than an interface name may be", name)
		}
	}
	if got := m.ExecArgs(id, []string{"python3", "x.py"}); !reflect.DeepEqual(got[1:], []string{"netns", "exec", "ads-0a1b2c3d", "python3", "x.py"}) {
		t.Errorf("ExecArgs = %v", got)
	}
}

func TestBridgeMACIsStableLocalAndUnicast(t *testing.T) {
	a, b := BridgeMAC("ads0"), BridgeMAC("ads1")
	if a != BridgeMAC("ads0") {
		t.Errorf("not stable: %s then %s", a, BridgeMAC("ads0"))
	}
	if a == b {
		t.Errorf("two bridges share %s", a)
	}
	hw, err := net.ParseMAC(a)
	if err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if hw[0]&0x02 == 0 || hw[0]&0x01 != 0 {
		t.Errorf("%s must be locally administered and unicast", a)
	}
}
