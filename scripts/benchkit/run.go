package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/camftpd/camftpd/internal/linkemu"
)

// Tool names, in table order. curl is the reference of the ratios.
const (
	toolCamftpd = "camftpd"
	toolCurl    = "curl"
	toolMirror  = "lftp-mirror"
	toolPut     = "lftp-put"
	toolNaive   = "goftp-naive"
	// curl with TLS 1.2 at most: the known workaround for curl's TLS 1.3
	// FTPS upload data loss (curl issue #6149). Measured on the emulated
	// link, where plain curl fails.
	toolCurl12 = "curl-tls1.2"
	// camftpd with workers = 4 (the default is 1): does overlapping files
	// fill the emulated link? Measured on (d).
	toolCamftpd4 = "camftpd-4w"
)

var allTools = []string{toolCamftpd, toolCurl, toolMirror, toolPut, toolNaive, toolCurl12, toolCamftpd4}

// camftpdExtra tells the daemon's variants from the peers, and gives the extra
// configuration of the variant.
func (e *env) camftpdExtra(tool string) (string, bool) {
	switch tool {
	case toolCamftpd:
		return e.camExtra, true
	case toolCamftpd4:
		return "workers = 4", true
	}
	return "", false
}

// env is what every run shares.
type env struct {
	work     string // bench work folder
	drop     string // the watched folder files are dropped into
	srv      *server
	link     *linkemu.Link
	linkIP   string
	camftpd  string // binary
	naive    string // binary
	camExtra string // extra top-level camftpd config lines
	log      io.Writer
}

// workload is one row group of the table.
type workload struct {
	Tools []string // measured on this workload, in table order
	Key   string
	Title string
	Files []srcFile
	Bytes int64
	Link  bool
	Runs  int // repetitions per tool
}

// runResult is one run of one tool on one workload.
type runResult struct {
	Tool, Work string
	Rep        int
	Wall       time.Duration // drop -> last file complete on the server
	CPU        time.Duration
	User       time.Duration
	RSS        int64
	Bytes      int64
	Files      int
	Times      []time.Duration // completion of each file, sorted, from the drop
	Start      time.Duration   // drop -> first file appears on the server
	LinkUp     int64           // bytes the link emulator carried client->server
	TLS        string          // what camftpd reported it negotiated
}

func (e *env) host(link bool) string {
	if link {
		return e.linkIP
	}
	return "127.0.0.1"
}

// runOnce measures one tool on one workload: fresh server folder, fresh drop
// folder, files dropped, timed until all are complete on the server.
func (e *env) runOnce(ctx context.Context, tool string, w *workload, rep int, verifyContent bool) (runResult, error) {
	r := runResult{Tool: tool, Work: w.Key, Rep: rep, Bytes: w.Bytes, Files: len(w.Files)}
	if err := e.srv.Clear(); err != nil {
		return r, err
	}
	if err := clearDir(e.drop); err != nil {
		return r, err
	}
	want := make(map[string]int64, len(w.Files))
	for _, f := range w.Files {
		want[f.Name] = f.Size
	}
	arr, err := watchArrivals(e.srv.Root, want)
	if err != nil {
		return r, err
	}
	defer arr.Close()
	timeout := time.Duration(float64(w.Bytes)/(4<<20)*float64(time.Second)) + time.Duration(len(w.Files))*2*time.Second + time.Minute
	if w.Link {
		timeout += time.Duration(float64(w.Bytes) / (linkRate / 3) * float64(time.Second))
	}
	var up0 int64
	if e.link != nil {
		up0, _ = e.link.Bytes()
	}

	var t0 time.Time
	if extra, ok := e.camftpdExtra(tool); ok {
		d, err := startDaemon(e.camftpd, filepath.Join(e.work, "camftpd"), camftpdConfig(filepath.Join(e.work, "camftpd"), e.drop, e.srv, e.host(w.Link), extra))
		if err != nil {
			return r, err
		}
		defer d.Stop()
		cpu0, user0, err := procCPU(d.Pid())
		if err != nil {
			return r, err
		}
		t0 = time.Now()
		if _, err := drop(e.drop, w.Files); err != nil {
			return r, err
		}
		if err := arr.Wait(timeout, d.Exited()); err != nil {
			return r, fmt.Errorf("camftpd: %w (log: %s)", err, d.logTail())
		}
		if err := d.WaitUploaded(len(w.Files), 30*time.Second); err != nil {
			return r, err
		}
		if st, err := d.Status(); err == nil && st.TLS != nil {
			r.TLS = st.TLS.Version + " " + st.TLS.Suite
			if st.TLS.Resumed {
				r.TLS += " (data connections resumed)"
			}
		}
		cpu1, user1, err := procCPU(d.Pid())
		if err != nil {
			return r, err
		}
		r.CPU, r.User = cpu1-cpu0, user1-user0
		if r.RSS, err = procHWM(d.Pid()); err != nil {
			return r, err
		}
	} else {
		t0 = time.Now()
		paths, err := drop(e.drop, w.Files)
		if err != nil {
			return r, err
		}
		args := e.peerArgs(tool, w.Link, paths)
		cctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
		defer cancel()
		exited := make(chan error, 1)
		var u usage
		var runErr error
		finished := make(chan struct{})
		go func() {
			u, runErr = runTree(cctx, args)
			exited <- runErr
			close(finished)
		}()
		if err := arr.Wait(timeout, exited); err != nil {
			cancel()
			<-finished
			if runErr != nil && !strings.Contains(err.Error(), runErr.Error()) {
				return r, fmt.Errorf("%s: %w (the tool: %w)", tool, err, runErr)
			}
			return r, fmt.Errorf("%s: %w", tool, err)
		}
		<-finished
		if runErr != nil {
			return r, fmt.Errorf("%s: all files arrived but the tool failed: %w", tool, runErr)
		}
		r.CPU, r.User, r.RSS = u.CPU, u.User, u.MaxRSS
	}
	times := arr.Times()
	for _, at := range times {
		r.Times = append(r.Times, at.Sub(t0))
	}
	sort.Slice(r.Times, func(i, j int) bool { return r.Times[i] < r.Times[j] })
	r.Wall = r.Times[len(r.Times)-1]
	if f := arr.First(); !f.IsZero() {
		r.Start = f.Sub(t0)
	}
	if e.link != nil {
		up1, _ := e.link.Bytes()
		r.LinkUp = up1 - up0
		if w.Link && r.LinkUp < w.Bytes {
			return r, fmt.Errorf("%s: only %d of %d bytes went through the link emulator: the tool bypassed it", tool, r.LinkUp, w.Bytes)
		}
	}
	if err := verify(e.srv.Root, w.Files, verifyContent); err != nil {
		return r, fmt.Errorf("%s: %w", tool, err)
	}
	return r, nil
}

// lftp settings: verify the server certificate against the bench CA, TLS
// for control and data, EPSV first (so data connections go to the control
// connection's address, through the link emulator too), fail instead of
// retrying forever.
func (e *env) lftpSettings() string {
	return "set ssl:ca-file " + e.srv.CA + "; set ssl:verify-certificate yes; set ftp:ssl-force yes; " +
		"set ftp:ssl-protect-data yes; set ftp:prefer-epsv yes; set cmd:fail-exit yes; set net:max-retries 3; set net:reconnect-interval-base 2; set net:reconnect-interval-multiplier 1"
}

func (e *env) peerArgs(tool string, link bool, paths []string) []string {
	host := e.host(link)
	hostPort := net.JoinHostPort(host, strconv.Itoa(e.srv.Port))
	open := "open -u " + e.srv.User + "," + e.srv.Pass + " ftp://" + hostPort
	switch tool {
	case toolCurl, toolCurl12:
		// A shell watcher: one curl per file, in order.
		opt := "--ssl-reqd"
		if tool == toolCurl12 {
			opt = "--ssl-reqd --tls-max 1.2"
		}
		script := `ca=$1 url=$2 auth=$3; shift 3; for f; do curl -sS ` + opt + ` --cacert "$ca" -u "$auth" -T "$f" "$url" || exit 1; done`
		return append([]string{"bash", "-c", script, "bench-watcher", e.srv.CA, "ftp://" + hostPort + "/", e.srv.User + ":" + e.srv.Pass}, paths...)
	case toolPut:
		script := `settings=$1 open=$2; shift 2; for f; do lftp -c "$settings; $open; put \"$f\"" || exit 1; done`
		return append([]string{"bash", "-c", script, "bench-watcher", e.lftpSettings(), open}, paths...)
	case toolMirror:
		return []string{"lftp", "-c", e.lftpSettings() + "; " + open + "; mirror -R " + e.drop + " ."}
	case toolNaive:
		return append([]string{e.naive, "-addr", hostPort, "-user", e.srv.User, "-pass", e.srv.Pass, "-ca", e.srv.CA}, paths...)
	}
	panic("unknown tool " + tool)
}
