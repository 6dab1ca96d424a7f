package board

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadBattery reads a fake power_supply folder on the host: good
// values as the kernel writes them, then missing and garbled files, each a
// one-line error naming the file.
func TestReadBattery(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "battery")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(name, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("capacity", "12\n")
	put("status", "Discharging\n")
	b, err := ReadBattery(dir)
	if err != nil || b.Capacity != 12 || b.Status != "Discharging" || !b.OnBattery() {
		t.Fatalf("ReadBattery = %+v, %v; want 12 %% Discharging, on battery", b, err)
	}
	for _, s := range []string{"Charging", "Full", "Not charging"} {
		put("status", s+"\n")
		if b, err := ReadBattery(dir); err != nil || b.OnBattery() {
			t.Errorf("status %q: %+v %v, want read and not on battery", s, b, err)
		}
	}
	put("status", "Unknown\n")
	if b, err := ReadBattery(dir); err != nil || !b.OnBattery() {
		t.Errorf("status Unknown: %+v %v, want on battery", b, err)
	}

	bad := []struct{ capacity, status, want string }{
		{"", "Charging", "capacity: no such file"},
		{"101", "Charging", `holds "101", not a percentage`},
		{"abc", "Charging", `holds "abc", not a percentage`},
		{"50", "", "status: no such file"},
		{"50", "Charging!", `holds "Charging!", not one of`},
	}
	for _, c := range bad {
		os.Remove(filepath.Join(dir, "capacity"))
		os.Remove(filepath.Join(dir, "status"))
		if c.capacity != "" {
			put("capacity", c.capacity+"\n")
		}
		if c.status != "" {
			put("status", c.status+"\n")
		}
		_, err := ReadBattery(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("capacity %q status %q: error %v, want one line containing %q", c.capacity, c.status, err, c.want)
		}
	}
	if _, err := ReadBattery(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing folder: %v", err)
	}
}
