package transfer

import (
	"context"
	"crypto/tls"
	"sync"

	"github.com/camftpd/camftpd/tlspolicy"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sparseFile makes a local sparse file of n bytes (reads as zeros).
func sparseFile(t testing.TB, n int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	f.Close()
	writerGone(t, p)
	return p
}

// TestVsftpdFirstDataConnection: with TLS 1.3 (and 1.2), an upload to
// vsftpd 3.0.3 finishes on its first data connection: one STOR, no 426 in
// the server's log, no resume. (goftp's Store resumed 13 times on 1 GiB.)
func TestVsftpdFirstDataConnection(t *testing.T) {
	// The 426 came at the end of every data connection, so a modest size
	// shows it (the control experiment: without the close sequence, 64 MiB
	// got a 426 from vsftpd).
	size := int64(64 << 20)
	for _, v := range []struct {
		name  string
		max12 bool
	}{{"TLS1.3", false}, {"TLS1.2", true}} {
		t.Run(v.name, func(t *testing.T) {
			tg := startTarget(t, "vsftpd", false)
			cfg := tg.config(t, v.max12)
			var mu sync.Mutex
			var hs []tlspolicy.Negotiated
			cfg.TLS = tg.tlsConfigFunc(t, v.max12, func(n tlspolicy.Negotiated) { mu.Lock(); hs = append(hs, n); mu.Unlock() })
			c := New(cfg)
			defer c.Close()
			p := sparseFile(t, size)
			start := time.Now()
			res, err := c.Upload(context.Background(), Job{LocalPath: p, Remote: "big/file.raw", TempID: "t13"})
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(start)
			st, err := os.Stat(tg.path("big/file.raw"))
			if err != nil || st.Size() != size {
				t.Fatalf("remote file: %v %v", st, err)
			}
			log := tg.real.LogText()
			stors := strings.Count(log, `"STOR `)
			n426 := strings.Count(log, `"426 `)
			rest := strings.Count(log, `"REST `)
			t.Logf("%s: %d MiB in %v (%.0f MB/s): data connections %d, STOR in server log %d, REST %d, 426 %d, resumed from %d, verified %s",
				v.name, size>>20, el.Round(time.Millisecond), float64(size)/el.Seconds()/1e6, res.DataConns, stors, rest, n426, res.ResumedFrom, res.Verified)
			if res.DataConns != 1 || stors != 1 || n426 != 0 || rest != 0 || res.ResumedFrom != 0 {
				t.Fatalf("want 1 data connection, 1 STOR, no REST, no 426; got %d, %d, %d, %d", res.DataConns, stors, rest, n426)
			}
			mu.Lock()
			defer mu.Unlock()
			want := map[bool]uint16{false: tls.VersionTLS13, true: tls.VersionTLS12}[v.max12]
			if len(hs) != 2 || hs[0].Version != want || hs[1].Version != want || hs[0].Resumed || !hs[1].Resumed {
				t.Fatalf("handshakes %+v: want a full %s control handshake and a resumed data one", hs, tls.VersionName(want))
			}
			if !strings.Contains(log, "OK UPLOAD") {
				t.Fatalf("no OK UPLOAD in vsftpd log")
			}
		})
	}
}
