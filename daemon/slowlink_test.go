package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/internal/linkemu"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// slowLinkIP is the link emulator's loopback address (as in the benchmarks).
const slowLinkIP = "127.0.0.2"

// startSlowLink runs vsftpd on 127.0.0.1 behind the benchmarks' link
// emulator on slowLinkIP at rate bytes per second (10 ms RTT), and returns
// the [[server]] table that reaches it through the emulator.
func startSlowLink(t *testing.T, rate float64) (server string, link *linkemu.Link) {
	t.Helper()
	ca, err := ftpstest.NewCA(false)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueCert(ftpstest.CertOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP(slowLinkIP)}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{CA: ca, Cert: cert, NoLog: true, AnyPassword: true,
		PasvAddress: slowLinkIP, PasvCount: 16, PasvFreeOn: []string{slowLinkIP}})
	if err != nil {
		t.Fatalf("vsftpd: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	ports := []int{r.Port}
	for p := r.PasvPorts[0]; p <= r.PasvPorts[1]; p++ {
		ports = append(ports, p)
	}
	link, err = linkemu.Start(slowLinkIP, "127.0.0.1", rate, 10*time.Millisecond, 20*time.Millisecond, ports)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Close)
	return fmt.Sprintf("[[server]]\nname = \"slow\"\nhost = %q\nport = %d\nuser = %q\npassword = %q\nca_files = [%q]\nremote_template = \"{dir}/{name}\"\ntimeout = \"10s\"\n",
		slowLinkIP, r.Port, r.User, r.Password, r.CAFile), link
}

// TestSlowLinkMoviesWait: the real upload throttled to 1 MB/s by the link
// emulator, below slow_link 2 MB/s: the daemon measures the link from its
// own uploads, a movie queued behind a burst of stills waits while stills
// are pending or uploading (the status says why), and goes as soon as
// the still queue is empty. Without the policy the second worker starts
// the movie while the last still is still uploading.
func TestSlowLinkMoviesWait(t *testing.T) {
	t.Parallel()
	server, link := startSlowLink(t, 1e6)
	dir := t.TempDir()
	media, stage := filepath.Join(dir, "media", "DCIM"), filepath.Join(dir, "media", "stage")
	for _, p := range []string{filepath.Join(media, "100CAM"), stage} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "s.sock")
	cfgPath := filepath.Join(dir, "camftpd.toml")
	src := fmt.Sprintf("media_dir = %q\nstate_dir = %q\nstatus_socket = %q\nstorage_mount = \"\"\ninterface = \"\"\npower_supply = \"\"\n"+
		"settle = \"50ms\"\nworkers = 2\nbacklog = \"all\"\nslow_link = \"2MB/s\"\nlog_level = \"debug\"\n%s",
		media, filepath.Join(dir, "state"), sock, server)
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	events := streamEvents(t, sock)

	// A first still: the daemon learns the link's speed from it.
	writeCapture(t, filepath.Join(media, "100CAM/DSC00000.JPG"), 1<<20, 100)
	waitFor(t, 20*time.Second, "the first still sent", func() bool { return counts(t, d.Queue()).Done == 1 })
	if bps := d.Status().Power.LinkBps; bps < 0.5e6 || bps > 1.5e6 {
		t.Fatalf("measured link %.0f B/s, want about 1e6 (the emulator's rate)", bps)
	}

	// A burst: five stills of 600 KiB and one of 1.5 MiB, then a movie,
	// each renamed into place; two workers upload the stills side by side.
	var stills []string
	for i := 1; i <= 6; i++ {
		stills = append(stills, fmt.Sprintf("100CAM/DSC%05d.JPG", i))
	}
	const movie = "100CAM/MOV00007.MP4"
	for i, rel := range append(append([]string(nil), stills...), movie) {
		tmp := filepath.Join(stage, filepath.Base(rel))
		size := 600 << 10
		if i == len(stills)-1 {
			size = 1536 << 10 // the last still outlasts the one beside it: the movie waits for it
		}
		writeCapture(t, tmp, size, uint64(i))
		if err := os.Rename(tmp, filepath.Join(media, rel)); err != nil {
			t.Fatal(err)
		}
	}
	sawWhy := ""
	waitFor(t, 30*time.Second, "every shot sent", func() bool {
		if w := d.Status().Power.Waiting; strings.HasPrefix(w, "movies wait: link ") && sawWhy == "" {
			sawWhy = w
		}
		return counts(t, d.Queue()).Done == 8
	})
	up, _ := link.Bytes()
	bps := d.Status().Power.LinkBps
	t.Logf("status while the movie waited: %q; %d bytes through the emulator; link measured after the burst %.0f B/s", sawWhy, up, bps)
	if bps < 0.7e6 || bps > 1.3e6 {
		t.Errorf("measured link after two workers shared it %.0f B/s, want about 1e6 (the sum of the two, not one's share)", bps)
	}
	if !strings.Contains(sawWhy, "is below slow_link 2 MB/s") {
		t.Errorf("the status never said why the movie waits (saw %q)", sawWhy)
	}

	// In the event stream: the movie starts only after every still is done.
	lastStillDone, movieStart := -1, -1
	for i, ev := range events.all() {
		switch {
		case ev.Type == "done" && strings.HasSuffix(ev.File, ".JPG"):
			lastStillDone = i
		case ev.Type == "start" && ev.File == movie && movieStart < 0:
			movieStart = i
		}
	}
	if movieStart < 0 || lastStillDone < 0 || movieStart < lastStillDone {
		var seq []string
		for _, ev := range events.all() {
			if ev.Type == "start" || ev.Type == "done" {
				seq = append(seq, ev.Type+" "+filepath.Base(ev.File))
			}
		}
		t.Fatalf("the movie started before the stills were done (or never): %s", strings.Join(seq, ", "))
	}
}
