package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// BenchmarkSettleToUploadStart measures, one capture at a time, the time
// from the end of a capture's settle window to its upload start (in-process
// daemon, loopback FTPS server). Run: go test -run '^$' -bench SettleToUpload -benchtime 100x ./daemon
func BenchmarkSettleToUploadStart(b *testing.B) {
	e := newEnv(b)
	cfg := e.writeConfig("200ms", 1)
	var log *slog.Logger
	if os.Getenv("CAMFTPD_BENCH_LOG") != "" {
		log = NewLogger(cfg, os.Stderr)
	}
	d := New(cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	<-d.Ready()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		writeCapture(b, filepath.Join(e.media, "100TEST", fmt.Sprintf("DSC%05d.JPG", i)), 200<<10, uint64(i))
		waitFor(b, 10*time.Second, fmt.Sprintf("capture %d uploaded", i), func() bool {
			c, _ := d.Queue().Counts()
			return c.Done == i+1
		})
	}
	b.StopTimer()
	lat := d.Latencies()
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lat)), "samples")
}

// procStats sums CPU time (utime+stime, clock ticks) and context switches
// into the CPU (schedstat timeslices) over every thread of pid.
func procStats(pid int) (ticks, slices int64, err error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, task := range tasks {
		base := fmt.Sprintf("/proc/%d/task/%s/", pid, task.Name())
		if b, err := os.ReadFile(base + "schedstat"); err == nil {
			f := strings.Fields(string(b))
			if len(f) == 3 {
				n, _ := strconv.ParseInt(f[2], 10, 64)
				slices += n
			}
		}
		if b, err := os.ReadFile(base + "stat"); err == nil {
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
	}
	return ticks, slices, nil
}

func procKB(pid int, field string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			n, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return n
		}
	}
	return -1
}

// BenchmarkResources runs the real binary and reports idle wake-ups and CPU
// over 5 s, RSS idle and the peak RSS (VmHWM) under load (300 captures of
// 200 KB-1 MB plus a 100 MB movie).
// Run: go test -run '^$' -bench Resources -benchtime 1x ./daemon
func BenchmarkResources(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newEnv(b)
		e.writeConfig("300ms", 1)
		bin := buildBinary(b)
		c := startChild(b, bin, e.cfgPath)
		pid := c.cmd.Process.Pid
		waitFor(b, 5*time.Second, "the daemon's status socket", func() bool { _, err := sockStatus(e.sock); return err == nil })
		idle := func(label string) {
			// Measurement windows, not waits: 1 s for what came before
			// to wind down, then the 5 s whose wakeups and CPU are measured.
			time.Sleep(time.Second)
			t0, s0, _ := procStats(pid)
			time.Sleep(5 * time.Second)
			t1, s1, _ := procStats(pid)
			b.ReportMetric(float64(s1-s0)/5, label+"-wakeups/s")
			b.ReportMetric(float64(t1-t0)*10/5, label+"-cpu-ms/s")
		}
		idle("idle")
		b.ReportMetric(float64(procKB(pid, "VmRSS")), "idle-rss-KiB")
		for j := range 300 {
			writeCapture(b, filepath.Join(e.media, "100TEST", fmt.Sprintf("DSC%05d.JPG", j)), 200<<10+(j%5)*200<<10, uint64(j))
			time.Sleep(33 * time.Millisecond) // the camera's shot rate (30/s) under test
		}
		writeCapture(b, filepath.Join(e.media, "100TEST", "C0001.MP4"), 100<<20, 7)
		waitFor(b, 2*time.Minute, "301 done", func() bool {
			st, err := sockStatus(e.sock)
			return err == nil && st.Queue.Done == 301
		})
		b.ReportMetric(float64(procKB(pid, "VmHWM")), "load-hwm-KiB")
		idle("after-load")
		b.ReportMetric(float64(procKB(pid, "VmRSS")), "after-load-rss-KiB")
	}
}

// BenchmarkFirstStartBacklog measures the first start of auto-upload on a
// card that already holds 2,000 shots (backlog = "new"): the start scan
// fingerprints and holds each of them, then records the baseline; and the
// next start, where every shot is known. Run:
// go test -run '^$' -bench FirstStartBacklog -benchtime 1x ./daemon
func BenchmarkFirstStartBacklog(b *testing.B) {
	const shots = 2000
	media := b.TempDir()
	for i := range shots {
		writeCapture(b, filepath.Join(media, fmt.Sprintf("%dMSDCF", 100+i/1000), fmt.Sprintf("DSC%05d.JPG", i)), 100<<10+i, uint64(i))
	}
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(media, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		state := b.TempDir()
		for _, run := range []string{"first", "next"} {
			q, err := queue.Open(filepath.Join(state, "queue.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			w := newWatcher(&Config{MediaDir: media, Settle: time.Second, Include: DefaultPatterns, RawJPEG: "both"}, q, slog.New(slog.DiscardHandler))
			start := time.Now()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.run(ctx) }()
			ran := make(chan struct{})
			w.hooks <- func() { close(ran) } // runs once the start scan is over
			<-ran
			b.ReportMetric(time.Since(start).Seconds(), run+"-start-s")
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if c, _ := q.Counts(); c.Held != shots {
				b.Fatalf("%s start: %+v, want %d held", run, c, shots)
			}
			q.Close()
		}
	}
}
