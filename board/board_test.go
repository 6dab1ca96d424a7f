package board

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLookup(t *testing.T) {
	g, err := Lookup("generic")
	if err != nil {
		t.Fatal(err)
	}
	if g.MediaDir != "/mnt/media/DCIM" || g.StateDir != "/var/lib/camftpd" || g.Interface != "wlan0" || g.StorageMount != "/mnt/media" {
		t.Errorf("generic = %+v", g)
	}
	q, err := Lookup("qemu-virt")
	if err != nil {
		t.Fatal(err)
	}
	if q.MediaDir != "/media/DCIM" || q.StateDir != "/state" || q.Interface != "eth0" || q.StorageMount != "/media" {
		t.Errorf("qemu-virt = %+v", q)
	}
	q.Patterns[0] = "changed"
	if q2, _ := Lookup("qemu-virt"); q2.Patterns[0] == "changed" {
		t.Error("Lookup returns shared pattern slice")
	}
	_, err = Lookup("gopro")
	if err == nil || !strings.Contains(err.Error(), "generic, qemu-virt") {
		t.Errorf("unknown profile error = %v, want the known names listed", err)
	}
}

func TestMatch(t *testing.T) {
	p, _ := Lookup("generic")
	for name, want := range map[string]bool{
		"DSC01234.JPG": true, "/mnt/media/DCIM/100MSDCF/DSC01234.ARW": true, "C0001.MP4": true, "a.hif": true,
		"a.jpg.part": false, ".DSC01234.JPG": false, "DSC01234.XMP": false, "AVIN0001.BNP": false, "": false,
	} {
		if got := p.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestClockSane(t *testing.T) {
	if ClockSane(time.Unix(0, 0)) || ClockSane(time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Error("1970/2023 judged sane")
	}
	if !ClockSane(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
		t.Error("2026 judged insane")
	}
}

func TestWaitClock(t *testing.T) {
	old := clockRecheck
	clockRecheck = 10 * time.Millisecond
	defer func() { clockRecheck = old }()

	var calls atomic.Int32
	now := func() time.Time {
		if calls.Add(1) < 5 {
			return time.Unix(0, 0)
		}
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if err := WaitClock(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 5 {
		t.Fatalf("returned after %d looks at a 1970 clock", calls.Load())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := WaitClock(ctx, func() time.Time { return time.Unix(0, 0) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitClock on a stuck clock = %v, want deadline exceeded", err)
	}
	if err := WaitClock(context.Background(), nil); err != nil {
		t.Fatalf("system clock: %v", err)
	}
}

func TestIndicate(t *testing.T) {
	p, _ := Lookup("qemu-virt")
	if err := p.Indicate(StateBusy); err != nil {
		t.Fatalf("no LED must be a no-op: %v", err)
	}
	dir := t.TempDir()
	for f, v := range map[string]string{"brightness": "0\n", "max_brightness": "255\n", "trigger": "[none] timer heartbeat\n"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.LED = dir
	read := func(f string) string { b, _ := os.ReadFile(filepath.Join(dir, f)); return string(b) }
	if err := p.Indicate(StateIdle); err != nil || read("brightness") != "255" || read("trigger") != "none" {
		t.Fatalf("idle: err=%v brightness=%q trigger=%q", err, read("brightness"), read("trigger"))
	}
	if err := p.Indicate(StateBusy); err != nil || read("trigger") != "timer" {
		t.Fatalf("busy: err=%v trigger=%q", err, read("trigger"))
	}
	if err := p.Indicate(StateError); err != nil || read("trigger") != "heartbeat" {
		t.Fatalf("error: err=%v trigger=%q", err, read("trigger"))
	}
	if err := p.Indicate(StateOff); err != nil || read("brightness") != "0" || read("trigger") != "none" {
		t.Fatalf("off: err=%v brightness=%q", err, read("brightness"))
	}
	if err := p.Indicate("party"); err == nil {
		t.Fatal("unknown state accepted")
	}

	gpio := filepath.Join(dir, "value")
	if err := os.WriteFile(gpio, []byte("0"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.LED = gpio
	if err := p.Indicate(StateBusy); err != nil || read("value") != "1" {
		t.Fatalf("gpio busy: err=%v value=%q", err, read("value"))
	}
	if err := p.Indicate(StateOff); err != nil || read("value") != "0" {
		t.Fatalf("gpio off: err=%v value=%q", err, read("value"))
	}
	p.LED = filepath.Join(dir, "missing")
	if err := p.Indicate(StateIdle); err == nil || !strings.Contains(err.Error(), "LED") {
		t.Fatalf("missing LED: %v", err)
	}
}
