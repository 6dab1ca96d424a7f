package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The structure of a queue file (every page reachable once, freelist,
// key order) is checked with bbolt's own Tx.Check, never by reading its
// on-disk format here. Tx.Check runs in a goroutine of its own, without
// debug.SetPanicOnFault: on a damaged file it can fault on a page pointer
// outside the file (a fatal error, not a panic) or, on a cycle, recurse
// and allocate without end (measured: 2 of 150 randomly damaged files
// crashed it, 1 grew to 23 GiB). So it runs in a child process, this very
// executable re-run with envCheck set: the init below runs the check
// before anything else of the program and exits. A crash of the child
// means a corrupt file; its first reported inconsistency ends it.
const (
	envCheck     = "CAMFTPD_QUEUE_CHECK_FILE"
	envCheckLock = "CAMFTPD_QUEUE_CHECK_LOCK_TIMEOUT" // Options.LockTimeout
)

// Exit codes of the checking child.
const (
	checkSound   = 0
	checkFatal   = 2 // the Go runtime's code for a fatal error (fault, stack overflow)
	checkCorrupt = 3 // first line of stdout says why
	checkNoOpen  = 4 // could not open the file (not about its content)
)

func init() {
	if path, ok := os.LookupEnv(envCheck); ok {
		lock, err := time.ParseDuration(os.Getenv(envCheckLock))
		if err != nil {
			lock = DefaultLockTimeout
		}
		code, msg := checkChild(path, lock)
		fmt.Println(msg)
		os.Exit(code)
	}
}

// checkChild opens path read-only and runs Tx.Check, stopping at the first
// inconsistency. Tx.Check touches every page (110 MiB for 250,000 shots):
// the child's resident set peaks near the file's size, file-backed (page
// cache mapped), for the fraction of a second it runs. Dropping the pages
// from its mapping every 5 ms while the check ran did not lower the peak
// the kernel reports (VmHWM 97-116 MiB).
func checkChild(path string, lock time.Duration) (code int, msg string) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			code, msg = checkCorrupt, fmt.Sprintf("reading the file panicked: %v", r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lock})
	if err != nil {
		return checkNoOpen, err.Error()
	}
	fi, err := os.Stat(path)
	if err != nil {
		return checkNoOpen, err.Error()
	}
	var sum byte
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("file is truncated: bbolt's meta page (txid %d) needs %d bytes, the file has %d", tx.ID(), tx.Size(), fi.Size())
		}
		for err := range tx.Check() {
			// The checking goroutine may be stuck on a cycle: exit now.
			fmt.Println(err.Error())
			os.Exit(checkCorrupt)
		}
		// Tx.Check reads every page and key but no value: a damaged value
		// offset or length passes it and faults the daemon later, when the
		// record is read (seen in TestCorruptRandomPageDamage in about one
		// run in three). Touch both ends of every key and value here, under
		// SetPanicOnFault: a bad one panics into the recover above.
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return touchAll(b, &sum) })
	})
	if err != nil {
		return checkCorrupt, err.Error()
	}
	return checkSound, fmt.Sprintf("ok (xor of the ends read: %02x)", sum)
}

// touchAll reads the first and last byte of every key and value of b and
// of the buckets inside it into sum (which the child prints, so that the
// reads stay).
func touchAll(b *bolt.Bucket, sum *byte) error {
	ends := func(p []byte) {
		if len(p) > 0 {
			*sum ^= p[0] ^ p[len(p)-1]
		}
	}
	err := b.ForEach(func(k, v []byte) error {
		ends(k)
		if v != nil {
			ends(v)
			return nil
		}
		if sub := b.Bucket(k); sub != nil {
			return touchAll(sub, sum)
		}
		return nil
	})
	return err
}

// checkArgv is the command that runs the checking child: this executable
// (tests run emulated set it to run under qemu-user).
var checkArgv = func() ([]string, error) {
	exe, err := os.Executable()
	return []string{exe}, err
}

// checkTimeout bounds the child: generous for a slow card (1 s per MiB on
// top of 30 s); a check that runs longer is taken for one that loops.
func checkTimeout(size int64) time.Duration {
	return 30*time.Second + time.Duration(size>>20)*time.Second
}

// checkFile runs the structural check of the queue file at path in a child
// process. Inconsistencies come back as *corruptError; a child that could
// not run or was killed by someone else is logged by the caller and the
// file is opened without it (its records are still checked in-process). A
// child that could not open the file (locked, not a bbolt file) returns
// nil: the caller's own bolt.Open says what is wrong.
func checkFile(path string, size int64, lock time.Duration) error {
	argv, err := checkArgv()
	if err != nil {
		return fmt.Errorf("cannot find own executable to run the check: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout(size))
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), envCheck+"="+path, envCheckLock+"="+lock.String())
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	firstLine := func(b *bytes.Buffer) string {
		s, _, _ := strings.Cut(strings.TrimSpace(b.String()), "\n")
		return s
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return corrupt("bbolt's Tx.Check did not finish within %s (a loop in the page tree)", checkTimeout(size))
	case !errors.As(err, &ee):
		return fmt.Errorf("cannot run the check: %w", err)
	case ee.ExitCode() == checkCorrupt:
		return corrupt("%s", firstLine(&out))
	case ee.ExitCode() == checkFatal:
		return corrupt("bbolt's Tx.Check crashed on the file: %s", firstLine(&stderr))
	case ee.ExitCode() == checkNoOpen:
		return nil
	default:
		return fmt.Errorf("the check ended with %w: %s", err, firstLine(&stderr))
	}
}

// corruptError marks a file whose content cannot be trusted.
type corruptError struct{ err error }

func (e *corruptError) Error() string { return e.err.Error() }
func (e *corruptError) Unwrap() error { return e.err }

func corrupt(format string, a ...any) error {
	return &corruptError{fmt.Errorf(format, a...)}
}
