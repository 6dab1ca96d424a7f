package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/camftpd/camftpd/internal/linkemu"
	"github.com/camftpd/camftpd/tlspolicy"
)

// The emulated link: 20 ms round trip, 100 Mbit/s each way, one round trip
// of queue (a Wi-Fi-like link).
const (
	linkIP    = "127.0.0.2"
	linkRate  = 100e6 / 8 // bytes per second
	linkRTT   = 20 * time.Millisecond
	linkQueue = 20 * time.Millisecond
)

// sizes of the workloads, full and -quick.
type sizes struct {
	BigSize            int64 // (a)
	BurstN             int   // (b)
	BurstMin, BurstMax int64
	SmallN             int // (c)
	SmallSize          int64
	LinkN              int // (d): the first LinkN files of the burst
	Shots              int // latency
	Runs               int
	// BigRuns: runs of (a). One file on one data connection averages
	// nothing out, and its CPU figure swung by ±25 % between 3-run
	// medians; 7 runs cost about 2 more minutes.
	BigRuns int
}

var full = sizes{
	BigSize: 1 << 30,
	BurstN:  300, BurstMin: 4_000_000, BurstMax: 12_000_000,
	SmallN: 1000, SmallSize: 100_000,
	LinkN: 40, Shots: 60, Runs: 3, BigRuns: 7,
}

var quick = sizes{
	BigSize: 64 << 20,
	BurstN:  20, BurstMin: 4_000_000, BurstMax: 12_000_000,
	SmallN: 50, SmallSize: 100_000,
	LinkN: 3, Shots: 5, Runs: 1, BigRuns: 1,
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	quick     bool
	runs      int
	tools     string
	workloads string
	work      string
	out       string
	png       string
	linkN     int
	shots     int
	workers   int
	serve     bool
	serverLog bool
	repeatMax time.Duration
	args      []string
}

func run() error {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "smoke run: small sizes, 1 repetition (< 2 min)")
	flag.IntVar(&o.runs, "runs", 0, "repetitions per tool and workload (medians are reported); default 3 (7 on (a)), 1 with -quick")
	flag.StringVar(&o.tools, "tools", strings.Join(allTools[:5], ","), "tools to measure ("+strings.Join(allTools, ", ")+"); on (d), "+toolCurl12+" and "+toolCamftpd4+" are added when curl and camftpd are measured")
	flag.StringVar(&o.workloads, "workloads", "a,b,c,d,lat", "workloads: a (one big file), b (burst), c (small files), d (burst over the emulated link), lat (single-shot latency), ot (overtaking: the big file while JPEG shots arrive, over the emulated link; not in the default set)")
	flag.StringVar(&o.work, "work", "/tmp/camftpd-bench", "work folder (staged files are kept there and reused)")
	flag.StringVar(&o.out, "md", "", "write the results (markdown) here; default: BENCHMARKS.md's results section for a full run, WORK/results.md with -quick")
	flag.StringVar(&o.png, "png", "", "write the burst timeline plot here; default: docs/bench-burst.png for a full run, WORK/bench-burst.png with -quick")
	flag.IntVar(&o.linkN, "link-files", 0, "files of the burst sent over the emulated link (d); default 40, 3 with -quick")
	flag.IntVar(&o.shots, "shots", 0, "single shots for the latency run; default 60, 5 with -quick")
	flag.IntVar(&o.workers, "camftpd-workers", 0, "camftpd workers setting (0 = the daemon's default)")
	flag.DurationVar(&o.repeatMax, "repeat-limit", time.Minute, "a tool whose first run on a workload takes longer than this is not repeated (its many files already average out)")
	flag.BoolVar(&o.serverLog, "server-log", false, "debugging: vsftpd logs every command and reply to WORK/server/vsftpd.log (slows the server)")
	flag.BoolVar(&o.serve, "serve", false, "debugging: start the server and the link emulator, print their addresses, wait for ^C")
	flag.Parse()
	o.args = os.Args[1:]
	sz := full
	if o.quick {
		sz = quick
	}
	if o.runs > 0 {
		sz.Runs, sz.BigRuns = o.runs, o.runs
	}
	if o.linkN > 0 {
		sz.LinkN = o.linkN
	}
	if o.shots > 0 {
		sz.Shots = o.shots
	}
	if sz.LinkN > sz.BurstN {
		sz.LinkN = sz.BurstN
	}
	if o.out == "" {
		o.out = "BENCHMARKS.md"
		if o.quick {
			o.out = filepath.Join(o.work, "results.md")
		}
	}
	if o.png == "" {
		o.png = filepath.Join("docs", "bench-burst.png")
		if o.quick {
			o.png = filepath.Join(o.work, "bench-burst.png")
		}
	}
	tools := splitList(o.tools)
	works := map[string]bool{}
	for _, w := range splitList(o.workloads) {
		works[w] = true
	}
	for w := range works {
		if !contains([]string{"a", "b", "c", "d", "lat", "ot"}, w) {
			return fmt.Errorf("unknown workload %q (known: a, b, c, d, lat, ot)", w)
		}
	}
	for _, t := range tools {
		if !contains(allTools, t) {
			return fmt.Errorf("unknown tool %q (known: %s)", t, strings.Join(allTools, ", "))
		}
	}

	// A closed stdout (bench | head) must not kill the bench before it has
	// stopped vsftpd and removed its PAM file.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	started := time.Now()
	log := io.Writer(os.Stdout)
	m := machineInfo()
	m.CalStart = calibrate()
	fmt.Fprintf(log, "bench: %s, %d cores, load %s, CPU yardstick %.0f ms; work folder %s\n", m.CPU, m.Cores, m.LoadStart, float64(m.CalStart)/1e6, o.work)

	for _, bin := range []string{"curl", "lftp", "bash", timeBin} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: install it (apt-get install %s)", bin, filepath.Base(bin))
		}
	}
	if err := os.MkdirAll(filepath.Join(o.work, "bin"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(o.work, 0o755); err != nil {
		return err
	}
	e := &env{work: o.work, drop: filepath.Join(o.work, "drop"), log: log, linkIP: linkIP}
	if o.workers > 0 {
		e.camExtra = fmt.Sprintf("workers = %d", o.workers)
	}
	if err := os.MkdirAll(e.drop, 0o755); err != nil {
		return err
	}
	e.naive = filepath.Join(o.work, "bin", "goftp-naive")
	if err := goBuild(e.naive, "./scripts/benchkit/naive", "-ldflags", "-s -w"); err != nil {
		return err
	}
	var notes []string
	if contains(tools, toolCamftpd) || contains(tools, toolCamftpd4) {
		e.camftpd = filepath.Join(o.work, "bin", "camftpd")
		tags := "nethttpomithttp2" // as the firmware binary is built (Makefile CROSS_FLAGS)
		if os.Getenv("CAMFTPD_CPUPROFILE") != "" || os.Getenv("CAMFTPD_MEMPROFILE") != "" {
			tags += ",profile" // cmd/camftpd/profile.go: the profiler is not in the firmware binary
		}
		flags := []string{"-tags", tags, "-ldflags", "-s -w -X github.com/camftpd/camftpd/daemon.Version=" + gitVersion()}
		if err := goBuild(e.camftpd, "./cmd/camftpd", flags...); err != nil {
			fmt.Fprintf(log, "bench: camftpd does not build, measuring the peers only: %v\n", err)
			notes = append(notes, "camftpd did not build: "+tlspolicy.OneLine(err.Error()))
			tools = remove(remove(tools, toolCamftpd), toolCamftpd4)
		} else {
			m.Camftpd = cmdVersion(e.camftpd, "version")
		}
	}

	// Stage the files once (kept in the work folder for later runs).
	stageDir := filepath.Join(o.work, "stage")
	big := &fileSet{Tag: "vid", Prefix: "VID_", Ext: ".MP4", N: 1, Min: sz.BigSize, Max: sz.BigSize, Seed: 1}
	burst := &fileSet{Tag: "img", Prefix: "IMG_", Ext: ".JPG", N: sz.BurstN, Min: sz.BurstMin, Max: sz.BurstMax, Seed: 2}
	small := &fileSet{Tag: "sml", Prefix: "SML_", Ext: ".JPG", N: sz.SmallN, Min: sz.SmallSize, Max: sz.SmallSize, Seed: 3}
	t := time.Now()
	for _, fs := range []*fileSet{big, burst, small} {
		if err := fs.stage(stageDir); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "bench: staged files ready in %.1f s\n", time.Since(t).Seconds())

	srv, err := startServer(filepath.Join(o.work, "server"), parseIP(linkIP), o.serverLog)
	if err != nil {
		return err
	}
	defer srv.Close()
	e.srv = srv
	m.Vsftpd = srv.Version
	ports := []int{srv.Port}
	for p := srv.PasvLo; p <= srv.PasvHi; p++ {
		ports = append(ports, p)
	}
	if works["d"] || works["ot"] || o.serve {
		e.link, err = linkemu.Start(linkIP, "127.0.0.1", linkRate, linkRTT, linkQueue, ports)
		if err != nil {
			return err
		}
		defer e.link.Close()
	}
	fmt.Fprintf(log, "bench: vsftpd %s on %s (passive ports %d-%d)\n", srv.Version, srv.Addr(), srv.PasvLo, srv.PasvHi)
	if o.serve {
		// Debugging aid: keep the server and the link emulator up.
		fmt.Fprintf(log, "bench: serving until interrupted; link emulator on %s:%d; login %s/%s; CA %s; root %s\n",
			linkIP, srv.Port, srv.User, srv.Pass, srv.CA, srv.Root)
		<-ctx.Done()
		return nil
	}

	var wls []*workload
	add := func(key, title string, files []srcFile, link bool) {
		if !works[key] {
			return
		}
		w := &workload{Key: key, Title: title, Files: files, Link: link, Tools: tools, Runs: sz.Runs}
		if key == "a" {
			w.Runs = sz.BigRuns
		}
		if link {
			w.Tools = append([]string(nil), tools...)
			if contains(tools, toolCamftpd) && !contains(tools, toolCamftpd4) {
				w.Tools = append(w.Tools, toolCamftpd4)
			}
			if contains(tools, toolCurl) && !contains(tools, toolCurl12) {
				w.Tools = append(w.Tools, toolCurl12)
			}
		}
		for _, f := range files {
			w.Bytes += f.Size
		}
		wls = append(wls, w)
	}
	add("a", fmt.Sprintf("(a) one %s file", human(sz.BigSize)), big.Files, false)
	add("b", fmt.Sprintf("(b) burst of %d files, %s-%s", sz.BurstN, human(sz.BurstMin), human(sz.BurstMax)), burst.Files, false)
	add("c", fmt.Sprintf("(c) %d files of %s", sz.SmallN, human(sz.SmallSize)), small.Files, false)
	add("d", fmt.Sprintf("(d) burst of %d files over 20 ms RTT, 100 Mbit/s", sz.LinkN), burst.Files[:sz.LinkN], true)

	conf := camftpdConfig(filepath.Join(o.work, "camftpd"), e.drop, srv, "127.0.0.1", e.camExtra)
	conf = strings.Replace(conf, "password = "+strconv.Quote(srv.Pass), `password = "..."`, 1)
	res := &results{CamConf: conf, RepeatMax: o.repeatMax, Runs: sz.Runs, Tools: tools, Machine: m, Notes: notes, Sizes: sz}
	for _, w := range wls {
		res.Workloads = append(res.Workloads, w)
		long := map[string]bool{}
		for rep := 0; rep < w.Runs; rep++ {
			for _, tool := range w.Tools {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if long[tool] {
					continue
				}
				r, err := e.runOnce(ctx, tool, w, rep, rep == 0)
				if err != nil {
					fmt.Fprintf(log, "  %-44s %-12s run %d/%d: FAILED: %v\n", w.Title, tool, rep+1, w.Runs, err)
					res.fail(w.Key, tool, err)
					continue
				}
				res.Runs_ = append(res.Runs_, r)
				if rep == 0 && r.Wall > o.repeatMax {
					long[tool] = true
				}
				extra := ""
				if w.Link {
					extra = fmt.Sprintf(", link %.0f%%", 100*float64(w.Bytes)/linkRate/r.Wall.Seconds())
				}
				fmt.Fprintf(log, "  %-44s %-12s run %d/%d: %7.2f s, CPU %6.2f s, RSS %5.1f MiB%s\n",
					w.Title, tool, rep+1, w.Runs, r.Wall.Seconds(), r.CPU.Seconds(), float64(r.RSS)/(1<<20), extra)
			}
		}
	}
	if works["lat"] {
		shots := make([]srcFile, sz.Shots)
		for i := range shots {
			shots[i] = burst.Files[i%len(burst.Files)]
		}
		for _, tool := range []string{toolCamftpd, toolCurl} {
			if !contains(tools, tool) {
				continue
			}
			fmt.Fprintf(log, "  latency, %d single shots at 1 shot/s      %-12s ...\n", sz.Shots, tool)
			lat, err := e.latencyRun(ctx, tool, shots, time.Second)
			if err != nil {
				fmt.Fprintf(log, "  latency %-12s FAILED: %v\n", tool, err)
				res.fail("lat", tool, err)
				continue
			}
			res.Latency = append(res.Latency, lat)
			fmt.Fprintf(log, "  latency %-12s closed -> start p50 %.1f ms, p99 %.1f ms; closed -> complete p50 %.3f s, p99 %.3f s\n", tool,
				float64(percentile(lat.Start, 50))/1e6, float64(percentile(lat.Start, 99))/1e6, percentile(lat.Samples, 50).Seconds(), percentile(lat.Samples, 99).Seconds())
		}
	}
	if works["ot"] && e.camftpd != "" {
		e.overtakeBench(ctx, big.Files[0], burst.Files[:min(otShots, len(burst.Files))], res) // see overtake.go
	}
	_ = srv.Clear()
	_ = clearDir(e.drop)
	res.Machine.LoadEnd = loadAvg()
	res.Machine.CalEnd = calibrate()
	res.Elapsed = time.Since(started)
	res.Command = "scripts/bench " + strings.Join(o.args, " ")
	if len(o.args) == 0 {
		res.Command = "make bench"
	}
	res.summarize()
	fmt.Fprintln(log)
	fmt.Fprint(log, res.textTable())
	fmt.Fprint(log, res.otText()) // workload ot, overtake.go
	if err := res.writePlot(o.png); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := res.writeMarkdown(o.out); err != nil {
		return err
	}
	fmt.Fprintf(log, "\nbench: %s in %s; results in %s, plot in %s\n", res.Command, res.Elapsed.Round(time.Second), o.out, o.png)
	for _, f := range res.Failures {
		if _, ok := e.camftpdExtra(f.Tool); ok {
			return errors.New("camftpd failed some runs (see above)")
		}
	}
	if len(res.Failures) > 0 {
		fmt.Fprintln(log, "bench: some peers failed runs; that is a result, listed in the table")
	}
	return nil
}

// goBuild builds pkg the way `make cross` builds the shipped daemon: static
// (no cgo, no libc mapped), -trimpath, stripped.
func goBuild(out, pkg string, flags ...string) error {
	args := append(append([]string{"build", "-trimpath", "-o", out}, flags...), pkg)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, lastLines(strings.TrimSpace(string(b)), 5))
	}
	return nil
}

// gitVersion names the source tree measured (read-only: git describe).
func gitVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1_000_000:
		return fmt.Sprintf("%g MB", float64(n)/1e6)
	case n >= 1000:
		return fmt.Sprintf("%g kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
