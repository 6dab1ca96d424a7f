package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Guest is one boot of the emulated camera: a qemu-system-aarch64 process
// whose serial console is our stdin/stdout pipe and whose monitor is a Unix
// socket (for set_link).
type Guest struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	monPath string
	started time.Time

	mu     sync.Mutex
	lines  []string
	stamps []time.Time
	notify chan struct{} // closed and replaced on every new line or exit
	exited bool
	why    error // how QEMU ended (cmd.Wait), once exited
	done   chan struct{}
	seq    int
}

// BootOptions describe one boot.
type BootOptions struct {
	Image   string // folder with vmlinuz and base.cpio.gz (scripts/qemu/build-image)
	Initrd  string // initramfs to boot (base plus the run's files)
	State   string // ext4 image labelled "state", mounted on /state
	Media   string // card image labelled "card" (ext4, FAT32 or exFAT), mounted on /media
	Append  string // extra kernel command line
	RTCBase string // -rtc base=..., "" = host clock
	Log     string // console transcript
	Dir     string // where the monitor socket goes
}

func Boot(o BootOptions) (*Guest, error) {
	qemu, err := exec.LookPath("qemu-system-aarch64")
	if err != nil {
		return nil, errors.New("qemu-system-aarch64 is missing: apt-get install qemu-system-arm (scripts/setup installs it)")
	}
	mon := filepath.Join(o.Dir, fmt.Sprintf("mon-%d.sock", time.Now().UnixNano()))
	args := []string{
		"-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "256",
		"-nographic", "-no-reboot",
		"-kernel", filepath.Join(o.Image, "vmlinuz"),
		"-initrd", o.Initrd,
		"-append", strings.TrimSpace("console=ttyAMA0 panic=-1 quiet " + o.Append),
		"-drive", "file=" + o.State + ",format=raw,if=none,id=state",
		"-device", "virtio-blk-device,drive=state",
		"-drive", "file=" + o.Media + ",format=raw,if=none,id=media",
		"-device", "virtio-blk-device,drive=media",
		"-netdev", "user,id=net0",
		"-device", "virtio-net-device,netdev=net0,id=nic0",
		"-device", "virtio-rng-device",
		"-monitor", "unix:" + mon + ",server=on,wait=off",
	}
	if o.RTCBase != "" {
		args = append(args, "-rtc", "base="+o.RTCBase+",clock=host")
	}
	cmd := exec.Command(qemu, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	logf, err := os.OpenFile(o.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	g := &Guest{cmd: cmd, stdin: stdin, monPath: mon, notify: make(chan struct{}), done: make(chan struct{})}
	fmt.Fprintf(logf, "=== boot %s: %s %s\n", time.Now().Format(time.RFC3339), qemu, strings.Join(args, " "))
	g.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		r := bufio.NewReader(pr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				line = strings.TrimRight(line, "\r\n")
				fmt.Fprintf(logf, "%7.3f %s\n", time.Since(g.started).Seconds(), line)
				g.mu.Lock()
				g.lines = append(g.lines, line)
				g.stamps = append(g.stamps, time.Now())
				close(g.notify)
				g.notify = make(chan struct{})
				g.mu.Unlock()
			}
			if err != nil {
				break
			}
		}
		logf.Close()
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		g.mu.Lock()
		g.exited, g.why = true, err
		close(g.notify)
		g.notify = make(chan struct{})
		g.mu.Unlock()
		close(g.done)
	}()
	return g, nil
}

// Mark is a position in the console transcript.
func (g *Guest) Mark() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.lines)
}

// Lines returns the console lines from mark on.
func (g *Guest) Lines(from int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.lines[from:]...)
}

// WaitLine waits for a console line at or after from for which match is
// true, and returns its index, text and arrival time.
func (g *Guest) WaitLine(from int, timeout time.Duration, match func(string) bool) (int, string, time.Time, error) {
	deadline := time.After(timeout)
	for {
		g.mu.Lock()
		for i := from; i < len(g.lines); i++ {
			if match(g.lines[i]) {
				l, t := g.lines[i], g.stamps[i]
				g.mu.Unlock()
				return i, l, t, nil
			}
		}
		from = len(g.lines)
		exited, why, ch := g.exited, g.why, g.notify
		g.mu.Unlock()
		if exited && why == nil {
			return 0, "", time.Time{}, errors.New("guest powered off (see the console log)")
		}
		if exited {
			return 0, "", time.Time{}, fmt.Errorf("guest exited (qemu: %w; see the console log)", why)
		}
		select {
		case <-ch:
		case <-deadline:
			return 0, "", time.Time{}, fmt.Errorf("no matching console line within %v", timeout)
		}
	}
}

// WaitPrefix waits for a line starting with prefix.
func (g *Guest) WaitPrefix(from int, timeout time.Duration, prefix string) (string, time.Time, error) {
	_, l, t, err := g.WaitLine(from, timeout, func(s string) bool { return strings.HasPrefix(s, prefix) })
	return l, t, err
}

// Send writes a shell command line to the console without waiting.
func (g *Guest) Send(cmd string) error {
	_, err := io.WriteString(g.stdin, cmd+"\n")
	return err
}

// Run runs a shell command in the guest and returns the console lines it
// printed (daemon log lines included: filter by prefix) and its status.
func (g *Guest) Run(cmd string, timeout time.Duration) ([]string, int, error) {
	g.mu.Lock()
	g.seq++
	id := g.seq
	g.mu.Unlock()
	from := g.Mark()
	// The marker is split in the command text so that an echoed command
	// line can never be taken for the marker itself.
	if err := g.Send(fmt.Sprintf(`%s; echo "@@E""ND %d $?"`, cmd, id)); err != nil {
		return nil, -1, err
	}
	want := fmt.Sprintf("@@END %d ", id)
	i, l, _, err := g.WaitLine(from, timeout, func(s string) bool { return strings.Contains(s, want) })
	if err != nil {
		return nil, -1, fmt.Errorf("guest command %q: %w", cmd, err)
	}
	var rc int
	if _, err := fmt.Sscanf(l[strings.Index(l, want)+len(want):], "%d", &rc); err != nil {
		return nil, -1, fmt.Errorf("guest command %q: no exit status in its end marker %q: %w", cmd, l, err)
	}
	return g.Lines(from)[:i-from], rc, nil
}

// Monitor sends one command to the QEMU monitor.
func (g *Guest) Monitor(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", g.monPath, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("qemu monitor: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", fmt.Errorf("qemu monitor: %w", err)
	}
	r := bufio.NewReader(c)
	readPrompt := func() (string, error) {
		var b strings.Builder
		for {
			s, err := r.ReadString(' ')
			b.WriteString(s)
			if err != nil {
				return b.String(), err
			}
			if strings.HasSuffix(b.String(), "(qemu) ") {
				return b.String(), nil
			}
		}
	}
	if _, err := readPrompt(); err != nil {
		return "", fmt.Errorf("qemu monitor greeting: %w", err)
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	out, err := readPrompt()
	return out, err
}

// Kill is a power cut: SIGKILL to QEMU, nothing flushed by the guest.
func (g *Guest) Kill() {
	if g.cmd.Process != nil {
		// ESRCH: the group is gone already. Anything else, and QEMU itself
		// is killed, or waiting for it below would never end.
		if err := syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(os.Stderr, "kill qemu's process group %d: %v; killing qemu alone\n", g.cmd.Process.Pid, err)
			_ = g.cmd.Process.Kill() // fails only when it has exited already
		}
	}
	<-g.done
	os.Remove(g.monPath)
}

// Shutdown syncs and powers the guest off, killing it if it hangs.
func (g *Guest) Shutdown() {
	// A console that cannot be written to means QEMU is gone or stuck:
	// no use waiting for a poweroff that was never sent.
	if err := g.Send("sync; poweroff -f"); err == nil {
		select {
		case <-g.done:
		case <-time.After(20 * time.Second):
		}
	}
	g.Kill()
}
