package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/camftpd/camftpd/queue"
)

const usage = `usage: camftpd <command> [flags]

commands:
  run    [-config FILE]                 run the daemon (SIGHUP reloads, SIGTERM stops)
  check  [-config FILE] [-server NAME|all]  validate the config and walk every step of an upload on the server
                                        (connect, TLS, login, folder, a test file written, resumed, hashed,
                                        renamed, deleted; then the TLS suite table): exit 0 pass, 1 warn, 2 fail
  status [-config FILE] [-socket PATH] [-json]   show the running daemon's status
  trust  [-config FILE] [-server NAME] [-import FILE] [-yes] | -list
                                        show the server's certificate and pin it (asks y/N; -yes for scripts),
                                        or trust a CA / pin a server certificate from a PEM or DER file
  queue  list [-state S,...] | retry [ID] | drop ID  [-config FILE] [-socket PATH]
  queue  add [-config FILE] [-socket PATH] PATH|FOLDER|PATTERN...
                                        send captures the daemon holds or does not know (the backlog,
                                        unprotected shots): relative to media_dir or absolute inside it;
                                        patterns match per path element ("100MSDCF/*.JPG")
  version                               print the version
`

// Main runs the command line with args (without the program name) and
// returns the process exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "camftpd", Version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, stdout, stderr)
	case "queue":
		return cmdQueue(ctx, rest, stdout, stderr)
	case "trust":
		return cmdTrust(ctx, rest, os.Stdin, stdout, stderr) // trustcmd.go
	}
	fmt.Fprintf(stderr, "camftpd: unknown command %q\n%s", cmd, usage)
	return 2
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("camftpd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", DefaultConfigPath, "configuration file")
	return fs, cfg
}

// NewLogger returns the slog logger the config asks for.
func NewLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func printConfigErrors(w io.Writer, err error) {
	var ces ConfigErrors
	if errors.As(err, &ces) {
		for _, e := range ces {
			fmt.Fprintln(w, e.Error())
		}
		fmt.Fprintf(w, "camftpd: %d problem(s) in the configuration; nothing started\n", len(ces))
		return
	}
	fmt.Fprintln(w, "camftpd:", err)
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs, path := newFlags("run", stderr)
	if fs.Parse(args) != nil {
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	log := NewLogger(cfg, stderr)
	d := New(cfg, log)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				ncfg, err := LoadConfig(*path)
				if err != nil {
					var ces ConfigErrors
					if errors.As(err, &ces) {
						for _, e := range ces {
							log.Error("reload refused: config error", "problem", e.Error())
						}
					} else {
						log.Error("reload refused", "err", err)
					}
					continue
				}
				d.Reload(ncfg)
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("camftpd stopped", "err", err)
		return 1
	}
	return 0
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("check", stderr)
	name := fs.String("server", "", "server slot to test, or all (default: the active one)")
	if fs.Parse(args) != nil {
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "config %s: ok\n", cfg.Path)
	if m, err := probeCompletion(cfg); err != nil {
		fmt.Fprintf(stdout, "media %s: %v\n", cfg.MediaDir, err)
	} else {
		fmt.Fprintf(stdout, "media %s: completion %s (%s)\n", cfg.MediaDir, m.Mode, escName(m.Why))
	}
	idxs, err := checkTargets(cfg, *name)
	if err != nil {
		fmt.Fprintln(stderr, "camftpd check:", err)
		return 2
	}
	worst := 0
	for _, idx := range idxs {
		worst = max(worst, checkServerCLI(ctx, cfg, idx, stdout, stderr))
	}
	return worst
}

// socketPath finds the status socket: -socket, else the config's, else the default.
func socketPath(cfgPath, sock string) string {
	if sock != "" {
		return sock
	}
	if cfg, err := LoadConfig(cfgPath); err == nil {
		return cfg.StatusSocket
	}
	return "/run/camftpd.sock"
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("status", stderr)
	sock := fs.String("socket", "", "status socket (default: from the config)")
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if fs.Parse(args) != nil {
		return 2
	}
	sp := socketPath(*path, *sock)
	var st Status
	body, err := socketDo(ctx, sp, http.MethodGet, "/status", nil)
	if err == nil {
		err = json.Unmarshal(body, &st)
	}
	if err != nil {
		fmt.Fprintf(stderr, "camftpd status: %s (is camftpd running? socket %s)\n", escName(err.Error()), escName(sp))
		return 2
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	printStatus(stdout, st)
	return 0
}

// printStatus prints st; every text from the card or a server (file
// names, server replies in reasons and errors) goes through escName.
func printStatus(w io.Writer, st Status) {
	fmt.Fprintf(w, "state:      %s\n", escName(st.State))
	if st.Attention != "" && !strings.HasPrefix(st.State, "attention:") {
		fmt.Fprintf(w, "attention:  %s\n", escName(strings.TrimPrefix(st.Attention, "attention: ")))
	}
	fmt.Fprintf(w, "server:     %s (link %s)\n", escName(st.Server), escName(st.Link))
	if st.Security != "" {
		fmt.Fprintf(w, "security:   %s; data connections %s\n", escName(st.Security), escName(st.DataMode))
	}
	q := st.Queue
	fmt.Fprintf(w, "queue:      %d pending, %d uploading, %d retry, %d parked, %d held, %d done, %d skipped (name taken on the server)\n",
		q.Pending, q.InFlight, q.Retry, q.Parked, q.Held, q.Done, q.Skipped)
	if q.Held > 0 {
		fmt.Fprintf(w, "held:       %s (not sent; camftpd queue add PATH|PATTERN sends them)\n", heldLine(q.Held, st.Held))
	}
	fmt.Fprintf(w, "uploaded:   %d files, %s since start (%d skipped); throughput %s/s\n", st.UploadedFiles, humanBytes(st.UploadedBytes), st.SkippedFiles, humanBytes(int64(st.ThroughputBps)))
	for _, u := range st.Uploads {
		fmt.Fprintf(w, "uploading:  %s  %s / %s  %.1f%%  %s/s\n", escName(u.File), humanBytes(u.Sent), humanBytes(u.Total), u.Percent, humanBytes(int64(u.BytesPerSec)))
	}
	if t := st.TLS; t != nil {
		via := ""
		if t.Engine == "openssl" { // the openssl build's fallback engine
			via = " through OpenSSL"
		}
		fmt.Fprintf(w, "tls:        %s %s (%s) %s%s\n", escName(t.Version), escName(t.Suite), escName(t.Class), escName(t.SuiteID), via)
		if t.Warning != "" {
			fmt.Fprintf(w, "tls warning: %s\n", escName(t.Warning))
		}
		printCertStatus(w, t) // trustcmd.go
	}
	printPower(w, st.Power)
	if st.MediaError != "" {
		fmt.Fprintf(w, "media:      %s\n", escName(st.MediaError))
	}
	if c := st.Completion; c.Mode != "" {
		fmt.Fprintf(w, "completion: %s (%s)\n", escName(c.Mode), escName(c.Why))
	}
	for _, e := range st.Errors {
		fmt.Fprintf(w, "error:      %s [%s, %d attempts] %s\n", escName(e.File), escName(e.State), e.Attempts, escName(e.Error))
	}
}

// heldLine is "12 backlog, 3 not protected", or the total when the
// reasons were not counted.
func heldLine(total int, by map[string]int) string {
	if len(by) == 0 {
		return fmt.Sprintf("%d", total)
	}
	parts := make([]string, 0, len(by))
	for _, r := range sortedKeys(by) {
		parts = append(parts, fmt.Sprintf("%d %s", by[r], escName(r)))
	}
	return strings.Join(parts, ", ")
}

func humanBytes(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if f < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

func socketDo(ctx context.Context, sock, method, path string, form url.Values) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://camftpd"+path, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	cl := socketClient(sock)
	// One request per client: no idle connection is left to the daemon.
	defer cl.CloseIdleConnections()
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", strings.TrimSpace(string(b)))
	}
	return b, nil
}

func cmdQueue(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "camftpd queue: need list, add, retry or drop\n", usage)
		return 2
	}
	sub := args[0]
	fs, path := newFlags("queue "+sub, stderr)
	sock := fs.String("socket", "", "status socket (default: from the config)")
	states := fs.String("state", "", "list: only these states (comma separated: pending,inflight,retry,parked,held,done,skipped)")
	if fs.Parse(args[1:]) != nil {
		return 2
	}
	switch sub {
	case "list", "add", "retry", "drop":
	default:
		fmt.Fprintf(stderr, "camftpd queue: unknown subcommand %q (use list, add, retry or drop)\n", sub)
		return 2
	}
	c := &queueCmd{ctx: ctx, sock: socketPath(*path, *sock), stdout: stdout, stderr: stderr}
	if conn, err := net.Dial("unix", c.sock); err == nil {
		conn.Close()
		c.live = true
	} else {
		// No daemon: open the queue file directly.
		cfg, err := LoadConfig(*path)
		if err != nil {
			printConfigErrors(stderr, err)
			return 2
		}
		c.cfg = cfg
		c.q, err = queue.Open(filepath.Join(cfg.StateDir, "queue.db"), nil)
		if err != nil {
			fmt.Fprintln(stderr, "camftpd queue:", err)
			return 2
		}
		defer c.q.Close()
	}
	switch sub {
	case "list":
		return c.list(*states)
	case "add":
		return c.add(fs.Args())
	}
	return c.change(sub, fs.Arg(0))
}

// queueCmd runs a queue subcommand against the daemon's status socket
// (live) or, with no daemon running, the queue file itself. Its add is in
// addcmd.go, which uses this file's helpers (see doc.go's file layers).
type queueCmd struct {
	ctx            context.Context
	sock           string
	live           bool
	cfg            *Config      // when not live
	q              *queue.Queue // when not live
	stdout, stderr io.Writer
}

// list prints the items of states (all when empty) state by state, a
// page at a time: neither the daemon nor this command holds the whole
// queue.
func (c *queueCmd) list(states string) int {
	ss, err := parseStates(states)
	if err != nil {
		fmt.Fprintln(c.stderr, "camftpd queue list:", err)
		return 2
	}
	if len(ss) == 0 {
		ss = queue.AllStates()
	}
	tw := tabwriter.NewWriter(c.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tTRIES\tSIZE\tFILE\tNOTE")
	for _, s := range ss {
		for after := ""; ; {
			items, next, err := c.page(s, after)
			if err != nil {
				tw.Flush()
				fmt.Fprintln(c.stderr, "camftpd queue list:", escName(err.Error()))
				return 2
			}
			for _, it := range items {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", escName(it.ID), escName(string(it.State)), it.Attempts, humanBytes(it.Capture.Size),
					escName(it.Capture.Rel), escName(itemNote(it)))
			}
			if after = next; after == "" {
				break
			}
		}
	}
	tw.Flush()
	return 0
}

// listPage is how many items camftpd queue list asks for at once.
const listPage = 1000

// page reads one page of the items in state s, from the daemon or the file.
func (c *queueCmd) page(s queue.State, after string) ([]queue.Item, string, error) {
	if !c.live {
		return c.q.ListPage(after, listPage, s)
	}
	v := url.Values{"state": {string(s)}, "after": {after}, "limit": {strconv.Itoa(listPage)}}
	b, err := socketDo(c.ctx, c.sock, http.MethodGet, "/queue?"+v.Encode(), nil)
	if err != nil {
		return nil, "", err
	}
	var p QueuePage
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, "", fmt.Errorf("the daemon's queue page: %w", err)
	}
	return p.Items, p.Next, nil
}

// itemNote is the NOTE column of camftpd queue list.
func itemNote(it queue.Item) string {
	switch {
	case it.State == queue.Done:
		return it.Remote
	case it.State == queue.Held:
		return it.Reason
	case (it.State == queue.Parked || it.State == queue.Skipped) && it.Reason != "":
		return it.Reason
	}
	return it.LastError
}

func (c *queueCmd) change(sub, id string) int {
	if sub == "drop" && id == "" {
		fmt.Fprintln(c.stderr, "camftpd queue drop: give the ID to drop (see camftpd queue list)")
		return 2
	}
	var err error
	switch {
	case c.live:
		_, err = socketDo(c.ctx, c.sock, http.MethodPost, "/"+sub, url.Values{"id": {id}})
	case sub == "retry":
		err = c.q.RetryNow(id)
	default:
		// Its temporary files go from the servers at the daemon's next
		// connection.
		if it, gerr := c.q.Get(id); gerr == nil {
			if oerr := c.q.AddOrphans(orphansOf(c.cfg, it)); oerr != nil {
				fmt.Fprintf(c.stderr, "camftpd queue drop: its temporary files stay on the servers: %v\n", oerr)
			}
		}
		err = c.q.Drop(id)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "camftpd queue %s: %s\n", sub, escName(err.Error()))
		return 1
	}
	fmt.Fprintf(c.stdout, "%s: %s\n", sub, escName(orAll(id)))
	return 0
}
