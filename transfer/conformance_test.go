package transfer

import (
	"context"
	"crypto/tls"
	"sync"

	"errors"
	"fmt"
	"github.com/camftpd/camftpd/tlspolicy"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// confCase is one case of the conformance suite. dir is a fresh remote
// directory for the case (without trailing slash).
type confCase struct {
	name   string
	inproc bool // needs fault injection: in-process server only
	once   bool // does not depend on the TLS version: TLS 1.3 only
	run    func(t *testing.T, tg *target, cfg Config, dir string)
}

var confCases = []confCase{
	{"upload", false, false, caseUpload},
	{"absolute-path", false, true, caseAbsolute},
	{"resume-restart", false, false, caseResumeRestart},
	{"temp-larger", false, true, caseTempLarger},
	{"resume-cancel", false, false, caseResumeCancel},
	{"cut", true, false, caseCut},
	{"one-client", false, false, caseOneClient},
	{"dot-refused", false, true, caseDotRefused},
	{"overwrite", false, true, caseOverwrite},
	{"skip", false, true, caseSkip},
	{"rename", false, true, caseRename},
	{"rename-intent", false, true, caseRenameIntent},
	{"same-shot", false, true, caseSameShot},
	{"auth", false, true, caseAuth},
	{"permission", false, true, casePermission},
	{"control-char", false, true, caseControlChar},
	{"local-vanished", false, true, caseVanished},
	{"421-connect", true, true, case421},
	{"452-stor", true, false, case452},
	{"slow-server", true, true, caseSlow},
	{"stalled-data", true, false, caseStalled},
}

// TestConformance runs the same cases against the in-process server (with
// injected faults) and vsftpd, ProFTPD and Pure-FTPd, each with its default
// TLS settings (session reuse required where that is the default), with RSA
// and ECDSA certificates, and TLS 1.2 and 1.3.
func TestConformance(t *testing.T) {
	base := runtime.NumGoroutine()
	// The combinations are parallel subtests: -parallel bounds how many run
	// at once (under -race or qemu eight at a time stretch every timed case).
	// Every server is closed when its subtest ends, so once all have ended
	// (the parent's cleanup runs after its parallel subtests) the goroutine
	// count must be back to base: no leak from the client (nor the
	// in-process server).
	t.Cleanup(func() { goroutines(t, base) })
	for _, server := range []string{"inproc", "vsftpd", "proftpd", "pureftpd"} {
		for _, ecdsa := range []bool{false, true} {
			cert := "RSA"
			if ecdsa {
				cert = "ECDSA"
			}
			t.Run(server+"/"+cert, func(t *testing.T) {
				t.Parallel()
				conformance(t, server, ecdsa)
			})
		}
	}
}

func conformance(t *testing.T, server string, ecdsa bool) {
	tg := startTarget(t, server, ecdsa)
	for _, max12 := range []bool{false, true} {
		ver := "TLS1.3"
		if max12 {
			ver = "TLS1.2"
		}
		for _, cc := range confCases {
			if cc.inproc && tg.inproc == nil || cc.once && max12 {
				continue
			}
			t.Run(ver+"/"+cc.name, func(t *testing.T) {
				if tg.inproc != nil {
					tg.inproc.SetFaults(ftpstest.Faults{})
				}
				cfg := tg.config(t, max12)
				var got []string
				var mu sync.Mutex
				cfg.TLS = tg.tlsConfigFunc(t, max12, func(n tlspolicy.Negotiated) {
					mu.Lock()
					got = append(got, tls.VersionName(n.Version))
					mu.Unlock()
				})
				dir := "conf/" + ver + "/" + cc.name
				cc.run(t, tg, cfg, dir)
				mu.Lock()
				defer mu.Unlock()
				want := "TLS 1.3"
				if max12 {
					want = "TLS 1.2"
				}
				for _, v := range got {
					if v != want {
						t.Fatalf("negotiated %s, want %s", v, want)
					}
				}
			})
		}
	}
	if tg.inproc != nil {
		tg.inproc.SetFaults(ftpstest.Faults{})
	}
}

func uploadOnce(t *testing.T, cfg Config, job Job) (Result, error) {
	t.Helper()
	c := New(cfg)
	defer c.Close()
	return c.Upload(context.Background(), job)
}

func caseUpload(t *testing.T, tg *target, cfg Config, dir string) {
	p, data := localFile(t, 1<<20+123)
	var last, calls int64
	job := Job{LocalPath: p, Remote: dir + "/a/b/IMG_0001.JPG", TempID: "up1", Progress: func(sent, total int64) {
		if sent < last || total != int64(len(data)) {
			t.Errorf("progress %d/%d after %d", sent, total, last)
		}
		last = sent
		calls++
	}}
	res, err := uploadOnce(t, cfg, job)
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, tg, job.Remote, data)
	if res.Remote != job.Remote || res.Size != int64(len(data)) || !hashOf(res.Hash, data) || res.Skipped || res.ResumedFrom != 0 || res.DataConns != 1 {
		t.Fatalf("result %+v", res)
	}
	if !strings.HasPrefix(res.Verified, "size") {
		t.Fatalf("verified %q", res.Verified)
	}
	if last != int64(len(data)) || calls < 2 {
		t.Fatalf("progress ended at %d after %d calls", last, calls)
	}
	if got := sha256File(t, tg.path(job.Remote)); got != sumHex(data) {
		t.Fatalf("sha256 on server disk %s", got)
	}
	noTemp(t, tg, dir+"/a/b")
	t.Logf("verified %s", res.Verified)
}

// caseAbsolute: an absolute remote path (every server here chroots the
// user, so "/" is the served root).
func caseAbsolute(t *testing.T, tg *target, cfg Config, dir string) {
	p, data := localFile(t, 5000)
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "/" + dir + "/abs/x.jpg"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Remote != "/"+dir+"/abs/x.jpg" {
		t.Fatalf("remote %q", res.Remote)
	}
	wantFile(t, tg, dir+"/abs/x.jpg", data)
}

func caseResumeRestart(t *testing.T, tg *target, cfg Config, dir string) {
	p, data := localFile(t, 700<<10)
	half := 300 << 10
	tg.write(t, dir+"/"+tempPrefix+"rr1"+tempSuffix, data[:half]) // left by a killed process
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "rr1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != int64(half) || res.DataConns != 1 {
		t.Fatalf("resumed from %d with %d data connections, want %d and 1", res.ResumedFrom, res.DataConns, half)
	}
	if !hashOf(res.Hash, data) {
		t.Fatal("sha256 of the result is not the file's")
	}
	wantFile(t, tg, dir+"/x.jpg", data)
	noTemp(t, tg, dir)
}

func caseTempLarger(t *testing.T, tg *target, cfg Config, dir string) {
	p, data := localFile(t, 200<<10)
	tg.write(t, dir+"/"+tempPrefix+"tl1"+tempSuffix, make([]byte, 300<<10))
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "tl1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != 0 {
		t.Fatalf("resumed onto a larger foreign file from %d", res.ResumedFrom)
	}
	wantFile(t, tg, dir+"/x.jpg", data)
}

// caseResumeCancel cancels an upload half way (the process is "killed"),
// then a new Client resumes it.
func caseResumeCancel(t *testing.T, tg *target, cfg Config, dir string) {
	p, data := localFile(t, 4<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	temp := tg.path(dir + "/" + tempPrefix + "rc1" + tempSuffix)
	job := Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "rc1", Progress: func(sent, total int64) {
		if sent >= 2<<20 && ctx.Err() == nil {
			// Cancel once the server has written 1 MiB of what it got: a
			// part to resume from.
			waitFileSize(t, temp, 1<<20)
			cancel()
		}
	}}
	c := New(cfg)
	start := time.Now()
	_, err := c.Upload(ctx, job)
	c.Close()
	if !errors.Is(err, context.Canceled) || ClassOf(err) != Transient {
		t.Fatalf("canceled upload: %v (%v)", err, ClassOf(err))
	}
	if el := time.Since(start); el > within(3*time.Second) {
		t.Fatalf("cancel took %v", el)
	}
	if _, err := os.Stat(tg.path(job.Remote)); err == nil {
		t.Fatal("a canceled upload is visible under its final name")
	}
	var partial int64
	if st, err := os.Stat(tg.path(dir + "/" + tempPrefix + "rc1" + tempSuffix)); err == nil {
		partial = st.Size()
	}
	job.Progress = nil
	res, err := uploadOnce(t, cfg, job)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom <= 0 && partial != int64(len(data)) {
		t.Fatalf("did not resume: %+v (temp had %d bytes)", res, partial)
	}
	wantFile(t, tg, job.Remote, data)
	t.Logf("resumed from %d of %d", res.ResumedFrom, len(data))
}

// waitFileSize polls until the file at path holds at least n bytes. It may
// run on another goroutine than the test's: it reports with t.Errorf.
func waitFileSize(t *testing.T, path string, n int64) {
	deadline := time.Now().Add(within(10 * time.Second))
	for {
		st, err := os.Stat(path)
		if err == nil && st.Size() >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s did not reach %d bytes within %v: %v %v", path, n, within(10*time.Second), st, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func caseCut(t *testing.T, tg *target, cfg Config, dir string) {
	tg.inproc.SetFaults(ftpstest.Faults{CutAfterBytes: 512 << 10})
	cuts := tg.inproc.Stats().Cuts
	p, data := localFile(t, 2<<20)
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "cut1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.DataConns != 2 || res.ResumedFrom <= 0 || tg.inproc.Stats().Cuts-cuts != 1 {
		t.Fatalf("want one cut and a resume in the same call: %+v, cuts %d", res, tg.inproc.Stats().Cuts-cuts)
	}
	wantFile(t, tg, dir+"/x.jpg", data)
}

// caseOneClient: several uploads on one Client reuse its control
// connection: each data connection must still be accepted.
func caseOneClient(t *testing.T, tg *target, cfg Config, dir string) {
	c := New(cfg)
	defer c.Close()
	for i := 0; i < 4; i++ {
		p, data := localFile(t, 100<<10+i)
		remote := fmt.Sprintf("%s/%d/x.jpg", dir, i%2)
		if _, err := c.Upload(context.Background(), Job{LocalPath: p, Remote: remote, TempID: fmt.Sprint("oc", i)}); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		wantFile(t, tg, remote, data)
	}
}

// caseDotRefused: when the hidden temporary name cannot be written (here a
// directory is in the way; Pure-FTPd -x refuses dot files alike), the
// visible name "camftpd-<id>.part" is used, and resumed.
func caseDotRefused(t *testing.T, tg *target, cfg Config, dir string) {
	tg.mkdir(t, dir+"/"+tempPrefix+"dr1"+tempSuffix+"/in-the-way")
	p, data := localFile(t, 200<<10)
	tg.write(t, dir+"/"+plainPrefix+"dr1"+tempSuffix, data[:50<<10])
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "dr1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != 50<<10 {
		t.Fatalf("resumed from %d, want %d", res.ResumedFrom, 50<<10)
	}
	wantFile(t, tg, dir+"/x.jpg", data)
	if _, err := os.Stat(tg.path(dir + "/" + plainPrefix + "dr1" + tempSuffix)); err == nil {
		t.Fatal("visible temporary file left")
	}
}

func caseOverwrite(t *testing.T, tg *target, cfg Config, dir string) {
	tg.write(t, dir+"/x.jpg", []byte("old content"))
	p, data := localFile(t, 50<<10)
	cfg.SameName = Overwrite
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "ow1"})
	if err != nil || res.Remote != dir+"/x.jpg" {
		t.Fatal(res, err)
	}
	wantFile(t, tg, dir+"/x.jpg", data)
	noTemp(t, tg, dir)
}

func caseSkip(t *testing.T, tg *target, cfg Config, dir string) {
	old := []byte("old content")
	tg.write(t, dir+"/x.jpg", old)
	tg.write(t, dir+"/"+tempPrefix+"sk1"+tempSuffix, []byte("left over"))
	p, _ := localFile(t, 50<<10)
	cfg.SameName = Skip
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "sk1"})
	if err != nil || !res.Skipped || res.DataConns != 0 {
		t.Fatal(res, err)
	}
	wantFile(t, tg, dir+"/x.jpg", old)
	noTemp(t, tg, dir)
}

func caseRename(t *testing.T, tg *target, cfg Config, dir string) {
	old := []byte("old content")
	tg.write(t, dir+"/IMG_1.JPG", old)
	cfg.SameName = Rename
	p1, d1 := localFile(t, 40<<10)
	res, err := uploadOnce(t, cfg, Job{LocalPath: p1, Remote: dir + "/IMG_1.JPG", TempID: "rn1"})
	if err != nil || res.Remote != dir+"/IMG_1-1.JPG" {
		t.Fatal(res, err)
	}
	p2, d2 := localFile(t, 41<<10)
	res, err = uploadOnce(t, cfg, Job{LocalPath: p2, Remote: dir + "/IMG_1.JPG", TempID: "rn2"})
	if err != nil || res.Remote != dir+"/IMG_1-2.JPG" {
		t.Fatal(res, err)
	}
	wantFile(t, tg, dir+"/IMG_1.JPG", old)
	wantFile(t, tg, dir+"/IMG_1-1.JPG", d1)
	wantFile(t, tg, dir+"/IMG_1-2.JPG", d2)
	// The same capture again (a retry after a crash between rename and
	// ack, without an Intent): recognised by the server's hash or, without
	// one (vsftpd, ProFTPD and Pure-FTPd here), by its size and its bytes
	// read back; it never gets a new name.
	res, err = uploadOnce(t, cfg, Job{LocalPath: p1, Remote: dir + "/IMG_1.JPG", TempID: "rn3"})
	if err != nil {
		t.Fatal(err)
	}
	want := "size+sample"
	if tg.inproc != nil {
		want = "size+sha256"
	}
	if !res.Existing || res.Skipped || res.Remote != dir+"/IMG_1-1.JPG" || res.Verified != want {
		t.Fatalf("same content again: %+v, want Existing at IMG_1-1.JPG recognised by %s", res, want)
	}
	if _, err := os.Stat(tg.path(dir + "/IMG_1-3.JPG")); err == nil {
		t.Fatal("the same capture got a new name")
	}
	wantFile(t, tg, dir+"/IMG_1-1.JPG", d1)
	noTemp(t, tg, dir)
}

func caseAuth(t *testing.T, tg *target, cfg Config, dir string) {
	cfg.Password = "wrong-password-xyz"
	if tg.name == "pureftpd" {
		// Pure-FTPd answers a wrong password after a random delay of seconds.
		cfg.Timeout, cfg.ConnectTimeout = 15*time.Second, 15*time.Second
	}
	p, _ := localFile(t, 10)
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg"})
	if ClassOf(err) != Auth {
		t.Fatalf("wrong password: %v (%v), want auth", err, ClassOf(err))
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Fatal("error message holds the password")
	}
}

func casePermission(t *testing.T, tg *target, cfg Config, dir string) {
	tg.write(t, dir+"/blocker", []byte("a file where a directory should be"))
	p, _ := localFile(t, 10)
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/blocker/x.jpg", TempID: "pm1"})
	if ClassOf(err) != Permanent {
		t.Fatalf("upload below a file: %v (%v), want permanent", err, ClassOf(err))
	}
	if tg.real != nil {
		// A directory the server's user may not write to.
		ro := tg.path(dir + "/ro")
		if err := os.MkdirAll(ro, 0o755); err != nil { // owned by root
			t.Fatal(err)
		}
		_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/ro/x.jpg", TempID: "pm2"})
		if ClassOf(err) != Permanent {
			t.Fatalf("upload into a read-only dir: %v (%v), want permanent", err, ClassOf(err))
		}
	}
}

func caseControlChar(t *testing.T, tg *target, cfg Config, dir string) {
	p, _ := localFile(t, 10)
	before := 0
	if tg.inproc != nil {
		before = tg.inproc.Stats().Connections
	}
	for _, remote := range []string{dir + "/x\r\nDELE y.jpg", dir + "/x\x00.jpg", dir + "/x\n.jpg"} {
		_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: remote})
		if ClassOf(err) != Permanent || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("remote %q: %v (%v)", remote, err, ClassOf(err))
		}
	}
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/ok.jpg", TempID: "bad\r\nDELE x"}); err != nil {
		t.Fatalf("a TempID with CR LF must be sanitized, not sent: %v", err)
	}
	if tg.inproc != nil {
		if n := tg.inproc.Stats().Connections - before; n != 1 {
			t.Fatalf("%d connections, want 1 (refused paths must not connect)", n)
		}
		for _, c := range tg.inproc.Commands() {
			if strings.Contains(c, "DELE x") || strings.Contains(c, "DELE y") {
				t.Fatalf("injected command reached the server: %q", c)
			}
		}
	}
}

func caseVanished(t *testing.T, tg *target, cfg Config, dir string) {
	_, err := uploadOnce(t, cfg, Job{LocalPath: filepath.Join(t.TempDir(), "gone.jpg"), Remote: dir + "/x.jpg"})
	if ClassOf(err) != Local || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("vanished local file: %v (%v)", err, ClassOf(err))
	}
}

func case421(t *testing.T, tg *target, cfg Config, dir string) {
	tg.inproc.SetFaults(ftpstest.Faults{Reply421OnConnect: true})
	p, _ := localFile(t, 10)
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg"})
	var e *Error
	if ClassOf(err) != Transient || !errors.As(err, &e) || e.Code != 421 {
		t.Fatalf("421 on connect: %v (%v)", err, ClassOf(err))
	}
}

func case452(t *testing.T, tg *target, cfg Config, dir string) {
	tg.inproc.SetFaults(ftpstest.Faults{Reply452OnStor: true})
	p, data := localFile(t, 30<<10)
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "f452"})
	var e *Error
	if ClassOf(err) != Transient || !errors.As(err, &e) || e.Code != 452 {
		t.Fatalf("452 on STOR: %v (%v)", err, ClassOf(err))
	}
	if got, _ := os.ReadFile(p); sumHex(got) != sumHex(data) {
		t.Fatal("local file changed")
	}
	if _, err := os.Stat(tg.path(dir + "/x.jpg")); err == nil {
		t.Fatal("final name exists after 452")
	}
	// The item is intact: once the server has space, it uploads.
	tg.inproc.SetFaults(ftpstest.Faults{})
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "f452"}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, tg, dir+"/x.jpg", data)
}

// caseSlow: a server slower than Timeout to answer is a transient error
// within about Timeout.
func caseSlow(t *testing.T, tg *target, cfg Config, dir string) {
	tg.inproc.SetFaults(ftpstest.Faults{Delay: 1500 * time.Millisecond})
	cfg.Timeout, cfg.ConnectTimeout = time.Second, time.Second
	p, _ := localFile(t, 10)
	start := time.Now()
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg"})
	el := time.Since(start)
	if ClassOf(err) != Transient || el > within(3*time.Second) {
		t.Fatalf("slow server: %v (%v) after %v", err, ClassOf(err), el)
	}
	tg.inproc.SetFaults(ftpstest.Faults{})
	t.Logf("slow server: %v after %v", err, el.Round(time.Millisecond))
}

// caseStalled: the server stops reading the data connection; the upload
// fails as transient within about Timeout, then resumes.
func caseStalled(t *testing.T, tg *target, cfg Config, dir string) {
	tg.inproc.SetFaults(ftpstest.Faults{Stall: true, StallAfterBytes: 256 << 10})
	cfg.Timeout = time.Second
	p, data := localFile(t, 8<<20)
	start := time.Now()
	_, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "st1"})
	el := time.Since(start)
	if ClassOf(err) != Transient || el > within(4*time.Second) || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("stalled data connection: %v (%v) after %v", err, ClassOf(err), el)
	}
	t.Logf("stalled: %v after %v", err, el.Round(time.Millisecond))
	tg.inproc.SetFaults(ftpstest.Faults{})
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/x.jpg", TempID: "st1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom <= 0 {
		t.Fatalf("did not resume after the stall: %+v", res)
	}
	wantFile(t, tg, dir+"/x.jpg", data)
}

var _ = fmt.Sprint
