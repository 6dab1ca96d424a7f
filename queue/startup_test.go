package queue

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envStartup makes the test binary a start-up child: open the queue named
// by it, rescan the media folder in envStartupMedia the way the daemon's
// watcher does (one WalkDir, one ScanDir per folder) and print the figures.
const (
	envStartup      = "CAMFTPD_QUEUE_STARTUP_DB"
	envStartupMedia = "CAMFTPD_QUEUE_STARTUP_MEDIA"
)

type startupFigures struct {
	OpenMS, RescanMS         float64
	Files, Unknown           int
	HWMKiB, AnonKiB, FileKiB int64
	OpenHWMKiB               int64 // peak RSS when Open returned
}

// procStatus reads a "VmHWM:  1234 kB" style field of /proc/self/status.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

func startupChild() int {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(75) // as cmd/camftpd runs the daemon
	}
	var fig startupFigures
	t0 := time.Now()
	q, err := Open(os.Getenv(envStartup), &Options{Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer q.Close()
	fig.OpenMS = float64(time.Since(t0).Microseconds()) / 1000
	fig.OpenHWMKiB = procStatus("VmHWM")
	t1 := time.Now()
	root := os.Getenv(envStartupMedia)
	// One folder at a time, as the daemon's rescan does: memory follows the
	// largest folder, not the card.
	var scanDir func(abs, rel string) error
	scanDir = func(abs, rel string) error {
		d, err := os.Open(abs)
		if err != nil {
			return err
		}
		defer d.Close()
		var files []FileInfo
		var subdirs []string
		for {
			batch, err := d.ReadDir(512) // in batches, as the daemon reads
			for _, e := range batch {
				if e.IsDir() {
					subdirs = append(subdirs, e.Name())
					continue
				}
				st, err := e.Info()
				if err != nil {
					return err
				}
				files = append(files, FileInfo{Name: e.Name(), Size: st.Size(), ModTime: st.ModTime()})
			}
			if len(batch) == 0 || errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		fig.Files += len(files)
		if len(files) > 0 {
			unknown, err := q.ScanDir(rel, files, func(name string) ([]byte, error) {
				return nil, fmt.Errorf("fingerprint of %s/%s read: every hint should match", rel, name)
			})
			if err != nil {
				return err
			}
			fig.Unknown += len(unknown)
		}
		for _, d := range subdirs {
			if err := scanDir(filepath.Join(abs, d), path.Join(rel, d)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := scanDir(root, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fig.RescanMS = float64(time.Since(t1).Microseconds()) / 1000
	fig.HWMKiB, fig.AnonKiB, fig.FileKiB = procStatus("VmHWM"), procStatus("RssAnon"), procStatus("RssFile")
	if err := json.NewEncoder(os.Stdout).Encode(fig); err != nil {
		fmt.Fprintln(os.Stderr, "write the figures:", err)
		return 2
	}
	return 0
}

// cardRel names shot i of a card: 10,000 files a folder, as DCF numbers them.
func cardRel(i int) string {
	return fmt.Sprintf("DCIM/%03dCAM/DSC%05d.JPG", 100+i/10000, i%10000)
}

// fillCard writes n sparse files (the content is never read: every hint
// matches) and a queue in which each is a done item.
func fillCard(b *testing.B, dir string, n int) (dbPath, media string) {
	media = filepath.Join(dir, "media")
	mtime := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		p := filepath.Join(media, cardRel(i))
		if i%10000 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		f, err := os.Create(p)
		if err == nil {
			err = f.Truncate(int64(4<<20 + i*37%(8<<20)))
			f.Close()
		}
		if err == nil {
			err = os.Chtimes(p, mtime.Add(time.Duration(i)*2*time.Second), mtime.Add(time.Duration(i)*2*time.Second))
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	dbPath = filepath.Join(dir, "q.db")
	q := openT(b, dbPath, nil)
	for i := 0; i < n; i += 1000 {
		err := q.update("fill", "", func(tx *txn) error {
			for j := i; j < min(i+1000, n); j++ {
				st, err := os.Stat(filepath.Join(media, cardRel(j)))
				if err != nil {
					return err
				}
				c := Capture{Rel: cardRel(j), Size: st.Size(), ModTime: st.ModTime(), Fingerprint: fpOf(cardRel(j))}
				_, id, err := tx.find(c)
				if err != nil {
					return err
				}
				seq, _ := tx.bucket(bucketItems).NextSequence()
				if err := tx.insert(&rec{Item: Item{ID: id, Seq: seq, Capture: c, State: Done, Attempts: 1,
					Remote: "/upload/" + c.Rel, Hash: fmt.Sprintf("crc32c:%08x", j), Enqueued: mtime, DoneAt: mtime}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	q.Close()
	return dbPath, media
}

// BenchmarkStartup250k: a card with 250,000 delivered shots (25 folders of
// 10,000). Each iteration starts a fresh process that opens the queue and
// rescans the card as the daemon does at start; reported: queue file size,
// open time, rescan time and the process's peak RSS (and its anonymous and
// file-backed parts at the end). The first rescan after the fill stores
// the folder digests; the iterations after it are the daily case.
func BenchmarkStartup250k(b *testing.B) {
	n := 250000
	if v, err := strconv.Atoi(os.Getenv("CAMFTPD_BENCH_SHOTS")); err == nil && v > 0 {
		n = v
	}
	dbPath, media := fillCard(b, b.TempDir(), n)
	fi, _ := os.Stat(dbPath)
	run := func() startupFigures {
		argv, err := childArgv()
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), envStartup+"="+dbPath, envStartupMedia+"="+media)
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("start-up child: %v\n%s", err, errb.String())
		}
		var fig startupFigures
		if err := json.NewDecoder(bufio.NewReader(strings.NewReader(string(out)))).Decode(&fig); err != nil {
			b.Fatalf("child output %q: %v", out, err)
		}
		if fig.Files != n || fig.Unknown != 0 {
			b.Fatalf("rescan saw %d files, %d unknown; want %d and 0", fig.Files, fig.Unknown, n)
		}
		return fig
	}
	first := run()
	b.Logf("first start after the fill (stores the folder digests): open %.0f ms (peak RSS then %.1f MiB), rescan %.0f ms, peak RSS %.1f MiB (at the end: anonymous %.1f MiB, file-backed %.1f MiB)",
		first.OpenMS, float64(first.OpenHWMKiB)/1024, first.RescanMS, float64(first.HWMKiB)/1024, float64(first.AnonKiB)/1024, float64(first.FileKiB)/1024)
	b.ResetTimer()
	var last startupFigures
	for i := 0; i < b.N; i++ {
		last = run()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "queue-MiB")
	b.ReportMetric(last.OpenMS, "open-ms")
	b.ReportMetric(last.RescanMS, "rescan-ms")
	b.ReportMetric(float64(last.HWMKiB)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(last.OpenHWMKiB)/1024, "open-peak-RSS-MiB")
	b.ReportMetric(float64(last.AnonKiB)/1024, "anon-MiB")
	b.ReportMetric(float64(last.FileKiB)/1024, "file-MiB")
}
