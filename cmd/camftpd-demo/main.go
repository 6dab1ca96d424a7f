// Command camftpd-demo shows camftpd at work in under a minute, with nothing
// to set up: it starts an in-process FTPS server (self-signed CA) on
// loopback, writes a config, runs the daemon, drops a burst of RAW+JPEG pairs
// and a movie into a temporary media folder as a camera would, shows them
// arriving, checks every file's SHA-256 on the server side and exits 0.
//
// It links the test FTPS server, so it is a separate command: the firmware
// binary (cmd/camftpd) never does.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/camftpd/camftpd/daemon"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "camftpd-demo:", err)
		os.Exit(1)
	}
}

type opts struct {
	pairs   int
	videoMB int
	workers int
	keep    bool
	verbose bool
}

func run(ctx context.Context) error {
	var o opts
	flag.IntVar(&o.pairs, "pairs", 12, "RAW+JPEG pairs in the burst")
	flag.IntVar(&o.videoMB, "video-mb", 80, "size of the movie file in MB")
	flag.IntVar(&o.workers, "workers", 2, "upload workers")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (media, server root, config, log)")
	flag.BoolVar(&o.verbose, "v", false, "show the daemon's log on stderr")
	flag.Parse()
	started := time.Now()

	tmp, err := os.MkdirTemp("", "camftpd-demo-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("kept %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	media := filepath.Join(tmp, "media", "DCIM")
	root := filepath.Join(tmp, "server")
	for _, d := range []string{media, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	srv, err := ftpstest.Start(ftpstest.Options{Root: root, User: "camera", Password: "demo-password"})
	if err != nil {
		return fmt.Errorf("starting the FTPS server: %w", err)
	}
	defer srv.Close()
	caPath := filepath.Join(tmp, "server-ca.pem")
	if err := os.WriteFile(caPath, srv.CAPEM, 0o644); err != nil {
		return err
	}
	cfgPath := filepath.Join(tmp, "camftpd.toml")
	cfgText := fmt.Sprintf(`# written by camftpd-demo
media_dir = %q
state_dir = %q
status_socket = %q
storage_mount = ""   # no card to follow in the demo
interface = ""       # no link to follow in the demo
settle = "500ms"
workers = %d

[[server]]
name = "demo"
host = %q
port = %d
user = "camera"
password_file = %q
ca_files = [%q]
remote_template = "{dir}/{name}"
tls_mode = "compatible"
`, media, filepath.Join(tmp, "state"), filepath.Join(tmp, "camftpd.sock"), o.workers, srv.Host, srv.Port,
		filepath.Join(tmp, "password"), caPath)
	if err := os.WriteFile(filepath.Join(tmp, "password"), []byte("demo-password\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	cfg, err := daemon.LoadConfig(cfgPath)
	if err != nil {
		return err
	}

	logFile, err := os.Create(filepath.Join(tmp, "camftpd.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	var logw io.Writer = logFile
	if o.verbose {
		logw = io.MultiWriter(logFile, os.Stderr)
	}
	d := daemon.New(cfg, daemon.NewLogger(cfg, logw))

	fmt.Printf("camftpd demo\n")
	fmt.Printf("  FTPS server   %s (in-process, self-signed CA, user camera)\n", srv.Addr)
	fmt.Printf("  media folder  %s\n", media)
	fmt.Printf("  config        %s\n", cfgPath)
	fmt.Printf("  status        %s (try: camftpd status -socket ... while it runs)\n\n", cfg.StatusSocket)

	dctx, stopDaemon := context.WithCancel(ctx)
	defer stopDaemon()
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(dctx) }()
	select {
	case <-d.Ready():
	case err := <-runErr:
		return fmt.Errorf("daemon: %w", err)
	}
	events, unsub := d.Subscribe()
	defer unsub()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		printEvents(dctx, os.Stdout, events)
	}()

	// The camera: a burst of RAW+JPEG pairs, then a movie written over ~2 s.
	total := 0
	for i := range o.pairs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		base := filepath.Join(media, "100DEMO", fmt.Sprintf("DSC%05d", i+1))
		if err := writeFile(base+".ARW", (8+i%4)<<20, 0); err != nil {
			return err
		}
		if err := writeFile(base+".JPG", (2+i%3)<<20, 0); err != nil {
			return err
		}
		total += 2
		time.Sleep(100 * time.Millisecond) // 10 shots per second
	}
	if o.videoMB > 0 {
		if err := writeFile(filepath.Join(media, "101DEMO", "C0001.MP4"), o.videoMB<<20, 2*time.Second); err != nil {
			return err
		}
		total++
	}

	deadline := time.NewTimer(50 * time.Second)
	defer deadline.Stop()
	q := d.Queue()
	for {
		c, err := q.Counts()
		if err != nil {
			return err
		}
		if c.Done == total && c.Pending+c.InFlight+c.Retry == 0 {
			break
		}
		if c.Parked > 0 {
			return fmt.Errorf("%d capture(s) parked: see %s", c.Parked, logFile.Name())
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("not everything arrived within 50 s (%+v); log: %s", c, logFile.Name())
		case err := <-runErr:
			return fmt.Errorf("daemon stopped: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	st := d.Status()
	lat := d.Latencies()
	items, err := q.List("done")
	if err != nil {
		return err
	}
	stopDaemon()
	if err := <-runErr; err != nil {
		return err
	}
	<-printed

	// Check on the server side: every capture there once, same SHA-256,
	// nothing else (no temporary or duplicate file).
	fmt.Printf("\nverifying on the server side (%s)\n", root)
	local, err := hashTree(media)
	if err != nil {
		return err
	}
	remote, err := hashTree(root)
	if err != nil {
		return err
	}
	var bad []string
	var bytes int64
	for rel, h := range local {
		r, ok := remote[rel]
		switch {
		case !ok:
			bad = append(bad, "missing: "+rel)
		case r.sum != h.sum:
			bad = append(bad, "sha256 differs: "+rel)
		}
		bytes += h.size
	}
	for rel := range remote {
		if _, ok := local[rel]; !ok {
			bad = append(bad, "unexpected on server: "+rel)
		}
	}
	for _, it := range items {
		if h, ok := local[it.Capture.Rel]; ok && strings.HasPrefix(it.Hash, "sha256:") && it.Hash != "sha256:"+h.sum {
			bad = append(bad, "queue sha256 differs: "+it.Capture.Rel)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return errors.New(strings.Join(bad, "; "))
	}
	rels := make([]string, 0, len(local))
	for rel := range local {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		fmt.Printf("  ok  %-24s %9s  sha256 %s…\n", rel, human(local[rel].size), local[rel].sum[:16])
	}
	fmt.Printf("\nsummary: %d files, %s, all on the server once with matching SHA-256\n", len(local), human(bytes))
	if st.TLS != nil {
		fmt.Printf("  TLS        %s %s (%s)%s\n", st.TLS.Version, st.TLS.Suite, st.TLS.Class, warn(st.TLS.Warning))
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Printf("  latency    settle window end -> upload start: p50 %v, max %v (settle %v)\n",
			lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), cfg.Settle)
	}
	fmt.Printf("  total time %.1f s\n", time.Since(started).Seconds())
	return nil
}

func warn(w string) string {
	if w == "" {
		return ""
	}
	return " warning: " + w
}

// writeFile writes size random bytes in 1 MiB chunks spread over dur.
func writeFile(path string, size int, dur time.Duration) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r := rand.NewChaCha8(sha256.Sum256([]byte(path)))
	buf := make([]byte, 1<<20)
	chunks := (size + len(buf) - 1) / len(buf)
	for left := size; left > 0; {
		n := min(left, len(buf))
		_, _ = r.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
		if dur > 0 {
			time.Sleep(dur / time.Duration(chunks))
		}
	}
	return f.Close()
}

type fileHash struct {
	sum  string
	size int64
}

func hashTree(root string) (map[string]fileHash, error) {
	out := map[string]fileHash{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = fileHash{hex.EncodeToString(h.Sum(nil)), n}
		return nil
	})
	return out, err
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// printEvents shows the daemon's progress stream on the terminal (w);
// file names and server text are escaped (daemon.EscapeText).
func printEvents(ctx context.Context, w io.Writer, events <-chan daemon.Event) {
	esc := daemon.EscapeText
	lastStep := map[string]int{}
	t0 := time.Now()
	ts := func() string { return fmt.Sprintf("%6.2fs", time.Since(t0).Seconds()) }
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			switch e.Type {
			case "queued":
				fmt.Fprintf(w, "%s  queued    %-24s %9s\n", ts(), esc(e.File), human(e.Total))
			case "held": // not sent unless asked: backlog = "new", only_protected
				fmt.Fprintf(w, "%s  held      %-24s %9s  (%s)\n", ts(), esc(e.File), human(e.Total), esc(e.Reason))
			case "start":
				fmt.Fprintf(w, "%s  upload    %-24s %9s  (%.1f ms after settle)\n", ts(), esc(e.File), human(e.Total), e.LatencyMS)
			case "progress":
				if e.Total < 16<<20 {
					continue
				}
				step := int(e.Percent / 20)
				if step > lastStep[e.ID] && e.Percent < 100 {
					lastStep[e.ID] = step
					fmt.Fprintf(w, "%s    %-30s %5.1f%%  %s/s\n", ts(), esc(e.File), e.Percent, human(int64(e.Rate)))
				}
			case "done":
				fmt.Fprintf(w, "%s  done      %-24s %9s  %s/s\n", ts(), esc(e.File), human(e.Total), human(int64(e.Rate)))
			case "retry", "parked", "vanished", "blocked":
				fmt.Fprintf(w, "%s  %-9s %-24s %s\n", ts(), e.Type, esc(e.File), esc(e.Error))
			case "tls":
				fmt.Fprintf(w, "%s  tls       %s %s\n", ts(), esc(e.State), esc(e.Error))
			}
		}
	}
}
