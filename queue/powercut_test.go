package queue

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camftpd/camftpd/internal/testtime"
)

// The power-cut test re-executes this test binary as a child (environment
// switch envChild) that works on a real queue file in a loop and is killed
// with SIGKILL at random moments. The child writes an append-only,
// fsync'd intent log: "b" before each operation, "e" after it returns. After
// each kill the parent reopens the file and checks it against the log.
//
// The test logs its random seed; CAMFTPD_QUEUE_POWERCUT_SEED=<seed> runs it
// again with the same kill delays and the same choices in each child
// (envChildSeed): the same captures and operations, until a lease returns
// another item because a retry's backoff (wall clock, 1-4 ms) ran out
// sooner or later than in the first run. Where the kill lands in the
// child's sequence depends on the machine's timing too, so a replay hits
// the same region of the run, not necessarily the same instruction.
const (
	envChild     = "CAMFTPD_QUEUE_POWERCUT_CHILD"
	envDB        = "CAMFTPD_QUEUE_POWERCUT_DB"
	envLog       = "CAMFTPD_QUEUE_POWERCUT_LOG"
	envGen       = "CAMFTPD_QUEUE_POWERCUT_GEN"
	envChildSeed = "CAMFTPD_QUEUE_POWERCUT_CHILD_SEED"
	envSeed      = "CAMFTPD_QUEUE_POWERCUT_SEED"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(powerCutChild())
	}
	if os.Getenv(envStartup) != "" {
		os.Exit(startupChild())
	}
	os.Exit(m.Run())
}

// powerCutHistory is small: far fewer than the done items, none of which
// may be pruned (their files are never absent).
const powerCutHistory = 40

type intentLog struct{ f *os.File }

func (l *intentLog) rec(format string, a ...any) {
	if _, err := fmt.Fprintf(l.f, format+"\n", a...); err != nil {
		panic(err)
	}
	if err := l.f.Sync(); err != nil {
		panic(err)
	}
}

func capLine(c Capture) string {
	return fmt.Sprintf("%s %d %d %d %d", c.Path, c.Size, c.ModTime.UnixNano(), c.Inode, c.Priority)
}

func powerCutChild() int {
	gen, _ := strconv.Atoi(os.Getenv(envGen))
	f, err := os.OpenFile(os.Getenv(envLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l := &intentLog{f}
	q, err := Open(os.Getenv(envDB), &Options{
		BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond,
		HistoryMaxCount: powerCutHistory, HistoryMaxAge: -1, Logger: quietLogger(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	l.rec("open %d", gen)
	fmt.Println("ready")
	seed, err := strconv.ParseUint(os.Getenv(envChildSeed), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child seed:", err)
		return 2
	}
	r := rand.New(rand.NewPCG(seed, uint64(gen)))
	var known []Capture
	acked := map[string]bool{} // by path: may be pruned, so not re-enqueued
	// leased in lease order, picked from by r: a map's order would make the
	// run differ from its replay.
	var leased []string
	pickLeased := func() string {
		i := r.IntN(len(leased))
		id := leased[i]
		leased = append(leased[:i], leased[i+1:]...)
		return id
	}
	fail := func(format string, a ...any) int {
		l.rec("BUG "+format, a...)
		fmt.Fprintf(os.Stderr, format+"\n", a...)
		return 3
	}
	for n := 0; ; n++ {
		switch p := r.IntN(100); {
		case p < 35: // new capture
			c := Capture{
				Path:    fmt.Sprintf("/media/DCIM/%03d/IMG_%05d.JPG", gen, n),
				Size:    int64(1 + r.IntN(30<<20)),
				ModTime: time.Unix(1764000000+int64(n), int64(r.IntN(1e9))),
				Inode:   uint64(r.Uint32()),
			}
			c = synthetic(c)
			if r.IntN(8) == 0 {
				c.Priority = 1
			}
			l.rec("enq-b %s", capLine(c))
			it, added, err := q.Enqueue(c)
			if err != nil {
				return fail("enqueue: %v", err)
			}
			if !added {
				return fail("new capture not added: %s", c.Path)
			}
			l.rec("enq-e %s %s", it.ID, capLine(c))
			known = append(known, c)
		case p < 40 && len(known) > 0: // the same capture again: must be a no-op
			c := known[r.IntN(len(known))]
			if acked[c.Path] {
				continue
			}
			_, added, err := q.Enqueue(c)
			if err != nil || added {
				return fail("re-enqueue %s: added=%v err=%v", c.Path, added, err)
			}
		case p < 65:
			l.rec("lease-b")
			it, ok, err := q.Lease("child")
			if err != nil {
				return fail("lease: %v", err)
			}
			if ok {
				leased = append(leased, it.ID)
				l.rec("lease-e %s", it.ID)
			} else {
				l.rec("lease-none")
			}
		case p < 80 && len(leased) > 0:
			id := pickLeased()
			l.rec("ack-b %s", id)
			if it, err := q.Get(id); err == nil {
				acked[it.Capture.Path] = true
			}
			if r.IntN(2) == 0 {
				// The daemon's way (AckSoon from another goroutine, the
				// next Lease meanwhile): both in one transaction when
				// the Lease comes within the linger. A kill between
				// them leaves the ack pending as above; the lease is
				// taken back at Open either way.
				acked := make(chan error, 1)
				go func() { acked <- q.AckSoon(context.Background(), id, "/remote/"+id, "sha", 50*time.Millisecond) }()
				it, ok, err := q.Lease("child")
				if err != nil {
					return fail("lease with ack: %v", err)
				}
				if err := <-acked; err != nil {
					return fail("ack soon: %v", err)
				}
				if ok {
					leased = append(leased, it.ID)
				}
			} else if err := q.Ack(id, "/remote/"+id, "sha"); err != nil {
				return fail("ack: %v", err)
			}
			l.rec("ack-e %s", id)
		case p < 92 && len(leased) > 0:
			id := pickLeased()
			l.rec("fail-b %s", id)
			if _, err := q.Fail(id, "transient"); err != nil {
				return fail("fail: %v", err)
			}
			l.rec("fail-e %s", id)
		case p < 95 && len(leased) > 0:
			id := pickLeased()
			l.rec("park-b %s", id)
			if err := q.Park(id, "permanent"); err != nil {
				return fail("park: %v", err)
			}
			l.rec("park-e %s", id)
		case p < 97 && len(leased) > 0:
			id := pickLeased()
			l.rec("release-b %s", id)
			if err := q.Release(id); err != nil {
				return fail("release: %v", err)
			}
			l.rec("release-e %s", id)
		case p < 99:
			l.rec("retryall-b")
			if err := q.RetryNow(""); err != nil {
				return fail("retry all: %v", err)
			}
			l.rec("retryall-e")
		default:
			l.rec("reset-b")
			if err := q.ResetBackoff(); err != nil {
				return fail("reset: %v", err)
			}
			l.rec("reset-e")
		}
	}
}

// class folds the states a crash cannot tell apart: after a reopen nothing
// is in flight, and a due Retry becomes Pending inside any Lease.
type class int

const (
	clActive class = iota // pending, in flight or retry
	clDone
	clParked
)

func classOf(s State) class {
	switch s {
	case Done:
		return clDone
	case Parked:
		return clParked
	}
	return clActive
}

type model struct {
	caps  map[string]Capture // id -> capture (completed enqueues)
	state map[string]class
	// the operation begun but not completed when the child died
	pendingOp   string
	pendingArg  string
	pendingCap  Capture
	everDone    map[string]bool
	ops, opened int
}

func parseCap(f []string) (Capture, error) {
	if len(f) != 5 {
		return Capture{}, fmt.Errorf("capture fields %q", f)
	}
	size, err1 := strconv.ParseInt(f[1], 10, 64)
	ns, err2 := strconv.ParseInt(f[2], 10, 64)
	ino, err3 := strconv.ParseUint(f[3], 10, 64)
	prio, err4 := strconv.Atoi(f[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Capture{}, err
	}
	return synthetic(Capture{Path: f[0], Size: size, ModTime: time.Unix(0, ns), Inode: ino, Priority: prio}), nil
}

// synthetic completes a capture that has no file: Rel from Path, a
// fingerprint from its logged fields.
func synthetic(c Capture) Capture {
	c.Rel = strings.TrimPrefix(c.Path, "/media/")
	c.Fingerprint = fpOf(fmt.Sprintf("%s %d %d %d", c.Path, c.Size, c.ModTime.UnixNano(), c.Inode))
	return c
}

// replay reads the whole log and builds the model. A last line without its
// newline was torn by the kill (a write that crosses a page boundary can
// be cut between pages by SIGKILL): the record was never written, so it is
// cut off the file, before anything is appended after it.
func replay(path string) (*model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n') + 1; i < len(data) {
		if err := os.Truncate(path, int64(i)); err != nil {
			return nil, fmt.Errorf("cut the torn last line %q of the intent log: %w", data[i:], err)
		}
		data = data[:i]
	}
	m := &model{caps: map[string]Capture{}, state: map[string]class{}, everDone: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		op := fs[0]
		arg := ""
		if len(fs) > 1 {
			arg = fs[1]
		}
		if strings.HasSuffix(op, "-b") {
			m.pendingOp, m.pendingArg = strings.TrimSuffix(op, "-b"), arg
			if op == "enq-b" {
				c, err := parseCap(fs[1:])
				if err != nil {
					return nil, fmt.Errorf("log %q: %w", line, err)
				}
				m.pendingCap = c
			}
			continue
		}
		switch op {
		case "BUG":
			return nil, fmt.Errorf("child reported: %s", line)
		case "resolved":
			m.pendingOp = ""
			continue
		case "open":
			m.opened++
			m.pendingOp = ""
			continue
		case "enq-e":
			c, err := parseCap(fs[2:])
			if err != nil {
				return nil, fmt.Errorf("log %q: %w", line, err)
			}
			m.caps[arg], m.state[arg] = c, clActive
		case "lease-e", "lease-none", "release-e", "reset-e":
		case "ack-e":
			m.state[arg] = clDone
			m.everDone[arg] = true
		case "fail-e":
			m.state[arg] = clActive
		case "park-e":
			m.state[arg] = clParked
		case "retryall-e":
			for id, s := range m.state {
				if s == clParked {
					m.state[id] = clActive
				}
			}
		default:
			return nil, fmt.Errorf("log line %q", line)
		}
		m.ops++
		m.pendingOp = ""
	}
	return m, sc.Err()
}

// check compares the reopened queue with the model.
func (m *model) check(q *Queue) error {
	if err := q.Verify(); err != nil {
		return err
	}
	items, err := q.List()
	if err != nil {
		return err
	}
	byID := map[string]Item{}
	for _, it := range items {
		if it.State == InFlight {
			return fmt.Errorf("item %s still in flight after reopen", it.ID)
		}
		byID[it.ID] = it
	}
	extra, pruned := 0, 0
	for id, want := range m.state {
		it, ok := byID[id]
		if !ok && (want == clDone || m.pendingOp == "ack" && m.pendingArg == id) {
			pruned++ // done, then pruned from history
			continue
		}
		if !ok {
			return fmt.Errorf("enqueued capture %s (%s) lost", id, m.caps[id].Path)
		}
		got, found, err := q.Lookup(m.caps[id])
		if err != nil {
			return fmt.Errorf("lookup of %s by identity: %w", id, err)
		}
		if !found || got.ID != id {
			return fmt.Errorf("lookup of %s by identity: found %v, item %q", id, found, got.ID)
		}
		have := classOf(it.State)
		allowed := have == want
		switch {
		case allowed:
		case m.pendingArg == id && m.pendingOp == "ack" && have == clDone:
			allowed = true
		case m.pendingArg == id && m.pendingOp == "park" && have == clParked:
			allowed = true
		case m.pendingOp == "retryall" && want == clParked && have == clActive:
			allowed = true
		}
		if !allowed {
			return fmt.Errorf("item %s (%s) is %s, log says class %d (unfinished op %q %s)", id, m.caps[id].Path, it.State, want, m.pendingOp, m.pendingArg)
		}
	}
	for id, it := range byID {
		if _, ok := m.state[id]; ok {
			continue
		}
		// Only the capture whose enqueue was cut may be there without an "e".
		if m.pendingOp != "enq" || identity(it.Capture) != identity(m.pendingCap) || it.State != Pending {
			return fmt.Errorf("unexpected item %s (%s, %s)", id, it.Capture.Path, it.State)
		}
		extra++
	}
	if m.pendingOp == "retryall" {
		// All or nothing: one transaction.
		still, moved := 0, 0
		for id, want := range m.state {
			if want == clParked {
				if classOf(byID[id].State) == clParked {
					still++
				} else {
					moved++
				}
			}
		}
		if still > 0 && moved > 0 {
			return fmt.Errorf("RetryNow(\"\") half applied: %d still parked, %d moved", still, moved)
		}
	}
	if len(byID) != len(m.state)+extra-pruned {
		return fmt.Errorf("%d items in the file, %d in the log (+%d cut enqueue, -%d pruned)", len(byID), len(m.state), extra, pruned)
	}
	if pruned > 0 {
		// No scan ran, so no file is absent: history must be kept whole,
		// however small HistoryMaxCount is.
		return fmt.Errorf("%d done items pruned while their files are on the card (history bound %d applies to absent files only)", pruned, powerCutHistory)
	}
	return nil
}

// resolve appends to the log what the reopened file says about the
// operation the kill cut, so the next replay knows its outcome.
func (m *model) resolve(q *Queue, logPath string) error {
	var lines []string
	switch m.pendingOp {
	case "enq":
		if it, ok, err := q.Lookup(m.pendingCap); err != nil {
			return err
		} else if ok {
			lines = append(lines, fmt.Sprintf("enq-e %s %s", it.ID, capLine(m.pendingCap)))
		}
	case "ack", "park":
		it, err := q.Get(m.pendingArg)
		if errors.Is(err, ErrNotFound) && m.pendingOp == "ack" {
			lines = append(lines, "ack-e "+m.pendingArg) // done and already pruned
			break
		}
		if err != nil {
			return err
		}
		if classOf(it.State) != m.state[m.pendingArg] {
			lines = append(lines, m.pendingOp+"-e "+m.pendingArg)
		}
	case "retryall":
		for id, want := range m.state {
			if want == clParked {
				if it, _ := q.Get(id); it.State != Parked {
					lines = append(lines, "retryall-e")
				}
				break
			}
		}
	}
	lines = append(lines, "resolved")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		return err
	}
	return f.Sync()
}

// childArgv returns the program and arguments that run this test binary
// as a child, chosen without a failing exec. Under qemu-user without
// binfmt_misc the kernel cannot exec an arm/arm64 binary, and trying anyway
// (then falling back on ENOEXEC) is not harmless: the forked child reports
// the error and exits before exec, and qemu-user (7.2, Debian 12) can
// deadlock in that exit when another thread of the parent was creating a
// thread at the moment of the fork (a mutex its exit takes, most likely
// clone_lock, is copied into the child held: the child waits on it in
// FUTEX_WAIT). os/exec then waits for that child forever, inside Start.
// Heavy load makes the window wide: the new thread takes long to start.
// So: if the host's own binaries (/bin/sh) are not of this binary's
// machine, the child is started through qemu-<arch>-static directly.
func childArgv() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	qemu := map[string]string{"arm": "qemu-arm-static", "arm64": "qemu-aarch64-static"}[runtime.GOARCH]
	if qemu == "" {
		return []string{exe}, nil
	}
	ours, host := testtime.ELFMachine(exe), testtime.ELFMachine("/bin/sh")
	if ours == 0 || host == 0 || ours == host || ours == elf.EM_ARM && host == elf.EM_AARCH64 {
		return []string{exe}, nil // native (an arm64 kernel runs armv7 binaries)
	}
	p, err := exec.LookPath(qemu)
	if err != nil {
		return nil, fmt.Errorf("this %s test binary runs emulated on a %v host and %s is not in PATH: apt-get install qemu-user-static (scripts/setup)", runtime.GOARCH, host, qemu)
	}
	return []string{p, exe}, nil
}

// Bounds for starting a child; generous for qemu on a loaded 2-core machine.
const (
	childStartTimeout = 30 * time.Second
	childReadyTimeout = 2 * time.Minute
)

// logTail returns the last n lines of the intent log, indented.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "\t(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	return "\t" + strings.Join(lines, "\n\t")
}

// startChild starts the test binary as a child with env added. It does not
// return before the child has exec'd: a start that blocks longer than
// childStartTimeout (a fork that deadlocked before exec, see childArgv) is
// undone (the forked copy is killed; it never ran the child's code) and
// retried, and reported with t.Fatalf after three tries.
func startChild(t *testing.T, env []string) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
	t.Helper()
	argv, err := childArgv()
	if err != nil {
		t.Fatal(err)
	}
	try := func(argv []string) (*exec.Cmd, *bufio.Reader, *strings.Builder, error) {
		stderr := &strings.Builder{}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, nil, err
		}
		started := make(chan error, 1)
		go func() { started <- cmd.Start() }()
		select {
		case err := <-started:
			return cmd, bufio.NewReader(out), stderr, err
		case <-time.After(childStartTimeout):
		}
		killed := killPreExecForks()
		select {
		case err := <-started:
			if err == nil {
				_ = cmd.Wait() // reaps the copy just killed; its error says so
			}
			if errors.Is(err, syscall.ENOEXEC) {
				return nil, nil, nil, err // it hung exiting after a failed exec
			}
		case <-time.After(childStartTimeout):
			return nil, nil, nil, fmt.Errorf("starting %q blocked for %s and %d forked copies were killed: the fork/exec is stuck", argv, 2*childStartTimeout, killed)
		}
		return nil, nil, nil, errStartHung
	}
	for attempt := 1; ; attempt++ {
		cmd, out, stderr, err := try(argv)
		if errors.Is(err, errStartHung) && attempt < 3 {
			t.Logf("starting the child blocked for %s before exec (fork deadlock in the emulator?); killed the forked copy, retrying", childStartTimeout)
			continue
		}
		if errors.Is(err, syscall.ENOEXEC) && len(argv) == 1 {
			// An armv7 binary on an arm64 kernel without 32-bit support.
			qemu := map[string]string{"arm": "qemu-arm-static", "arm64": "qemu-aarch64-static"}[runtime.GOARCH]
			if p, lerr := exec.LookPath(qemu); lerr == nil && qemu != "" {
				argv = []string{p, argv[0]}
				continue
			}
			t.Fatalf("exec %s: %v, and no %s to run it: apt-get install qemu-user-static", argv[0], err, qemu)
		}
		if err != nil {
			t.Fatalf("start child %q (attempt %d, %s each): %v", argv, attempt, childStartTimeout, err)
		}
		return cmd, out, stderr
	}
}

var errStartHung = errors.New("child start blocked before exec")

// killPreExecForks kills this process's children that have not exec'd yet
// (their environment is still ours, without envChild) and returns how many.
func killPreExecForks() int {
	me := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	n := 0
	for _, d := range dirs {
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != me {
			continue
		}
		environ, err := os.ReadFile(d + "/environ")
		if err != nil || bytes.Contains(environ, []byte(envChild+"=1\x00")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// waitReady waits for the child's "ready" line. On timeout or anything
// else it kills the child and returns an error with the child's stderr.
func waitReady(cmd *exec.Cmd, out *bufio.Reader, stderr *strings.Builder) error {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := out.ReadString('\n')
		ch <- res{line, err}
	}()
	var r res
	select {
	case r = <-ch:
		if r.err == nil && r.line == "ready\n" {
			return nil
		}
	case <-time.After(childReadyTimeout):
		r.err = fmt.Errorf("no \"ready\" line within %s", childReadyTimeout)
	}
	_ = cmd.Process.Kill() // fails only if it has ended already: Wait says how
	werr := cmd.Wait()
	if r.err == nil {
		r.err = fmt.Errorf("read %q instead of \"ready\"", r.line)
	} else {
		r.err = fmt.Errorf("read %q: %w", r.line, r.err)
	}
	if werr == nil {
		return fmt.Errorf("child did not start: %w; it ended with status 0; its stderr: %q", r.err, stderr.String())
	}
	return fmt.Errorf("child did not start: %w; child ended: %w; its stderr: %q", r.err, werr, stderr.String())
}

func TestPowerCutSIGKILL(t *testing.T) {
	runs := 30
	if testing.Short() {
		runs = 12
	}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "queue.db")
	logPath := filepath.Join(dir, "intent.log")
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want the unsigned integer a failed run logged: %v", envSeed, v, err)
		}
	}
	t.Logf("power cut: seed %d (replay with %s=%d)", seed, envSeed, seed)
	r := rand.New(rand.NewPCG(seed, 7))
	start := time.Now()
	everDone := map[string]bool{}
	// fatal keeps the queue file and the intent log for a post-mortem.
	fatal := func(format string, a ...any) {
		t.Helper()
		keep, err := os.MkdirTemp("", "queue-powercut-failure-")
		if err == nil {
			for _, name := range []string{"queue.db", "intent.log"} {
				if b, rerr := os.ReadFile(filepath.Join(dir, name)); rerr == nil {
					if werr := os.WriteFile(filepath.Join(keep, name), b, 0o600); werr != nil {
						t.Logf("could not keep %s for the post-mortem: %v", name, werr)
					}
				}
			}
			format += " (queue file and intent log kept in " + keep + ")"
		}
		format += fmt.Sprintf(" [seed %d: replay with %s=%d]", seed, envSeed, seed)
		t.Fatalf(format+"\nlast lines of the intent log:\n%s", append(a, logTail(logPath, 12))...)
	}
	var cutPending, cutOps int
	for gen := 1; gen <= runs; gen++ {
		cmd, out, stderr := startChild(t, []string{envChild + "=1", envDB + "=" + dbPath, envLog + "=" + logPath,
			envGen + "=" + strconv.Itoa(gen), envChildSeed + "=" + strconv.FormatUint(r.Uint64(), 10)})
		var delay time.Duration
		if gen%5 == 0 {
			// Kill anywhere from exec to the first operations: inside Open
			// (lease revert, pruning) too.
			delay = time.Duration(r.IntN(40)) * time.Millisecond
		} else {
			if err := waitReady(cmd, out, stderr); err != nil {
				fatal("gen %d: %v", gen, err)
			}
			delay = time.Duration(r.IntN(300)) * time.Millisecond
		}
		time.Sleep(delay) // the random moment of the power cut: the pause is the test
		// ErrProcessDone: it ended by itself, which the check below reports.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			fatal("gen %d: kill the child: %v", gen, err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			fatal("gen %d: child ended on its own: %v, stderr: %s", gen, err, stderr)
		}

		m, err := replay(logPath)
		if err != nil {
			fatal("gen %d: %v", gen, err)
		}
		var logbuf strings.Builder
		q, err := Open(dbPath, &Options{HistoryMaxCount: powerCutHistory, HistoryMaxAge: -1, Logger: slog.New(slog.NewTextHandler(&logbuf, nil))})
		if err != nil {
			fatal("gen %d: reopen: %v", gen, err)
		}
		if q.Recovered() {
			fatal("gen %d: a kill made the file look corrupt", gen)
		}
		if l := logbuf.String(); strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			fatal("gen %d: reopen had to repair: %s", gen, l)
		}
		if err := m.check(q); err != nil {
			q.Close()
			fatal("gen %d (killed %s after ready): %v", gen, delay, err)
		}
		for id := range everDone {
			it, err := q.Get(id)
			if errors.Is(err, ErrNotFound) {
				continue // pruned from history
			}
			if err != nil || it.State != Done {
				fatal("gen %d: done item %s went back to %s (%v)", gen, id, it.State, err)
			}
		}
		for id := range m.everDone {
			everDone[id] = true
		}
		done, _ := q.List(Done)
		for _, it := range done {
			everDone[it.ID] = true
		}
		if m.pendingOp != "" {
			cutPending++
			if err := m.resolve(q, logPath); err != nil {
				fatal("gen %d: %v", gen, err)
			}
		}
		cutOps = m.ops
		c, _ := q.Counts()
		q.Close()
		if gen == runs {
			t.Logf("power cut: %d SIGKILLs in %s, %d operations logged, %d kills inside an operation, final counts %+v",
				runs, time.Since(start).Round(time.Millisecond), cutOps, cutPending, c)
		}
	}
}

// TestLockHeldByAnotherProcess: while a child process has the queue open,
// Open in this process fails with ErrLocked after LockTimeout, not a hang.
func TestLockHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "queue.db")
	cmd, out, stderr := startChild(t, []string{envChild + "=1", envDB + "=" + dbPath,
		envLog + "=" + filepath.Join(dir, "intent.log"), envGen + "=1", envChildSeed + "=1"})
	defer func() {
		if cmd.ProcessState == nil { // the test stopped before the kill below
			_ = cmd.Process.Kill()
			_ = cmd.Wait() // killed: its error says so
		}
	}()
	if err := waitReady(cmd, out, stderr); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Open(dbPath, &Options{LockTimeout: 500 * time.Millisecond, Logger: quietLogger()})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("want ErrLocked, got %v", err)
	}
	if el := time.Since(start); el < 400*time.Millisecond || el > within(10*time.Second) {
		t.Fatalf("lock wait took %s, want about 500ms", el)
	}
	t.Logf("%v", err)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the lock holder: %v", err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the lock holder ended by itself before the kill: %v, stderr: %s", err, stderr)
	}
	q, err := Open(dbPath, &Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open after the holder died: %v", err)
	}
	defer q.Close()
	if q.Recovered() {
		t.Fatal("file looked corrupt after its holder was killed")
	}
	mustVerify(t, q)
}
