package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
)

// TestTempPaths: the names RemoveTemps may delete are the ones Upload
// writes to, and nothing else.
func TestTempPaths(t *testing.T) {
	got := TempPaths("2026/DCIM/IMG 1.JPG", "ab/c")
	want := []string{"2026/DCIM/.camftpd-ab_c.part", "2026/DCIM/camftpd-ab_c.part"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("TempPaths = %q, want %q", got, want)
	}
	if p := TempPaths("top.jpg", "x"); p[0] != ".camftpd-x.part" {
		t.Fatalf("at the top: %q", p)
	}
	for _, p := range append(got, "a/camftpd-1.part") {
		if !isTempName(p) {
			t.Errorf("%q not taken for a temporary name", p)
		}
	}
	for _, p := range []string{"IMG_1.JPG", "a/.camftpd-.part", "camftpd-1.part.jpg", "x.part", ".camftpd-1.partial"} {
		if isTempName(p) {
			t.Errorf("%q taken for a temporary name", p)
		}
	}
	// A path that is not a temporary name is refused before any connection.
	c := New(Config{Host: "127.0.0.1", Port: 1, TLS: &tls.Config{}})
	n, err := c.RemoveTemps(context.Background(), []string{"a/.camftpd-1.part", "a/IMG_1.JPG"})
	var te *Error
	if n != 0 || !errors.As(err, &te) || te.Class != Permanent {
		t.Fatalf("RemoveTemps of a capture's name: %d settled, %v; want 0 and a permanent error", n, err)
	}
}
