package board

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ipCmd runs iproute2's ip. The tests need root (CAP_NET_ADMIN) and the
// iproute2 package; they fail, never skip, without them.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	path, err := exec.LookPath("ip")
	if err != nil {
		t.Fatalf("iproute2's ip command is missing: install it (apt-get install iproute2); the link tests create a veth pair")
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s(the link tests need root with CAP_NET_ADMIN to create a veth pair: run them as root)",
			strings.Join(args, " "), err, out)
	}
}

// vethPair creates a veth pair, both ends down, removed at the end of the test.
func vethPair(t *testing.T) (a, b string) {
	t.Helper()
	a = fmt.Sprintf("cfl%da", os.Getpid()%100000)
	b = fmt.Sprintf("cfl%db", os.Getpid()%100000)
	// A leftover from a killed run; the link is absent (and ip fails) otherwise.
	_ = exec.Command("ip", "link", "del", a).Run()
	ipCmd(t, "link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() {
		if _, err := net.InterfaceByName(a); err != nil {
			return // deleted by the test
		}
		if out, err := exec.Command("ip", "link", "del", a).CombinedOutput(); err != nil {
			t.Errorf("remove the test's veth pair: ip link del %s: %v: %s", a, err, out)
		}
	})
	return a, b
}

func nextLink(t *testing.T, ch <-chan LinkEvent, want bool, what string) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: link channel closed, want Up=%v", what, want)
		}
		if ev.Up != want {
			t.Fatalf("%s: got %+v, want Up=%v", what, ev, want)
		}
	case <-time.After(within(5 * time.Second)):
		t.Fatalf("%s: no link event within %v, want Up=%v", what, within(5*time.Second), want)
	}
}

func noLink(t *testing.T, ch <-chan LinkEvent, what string) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("%s: unexpected event %+v (events are sent only on change)", what, ev)
	case <-time.After(300 * time.Millisecond): // a window to see a wrong event in, not a wait
	}
}

func TestWatchLinkVeth(t *testing.T) {
	a, b := vethPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := WatchLink(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	nextLink(t, ch, false, "first event, interface down")

	ipCmd(t, "link", "set", a, "up") // admin up, but the peer is down: no carrier
	noLink(t, ch, "up without carrier")
	ipCmd(t, "link", "set", b, "up")
	nextLink(t, ch, true, "carrier came")
	ipCmd(t, "link", "set", b, "down")
	nextLink(t, ch, false, "carrier lost")
	ipCmd(t, "link", "set", b, "up")
	nextLink(t, ch, true, "carrier back")
	ipCmd(t, "link", "set", a, "down")
	nextLink(t, ch, false, "admin down")
	ipCmd(t, "link", "set", a, "up")
	nextLink(t, ch, true, "admin up")

	// A second watcher started now sees the current state first.
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch2, err := WatchLink(ctx2, a)
	if err != nil {
		t.Fatal(err)
	}
	nextLink(t, ch2, true, "first event of a watcher started while up")
	cancel2()

	ipCmd(t, "link", "del", a)
	nextLink(t, ch, false, "interface deleted")

	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(within(2 * time.Second)):
		t.Fatalf("channel not closed within %v of cancel", within(2*time.Second))
	}
	for range ch2 {
	}
}

func TestWatchLinkMissingInterface(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := WatchLink(ctx, "cfnosuch0")
	if err != nil {
		t.Fatal(err)
	}
	nextLink(t, ch, false, "missing interface is down")
}

func TestWatchLinkBadName(t *testing.T) {
	for _, n := range []string{"", "a/b", "averyveryverylongname0"} {
		if _, err := WatchLink(context.Background(), n); err == nil {
			t.Errorf("WatchLink(%q): no error", n)
		}
	}
}

func TestParseLinkMessages(t *testing.T) {
	msg := buildLinkMsg(16 /*RTM_NEWLINK*/, 7, 0x1|0x40 /*UP|RUNNING*/, "wlan0")
	msg = append(msg, buildLinkMsg(16, 8, 0x1, "eth0")...)
	msg = append(msg, buildLinkMsg(17 /*RTM_DELLINK*/, 9, 0x1|0x40, "usb0")...)
	got := parseLinkMessages(msg)
	want := []linkMsg{{"wlan0", 7, true}, {"eth0", 8, false}, {"usb0", 9, false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range msg {
		parseLinkMessages(msg[:i]) // must not panic on truncation
	}
}

func FuzzParseLinkMessages(f *testing.F) {
	f.Add(buildLinkMsg(16, 2, 0x41, "eth0"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { parseLinkMessages(b) })
}
