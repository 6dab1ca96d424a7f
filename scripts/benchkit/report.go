package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

// calibrate hashes 256 MiB in memory (crypto/sha256, one goroutine) and
// returns the CPU time it took: a yardstick for how fast this machine's CPU
// was at the start and at the end of the run (a shared virtual machine's
// CPU seconds are not constant).
func calibrate() time.Duration {
	buf := make([]byte, 16<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	c0 := cpu()
	h := sha256.New()
	for range 16 {
		h.Write(buf)
	}
	_ = h.Sum(nil)
	return cpu() - c0
}

type machine struct {
	CalStart, CalEnd         time.Duration
	CPU, Kernel, OS          string
	Cores                    int
	Go, Curl, Lftp           string
	Vsftpd, Camftpd          string
	LoadStart, LoadEnd, Date string
}

func machineInfo() machine {
	m := machine{Cores: runtime.NumCPU(), LoadStart: loadAvg(), Date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.Go = strings.TrimPrefix(cmdVersion("go", "version"), "go version ")
	m.Curl = firstFields(cmdVersion("curl", "--version"), 5)
	if f := strings.Fields(strings.ReplaceAll(cmdVersion("lftp", "--version"), "|", " ")); len(f) >= 3 {
		m.Lftp = "lftp " + f[2]
	}
	return m
}

func cmdVersion(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func firstFields(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.Join(f, " ")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return firstFields(string(b), 3)
}

func parseIP(s string) net.IP { return net.ParseIP(s) }

type failure struct {
	Work, Tool string
	Err        string
}

// row is the median of one tool on one workload.
type row struct {
	Work      *workload
	Tool      string
	N         int
	Wall, CPU time.Duration
	User      time.Duration
	Start     time.Duration // drop -> first file activity on the server
	Busy      time.Duration // first file activity -> last file complete
	BusyMin   time.Duration // the same, fastest run
	RSS       int64
	Times     []time.Duration // of the run with the median wall time
	Failed    string          // first failure
	Fails     int
}

type results struct {
	CamConf   string
	RepeatMax time.Duration
	Runs      int
	Tools     []string
	Machine   machine
	Notes     []string
	Sizes     sizes
	Workloads []*workload
	Runs_     []runResult
	Failures  []failure
	Latency   []latencyResult
	Overtake  []*otResult // workload ot (overtake.go)
	Elapsed   time.Duration
	Command   string
	rows      map[string]*row // work/tool
}

func (r *results) fail(work, tool string, err error) {
	r.Failures = append(r.Failures, failure{Work: work, Tool: tool, Err: tlspolicy.OneLine(err.Error())})
}

func key(work, tool string) string { return work + "/" + tool }

func (r *results) summarize() {
	r.rows = map[string]*row{}
	for _, w := range r.Workloads {
		for _, t := range w.Tools {
			var runs []runResult
			for _, x := range r.Runs_ {
				if x.Work == w.Key && x.Tool == t {
					runs = append(runs, x)
				}
			}
			rw := &row{Work: w, Tool: t, N: len(runs)}
			for _, f := range r.Failures {
				if f.Work == w.Key && f.Tool == t {
					rw.Fails++
					if rw.Failed == "" {
						rw.Failed = f.Err
					}
				}
			}
			r.rows[key(w.Key, t)] = rw
			if len(runs) == 0 {
				continue
			}
			var walls, cpus, users, starts, busy []time.Duration
			var rss []int64
			for _, x := range runs {
				walls = append(walls, x.Wall)
				starts = append(starts, x.Start)
				busy = append(busy, x.Wall-x.Start)
				cpus = append(cpus, x.CPU)
				users = append(users, x.User)
				rss = append(rss, x.RSS)
			}
			rw.Wall, rw.CPU, rw.RSS, rw.Start = median(walls), median(cpus), median(rss), median(starts)
			rw.User = median(users)
			rw.Busy = median(busy)
			rw.BusyMin = slices.Min(busy)
			sort.Slice(runs, func(i, j int) bool { return runs[i].Wall < runs[j].Wall })
			rw.Times = runs[len(runs)/2].Times
		}
	}
}

func median[T int64 | time.Duration](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank percentile.
func percentile(v []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// figures of one row, as the table shows them; ok=false for a missing value.
type fig struct {
	v  float64
	ok bool
}

func (r *results) figures(rw *row) (wall, cpuGiB, userGiB, rssMiB, perFile, linkPct fig) {
	if rw == nil || rw.N == 0 {
		return
	}
	w := rw.Work
	wall = fig{rw.Wall.Seconds(), true}
	cpuGiB = fig{rw.CPU.Seconds() / (float64(w.Bytes) / (1 << 30)), true}
	userGiB = fig{rw.User.Seconds() / (float64(w.Bytes) / (1 << 30)), true}
	rssMiB = fig{float64(rw.RSS) / (1 << 20), true}
	// Per-file overhead: the time from the first file appearing on the
	// server to the last one complete, minus the time the same bytes take
	// streamed as one file (the tool's own rate on (a), or the link's rate
	// on (d)), per file. The tool's start (process start, settle window,
	// first login) is excluded: it is paid once, not per file.
	busy := rw.Busy.Seconds()
	if w.Link {
		perFile = fig{(busy - float64(w.Bytes)/linkRate) / float64(len(w.Files)) * 1000, true}
		linkPct = fig{100 * float64(w.Bytes) / linkRate / rw.Wall.Seconds(), true}
	} else if len(w.Files) > 1 {
		if thr, ok := r.streamRate(rw.Tool); ok {
			perFile = fig{(busy - float64(w.Bytes)/thr) / float64(len(w.Files)) * 1000, true}
		}
	}
	return
}

// streamRate is a tool's rate on (a), one big file: bytes over the time from
// the file appearing on the server to it being complete, in the tool's
// fastest run (the load of a shared machine only ever slows a run down).
func (r *results) streamRate(tool string) (float64, bool) {
	big := r.rows[key("a", tool)]
	if big == nil || big.N == 0 || big.BusyMin <= 0 {
		return 0, false
	}
	return float64(big.Work.Bytes) / big.BusyMin.Seconds(), true
}

func (f fig) str(format string) string {
	if !f.ok {
		return "-"
	}
	return fmt.Sprintf(format, f.v)
}

func ratio(a, b fig) string {
	if !a.ok || !b.ok || b.v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a.v/b.v)
}

var header = []string{"workload", "tool", "runs", "wall s", "start s", "CPU s/GiB", "user s/GiB", "peak RSS MiB", "per-file ms", "link use", "wall ÷ curl", "CPU ÷ curl", "user ÷ curl", "RSS ÷ curl"}

func (r *results) tableRows() [][]string {
	var out [][]string
	for _, w := range r.Workloads {
		refTool := r.reference(w)
		cw, cc, cu, cr, _, _ := r.figures(r.rows[key(w.Key, refTool)])
		for _, t := range w.Tools {
			rw := r.rows[key(w.Key, t)]
			if rw.N == 0 {
				msg := "no run"
				if rw.Failed != "" {
					msg = "FAILED (below)"
				}
				out = append(out, []string{w.Title, t, fmt.Sprintf("0 (+%d failed)", rw.Fails), msg, "", "", "", "", "", "", "", "", "", ""})
				continue
			}
			wall, cpu, user, rss, pf, lp := r.figures(rw)
			title := w.Title
			if refTool != toolCurl {
				title += " [ratios to " + refTool + "]"
			}
			runs := fmt.Sprint(rw.N)
			if rw.Fails > 0 {
				runs += fmt.Sprintf(" (+%d failed)", rw.Fails)
			}
			out = append(out, []string{title, t, runs, wall.str("%.2f"), fmt.Sprintf("%.2f", rw.Start.Seconds()), cpu.str("%.2f"), user.str("%.2f"), rss.str("%.1f"), pf.str("%.1f"),
				lp.str("%.0f%%"), ratio(wall, cw), ratio(cpu, cc), ratio(user, cu), ratio(rss, cr)})
		}
	}
	return out
}

func (r *results) toolsFor(w *workload) []string { return w.Tools }

// reference is the tool the ratios divide by: curl, or on a workload where
// plain curl has no successful run, curl limited to TLS 1.2.
func (r *results) reference(w *workload) string {
	if rw := r.rows[key(w.Key, toolCurl)]; rw != nil && rw.N > 0 {
		return toolCurl
	}
	if rw := r.rows[key(w.Key, toolCurl12)]; rw != nil && rw.N > 0 {
		return toolCurl12
	}
	return toolCurl
}

func (r *results) textTable() string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range r.tableRows() {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	b.WriteString(r.latencyText())
	return b.String()
}

const (
	mdBegin = "<!-- bench-results:begin (written by scripts/bench; edit outside these markers) -->"
	mdEnd   = "<!-- bench-results:end -->"
)

func (r *results) markdown() string {
	var b strings.Builder
	m := r.Machine
	runs := fmt.Sprintf("%d runs per tool and workload", r.Runs)
	if r.Sizes.BigRuns != r.Runs {
		runs = fmt.Sprintf("%d runs per tool on (a), %d on the other workloads", r.Sizes.BigRuns, r.Runs)
	}
	fmt.Fprintf(&b, "Measured %s with `%s` (%s, medians; a tool whose first run took over %v ran once; whole run %s).\n\n",
		m.Date, r.Command, runs, r.RepeatMax, r.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %s, %d cores (nproc), %s, kernel %s; load average %s at start, %s at end (the machine was shared).\n",
		m.CPU, m.Cores, m.OS, m.Kernel, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(&b, "- CPU yardstick (crypto/sha256 over 256 MiB in memory, CPU time): %.0f ms at start, %.0f ms at end. CPU seconds on a shared virtual machine drift with the host's load: compare the tools within one run (the runs are interleaved), not across runs.\n",
		float64(m.CalStart)/1e6, float64(m.CalEnd)/1e6)
	fmt.Fprintf(&b, "- Versions: %s; %s; %s; vsftpd %s; %s.\n\n", m.Go, m.Curl, m.Lftp, m.Vsftpd, m.Camftpd)
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, row := range r.tableRows() {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString(r.latencyMarkdown())
	if len(r.Failures) > 0 {
		b.WriteString("\nFailed runs:\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "- %s / %s: %s\n", f.Work, f.Tool, f.Err)
		}
	}
	b.WriteString(r.otText()) // workload ot, overtake.go
	tls := map[string]bool{}
	for _, x := range r.Runs_ {
		if x.TLS != "" && !tls[x.TLS] {
			tls[x.TLS] = true
			fmt.Fprintf(&b, "\ncamftpd's status reported: %s.\n", x.TLS)
		}
	}
	if r.CamConf != "" {
		b.WriteString("\ncamftpd's configuration (host 127.0.0.2 on (d); camftpd-4w adds `workers = 4`):\n\n```toml\n" +
			strings.TrimSpace(strings.ReplaceAll(r.CamConf, "\n\n", "\n")) + "\n```\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

// writeMarkdown replaces the results section of path (between the markers)
// or, for a file without them, writes the section alone.
func (r *results) writeMarkdown(path string) error {
	block := mdBegin + "\n" + r.markdown() + mdEnd + "\n"
	old, err := os.ReadFile(path)
	if err == nil {
		s := string(old)
		i, j := strings.Index(s, mdBegin), strings.Index(s, mdEnd)
		if i >= 0 && j > i {
			end := j + len(mdEnd)
			if end < len(s) && s[end] == '\n' {
				end++
			}
			return os.WriteFile(path, []byte(s[:i]+block+s[end:]), 0o644)
		}
		return os.WriteFile(path, []byte(strings.TrimRight(s, "\n")+"\n\n"+block), 0o644)
	}
	return os.WriteFile(path, []byte(block), 0o644)
}
