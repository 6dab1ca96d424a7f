package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemonProc is one camftpd process (`camftpd run -config F`) watching the
// drop folder. Every run starts a fresh one with an empty state folder, so
// its start-up is not measured and no queue history carries over.
type daemonProc struct {
	cmd  *exec.Cmd
	sock string
	log  *os.File
	done chan struct{}
	err  error
	http *http.Client
	Conf string // the configuration text used
}

// daemonStatus is the part of GET /status the bench reads.
type daemonStatus struct {
	State         string `json:"state"`
	UploadedFiles int64  `json:"uploaded_files"`
	UploadedBytes int64  `json:"uploaded_bytes"`
	Queue         struct {
		Pending, InFlight, Retry, Done, Parked int
	} `json:"queue"`
	Errors []struct {
		File  string `json:"file"`
		Error string `json:"error"`
	} `json:"errors"`
	TLS *struct {
		Version string `json:"version"`
		Suite   string `json:"suite"`
		Resumed bool   `json:"resumed"`
	} `json:"tls"`
}

// camftpdConfig is the bench's configuration: the shipped defaults (see
// camftpd.example.toml) except where the files are, where the server is,
// and a flat remote name.
func camftpdConfig(dir, media string, srv *server, host string, extra string) string {
	q := strconv.Quote
	return strings.Join([]string{
		`board = "generic"`,
		`media_dir = ` + q(media),
		`state_dir = ` + q(filepath.Join(dir, "state")),
		`storage_mount = ""`,
		`interface = ""`,
		`status_socket = ` + q(filepath.Join(dir, "camftpd.sock")),
		extra,
		`[[server]]`,
		`name = "bench"`,
		`host = ` + q(host),
		`port = ` + strconv.Itoa(srv.Port),
		`user = ` + q(srv.User),
		`password = ` + q(srv.Pass),
		`remote_template = "{name}"`,
		`ca_files = [` + q(srv.CA) + `]`,
		``,
	}, "\n")
}

func startDaemon(bin, dir, conf string) (*daemonProc, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "camftpd.toml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "camftpd.log"))
	if err != nil {
		return nil, err
	}
	d := &daemonProc{sock: filepath.Join(dir, "camftpd.sock"), log: logf, done: make(chan struct{}), Conf: conf}
	d.cmd = exec.Command(bin, "run", "-config", cfgPath)
	d.cmd.Stdout = logf
	d.cmd.Stderr = logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting camftpd: %w", err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	d.http = &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "unix", d.sock)
		}},
		Timeout: 5 * time.Second,
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := d.Status(); err == nil {
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("camftpd exited at start (%w): %s", d.exitError(), d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("camftpd's status socket did not answer within 15 s: %s", d.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemonProc) Pid() int { return d.cmd.Process.Pid }

func (d *daemonProc) Status() (daemonStatus, error) {
	var s daemonStatus
	resp, err := d.http.Get("http://camftpd/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("status: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// exitError is how the daemon ended, once done is closed; ending by itself
// is an error for the bench even with status 0.
func (d *daemonProc) exitError() error {
	if d.err == nil {
		return errors.New("exit status 0")
	}
	return d.err
}

// Exited is for arrivals.Wait: it yields the exit error if the
// daemon dies during a run.
func (d *daemonProc) Exited() <-chan error {
	ch := make(chan error, 1)
	go func() {
		<-d.done
		ch <- fmt.Errorf("camftpd exited (%w): %s", d.exitError(), d.logTail())
	}()
	return ch
}

// WaitUploaded waits until the daemon itself counts n uploads done (after
// its own verification), so that its CPU is read once its work is over.
func (d *daemonProc) WaitUploaded(n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		s, err := d.Status()
		if err == nil && s.UploadedFiles >= int64(n) && s.Queue.Pending == 0 && s.Queue.InFlight == 0 {
			return nil
		}
		if time.Now().After(deadline) && err != nil {
			return fmt.Errorf("camftpd's status did not answer at the end of %v waiting for %d uploads: %w", limit, n, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("camftpd reported %d of %d uploads done within %v", s.UploadedFiles, n, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemonProc) logTail() string {
	b, _ := os.ReadFile(d.log.Name())
	return lastLines(strings.TrimSpace(string(b)), 4)
}

// Stop ends the daemon with SIGTERM (SIGKILL after 10 s).
func (d *daemonProc) Stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
	d.log.Close()
}
