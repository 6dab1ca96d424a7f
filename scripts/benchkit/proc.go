package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is what a client cost: CPU (user+system) and peak resident memory.
type usage struct {
	CPU    time.Duration
	User   time.Duration // user space only (TLS, hashing, the tool's own work)
	MaxRSS int64         // bytes
}

// timeBin is GNU time. It measures peak RSS: a child that Go starts (with
// CLONE_VM) inherits the harness's own high-water mark in ru_maxrss, while
// GNU time forks, so what it reports is the client's alone.
const timeBin = "/usr/bin/time"

// runTree runs one client process tree to its end and returns its cost:
// CPU from wait4 (the process and every descendant it waited for: for a
// shell loop, the shell and each curl it ran; plus GNU time's own, about a
// millisecond), and the peak RSS of the largest process of the tree as GNU
// time reports it.
func runTree(ctx context.Context, args []string) (usage, error) {
	rssFile, err := os.CreateTemp("", "bench-rss-")
	if err != nil {
		return usage{}, err
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	args = append([]string{timeBin, "-f", "%M", "-o", rssFile.Name()}, args...)
	cmd := exec.Command(args[0], args[1:]...)
	var out tailBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return usage{}, fmt.Errorf("starting %s: %w", args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
		if err == nil {
			err = ctx.Err()
		}
	}
	var u usage
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.CPU = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		u.User = time.Duration(syscall.TimevalToNsec(ru.Utime))
	}
	if b, rerr := os.ReadFile(rssFile.Name()); rerr == nil {
		lines := strings.Fields(string(b))
		if len(lines) > 0 {
			if kb, perr := strconv.ParseInt(lines[len(lines)-1], 10, 64); perr == nil {
				u.MaxRSS = kb * 1024
			}
		}
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, lastLines(msg, 3))
		}
		return u, err
	}
	return u, nil
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = append([]byte(nil), t.b[len(t.b)-8<<10:]...)
	}
	return len(p), nil
}
func (t *tailBuffer) String() string { return string(t.b) }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// procCPU returns the CPU time (user+system, and user alone; all threads)
// of a running process from /proc/PID/stat.
func procCPU(pid int) (total, user time.Duration, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("cannot parse /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("cannot parse utime/stime")
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, time.Duration(ut) * time.Second / hz, nil
}

// procHWM returns the peak resident set (VmHWM) of a running process.
func procHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}
