package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// storCount counts the uploads the server saw: STOR commands from the
// in-process server's Stats, vsftpd's protocol log and ProFTPD's command
// log; for Pure-FTPd (which logs commands only to syslog) the transfers
// in its CLF log.
func storCount(t testing.TB, tg *target) int {
	t.Helper()
	if tg.inproc != nil {
		return tg.inproc.Stats().Stors
	}
	data, err := os.ReadFile(tg.real.LogPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	marker := map[string]string{"vsftpd": `"STOR `, "proftpd": `cmd="STOR `, "pureftpd": `"PUT `}[tg.name]
	return strings.Count(string(data), marker)
}

// uploadRetrs runs one Upload on a new Client and also returns how many
// byte ranges it read back with RETR.
func uploadRetrs(t testing.TB, cfg Config, job Job) (Result, int64, error) {
	t.Helper()
	c := New(cfg)
	defer c.Close()
	res, err := c.Upload(context.Background(), job)
	return res, c.retrs.Load(), err
}

func exists(tg *target, remote string) bool {
	_, err := os.Stat(tg.path(remote))
	return err == nil
}

// caseRenameIntent forces a power cut between the server's RNTO reply and
// the caller's record of success: BeforeRename records the intent, the
// upload renames, and its Result is dropped. The next Upload, given the
// Intent (and Fresh false), sends nothing and reports the file where the
// rename put it: no second STOR, no "name-2" under Rename, whether or not
// the server can hash. Then the other side: BeforeRename fails (the
// caller could not record), so nothing is renamed and the complete
// temporary file stays; the next Upload with that Intent renames it to the
// announced name, announcing it again, without sending it. Last, an Intent
// the server shows no trace of is ignored: a normal upload.
func caseRenameIntent(t *testing.T, tg *target, cfg Config, dir string) {
	cfg.SameName = Rename
	tg.write(t, dir+"/IMG.JPG", []byte("another camera's shot")) // the policy picks IMG-1.JPG
	intentAfterCut(t, tg, cfg, dir)
	intentNotRenamed(t, tg, cfg, dir)
	// An Intent with no trace on the server: uploaded as without it.
	p, data := localFile(t, 10<<10)
	res, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: dir + "/IMG.JPG", TempID: "ri3",
		Intent: &Intent{Temp: dir + "/" + tempPrefix + "ri3" + tempSuffix, Final: dir + "/IMG-9.JPG", Size: int64(len(data))}})
	if err != nil || res.Remote != dir+"/IMG-3.JPG" || res.Existing || res.DataConns != 1 {
		t.Fatalf("stale intent: %+v, %v", res, err)
	}
	wantFile(t, tg, dir+"/IMG-3.JPG", data)
}

// intentAfterCut: the rename happens, the caller dies before recording it.
func intentAfterCut(t *testing.T, tg *target, cfg Config, dir string) {
	p, data := localFile(t, 300<<10+7)
	var intents []Intent
	job := Job{LocalPath: p, Remote: dir + "/IMG.JPG", TempID: "ri1", BeforeRename: func(temp, final string) error {
		intents = append(intents, Intent{Temp: temp, Final: final, Size: int64(len(data))})
		return nil
	}}
	stors := storCount(t, tg)
	res, err := uploadOnce(t, cfg, job)
	if err != nil || res.Remote != dir+"/IMG-1.JPG" || len(intents) != 1 {
		t.Fatalf("first upload: %+v, %v, intents %+v", res, err, intents)
	}
	if in := intents[0]; in.Temp != dir+"/"+tempPrefix+"ri1"+tempSuffix || in.Final != res.Remote {
		t.Fatalf("announced %+v, want the temporary name and %s", in, res.Remote)
	}
	if n := storCount(t, tg) - stors; n != 1 {
		t.Fatalf("%d STORs counted for one upload", n)
	}
	// The caller dies here: res is never recorded; intents[0] is.
	stors = storCount(t, tg)
	job.Intent = &intents[0]
	res, retrs, err := uploadRetrs(t, cfg, job)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Existing || res.Skipped || res.Remote != dir+"/IMG-1.JPG" || res.DataConns != 0 || res.Verified != "size" || res.Hash != "" {
		t.Fatalf("after the cut: %+v, want Existing at IMG-1.JPG, no data connection", res)
	}
	if n := storCount(t, tg) - stors; n != 0 || retrs != 0 || len(intents) != 1 {
		t.Fatalf("after the cut: %d STORs, %d RETRs, %d announcements; want none", n, retrs, len(intents)-1)
	}
	if exists(tg, dir+"/IMG-2.JPG") {
		t.Fatal("the capture was sent again under a new name")
	}
	wantFile(t, tg, dir+"/IMG-1.JPG", data)
	noTemp(t, tg, dir)
}

// intentNotRenamed: BeforeRename fails, so nothing is renamed; the next
// attempt renames the complete temporary file without sending it.
func intentNotRenamed(t *testing.T, tg *target, cfg Config, dir string) {
	p, data := localFile(t, 200<<10+3)
	fail := errors.New("state disk full")
	var got []Intent
	job := Job{LocalPath: p, Remote: dir + "/IMG.JPG", TempID: "ri2", BeforeRename: func(temp, final string) error {
		got = append(got, Intent{Temp: temp, Final: final, Size: int64(len(data))})
		if len(got) == 1 {
			return fail
		}
		return nil
	}}
	_, err := uploadOnce(t, cfg, job)
	if ClassOf(err) != Local || !errors.Is(err, fail) || len(got) != 1 || got[0].Final != dir+"/IMG-2.JPG" {
		t.Fatalf("BeforeRename failing: %v (class %v), announced %+v", err, ClassOf(err), got)
	}
	if st, err := os.Stat(tg.path(got[0].Temp)); err != nil || st.Size() != int64(len(data)) || exists(tg, got[0].Final) {
		t.Fatalf("after a failed BeforeRename the complete temporary file must stay and nothing be renamed: %v %v", st, err)
	}
	stors := storCount(t, tg)
	job.Intent = &got[0]
	res, err := uploadOnce(t, cfg, job)
	if err != nil || res.Remote != got[0].Final || res.Existing || res.DataConns != 0 || len(got) != 2 || got[1] != got[0] {
		t.Fatalf("rename that had not happened: %+v, %v, announced %+v", res, err, got)
	}
	if n := storCount(t, tg) - stors; n != 0 {
		t.Fatalf("%d STORs to finish a complete temporary file", n)
	}
	wantFile(t, tg, dir+"/IMG-2.JPG", data)
	noTemp(t, tg, dir)
}

// caseSameShot: without a server hash (hidden on the in-process server),
// the same shot is recognised by its size and its first and last 64 KiB
// read back with RETR (one RETR for a file under 128 KiB), under Rename
// and Skip; a file of the same size that differs in its head or its tail
// is not. Every comparison leaves the control connection in step: all
// uploads of a Client run on its one control connection.
func caseSameShot(t *testing.T, tg *target, cfg Config, dir string) {
	if tg.inproc != nil {
		tg.inproc.SetFaults(ftpstest.Faults{HideFeatures: []string{"HASH", "XSHA", "MD5", "XCRC"}})
	}
	up := sameShotUploader(t, cfg)
	size := 1<<20 + 4321
	p, data := localFile(t, size)
	a := dir + "/A.JPG"
	up(Rename, p, a, "ss1", 0)
	if res := up(Rename, p, a, "ss2", 2); !res.Existing || res.Remote != a || res.Verified != "size+sample" || res.DataConns != 1 {
		t.Fatalf("the same shot again: %+v", res)
	}
	head := variant(t, data, 10)
	if res := up(Rename, head, a, "ss3", 1); res.Existing || res.Remote != dir+"/A-1.JPG" {
		t.Fatalf("head differs: %+v", res)
	}
	tail := variant(t, data, size-1) // A.JPG: 2 RETRs; A-1.JPG: 1
	if res := up(Rename, tail, a, "ss4", 3); res.Existing || res.Remote != dir+"/A-2.JPG" {
		t.Fatalf("tail differs: %+v", res)
	}
	ps, small := localFile(t, 100<<10)
	up(Rename, ps, dir+"/S.JPG", "ss5", 0)
	if res := up(Rename, ps, dir+"/S.JPG", "ss6", 1); !res.Existing || res.Remote != dir+"/S.JPG" {
		t.Fatalf("the same small shot again: %+v", res)
	}
	for remote, want := range map[string][]byte{a: data, dir + "/S.JPG": small} {
		wantFile(t, tg, remote, want)
	}
	if exists(tg, dir+"/A-3.JPG") || exists(tg, dir+"/S-1.JPG") {
		t.Fatal("a same shot got a new name")
	}

	// Skip: the same shot is Existing, another file of the same size
	// Skipped, one of another size too (decided by SIZE alone; it goes
	// first, so the timings below are on a warm connection).
	other, _ := localFile(t, 5000)
	if res := up(Skip, other, a, "sk1", 0); !res.Skipped {
		t.Fatalf("skip, other size: %+v", res)
	}
	start := time.Now()
	if res := up(Skip, other, a, "sk2", 0); !res.Skipped || res.Existing || res.Remote != a || res.Hash != "" || res.Verified != "" {
		t.Fatalf("skip, other size: %+v", res)
	}
	sized := time.Since(start)
	start = time.Now()
	res := up(Skip, p, a, "sk3", 2)
	sampled := time.Since(start)
	if !res.Existing || res.Skipped || res.DataConns != 0 || res.Verified != "size+sample" || res.Hash != "" {
		t.Fatalf("skip, same shot: %+v", res)
	}
	if res := up(Skip, head, a, "sk4", 1); res.Existing || !res.Skipped || res.Remote != a {
		t.Fatalf("skip, same size, other head: %+v", res)
	}
	wantFile(t, tg, a, data)
	noTemp(t, tg, dir)
	t.Logf("skip decided on a warm connection: by SIZE alone %v, by SIZE and 2 x 64 KiB read back %v",
		sized.Round(10*time.Microsecond), sampled.Round(10*time.Microsecond))
}

// sameShotUploader returns an upload function running each job on one
// Client per policy, failing the test when the call did not read want
// ranges back or when the Client's control connection was replaced.
func sameShotUploader(t *testing.T, cfg Config) func(SameName, string, string, string, int64) Result {
	clients := map[SameName]*Client{}
	conns := map[SameName]*session{}
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	return func(policy SameName, local, remote, id string, want int64) Result {
		t.Helper()
		c := clients[policy]
		if c == nil {
			cfg.SameName = policy
			c = New(cfg)
			clients[policy] = c
		}
		before := c.retrs.Load()
		res, err := c.Upload(context.Background(), Job{LocalPath: local, Remote: remote, TempID: id})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if n := c.retrs.Load() - before; n != want {
			t.Fatalf("%s: %d ranges read back, want %d", id, n, want)
		}
		c.mu.Lock()
		idle := append([]*session(nil), c.idle...)
		c.mu.Unlock()
		if len(idle) != 1 || conns[policy] != nil && idle[0] != conns[policy] {
			t.Fatalf("%s: the control connection was not kept (out of step?): %d idle", id, len(idle))
		}
		conns[policy] = idle[0]
		return res
	}
}

// variant writes a copy of data with byte i flipped to a local file.
func variant(t testing.TB, data []byte, i int) string {
	t.Helper()
	b := append([]byte(nil), data...)
	b[i] ^= 0xff
	p := filepath.Join(t.TempDir(), "variant.jpg")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	writerGone(t, p)
	return p
}

// TestRetrCutInStep: a RETR cut after 1 to 40 TLS records (closing the
// data connection at once, or 20 ms later), on vsftpd, ProFTPD, Pure-FTPd
// and the in-process server, 24 times each: endRetr leaves the control
// connection in step every time (the next SIZE gets its 213, the next
// NOOP its 200), whatever the server sent for the cut transfer (426, 550,
// 226, Pure-FTPd's "150 <timing>" or nothing, ProFTPD's 450 to a probe
// during the transfer), and no server ends the session (ProFTPD did, about
// once in 25 cuts, when the cut began with a FIN: see cutData).
func TestRetrCutInStep(t *testing.T) {
	for _, name := range []string{"inproc", "vsftpd", "proftpd", "pureftpd"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tg := startTarget(t, name, false)
			tg.write(t, "cut/big.bin", make([]byte, 4<<20))
			c := New(tg.config(t, false))
			defer c.Close()
			s, err := c.dial(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			for i := range 24 {
				if err := cutRetr(t, s, []int{1, 4, 40}[i%3], i%2 == 1); err != nil {
					t.Fatalf("cut %d: %v", i, err)
				}
				rs, err := s.pipeline("SIZE cut/big.bin", "NOOP")
				if err != nil || rs[0].code != 213 || rs[1].code != 200 {
					t.Fatalf("cut %d: out of step: %+v %v", i, rs, err)
				}
			}
		})
	}
}

// cutRetr starts a RETR of cut/big.bin on s, reads records TLS records,
// closes the data connection (after 20 ms when wait) and runs endRetr.
func cutRetr(t *testing.T, s *session, records int, wait bool) error {
	dc, err := s.openData(t.Context())
	if err != nil {
		return err
	}
	defer s.abortData(dc)
	hs := make(chan error, 1)
	go func() { hs <- s.handshake(t.Context(), dc) }()
	if code, _, err := s.cmd("RETR cut/big.bin"); err != nil || code/100 != 1 {
		s.abortData(dc)
		if herr := <-hs; herr != nil {
			t.Logf("data handshake, ended by the abort: %v", herr)
		}
		if err != nil {
			return fmt.Errorf("RETR: %w", err)
		}
		return fmt.Errorf("RETR: %d", code)
	}
	if err := <-hs; err != nil {
		return err
	}
	buf := make([]byte, 16<<10)
	for range records {
		if _, err := dc.tc.Read(buf); err != nil {
			return err
		}
	}
	s.cutData(dc)
	if wait {
		// A pause under test, not a wait for an event: half of the cuts
		// probe at once, half 20 ms later, when the server has more likely
		// answered the cut already; endRetr must stay in step either way.
		time.Sleep(20 * time.Millisecond)
	}
	return s.endRetr(false)
}

// startInproc starts the in-process server with opts.
func startInproc(t testing.TB, opts ftpstest.Options) *target {
	t.Helper()
	s, err := ftpstest.Start(opts)
	if err != nil {
		t.Fatalf("ftpstest.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &target{name: "inproc", inproc: s, host: s.Host, port: s.Port, capem: s.CAPEM, serverName: s.ServerName, user: "camftpd", pass: "secret"}
}

// TestRenameIntentNoHash: the forced power cut between RNTO and the
// caller's record (caseRenameIntent) on a server without any hash
// command (ftpstest NoHash): the retry finds the file by the Intent, with
// no second STOR (server count), no "name-2", Existing; and no HASH or
// RETR was sent to decide it.
func TestRenameIntentNoHash(t *testing.T) {
	tg := startInproc(t, ftpstest.Options{NoHash: true})
	caseRenameIntent(t, tg, tg.config(t, false), "ri")
	for _, c := range tg.inproc.Commands() {
		if v := strings.ToUpper(strings.Fields(c)[0]); v == "HASH" || v == "RETR" || strings.HasPrefix(v, "X") {
			t.Fatalf("%s sent: the Intent is settled by SIZE alone", c)
		}
	}
}

// TestIntentOverwrite: under SameName Overwrite an Intent whose temporary
// file is complete is renamed over the final name (announced again, no
// STOR); an Intent of another size, or naming another capture's
// temporary file, is ignored (a normal upload, which overwrites).
func TestIntentOverwrite(t *testing.T) {
	tg := startInproc(t, ftpstest.Options{NoHash: true})
	cfg := tg.config(t, false)
	p, data := localFile(t, 150<<10)
	temp := "io/" + tempPrefix + "io1" + tempSuffix
	tg.write(t, temp, data)
	tg.write(t, "io/x.jpg", []byte("old version"))
	var announced []Intent
	job := Job{LocalPath: p, Remote: "io/x.jpg", TempID: "io1",
		Intent: &Intent{Temp: temp, Final: "io/x.jpg", Size: int64(len(data))},
		BeforeRename: func(temp, final string) error {
			announced = append(announced, Intent{Temp: temp, Final: final, Size: int64(len(data))})
			return nil
		}}
	stors := tg.inproc.Stats().Stors
	res, err := uploadOnce(t, cfg, job)
	if err != nil || res.Existing || res.DataConns != 0 || res.Remote != "io/x.jpg" || len(announced) != 1 || announced[0] != *job.Intent {
		t.Fatalf("%+v %v, announced %+v", res, err, announced)
	}
	if n := tg.inproc.Stats().Stors - stors; n != 0 {
		t.Fatalf("%d STORs", n)
	}
	wantFile(t, tg, "io/x.jpg", data)

	for _, in := range []Intent{
		{Temp: temp, Final: "io/x.jpg", Size: int64(len(data)) - 1},                                  // another size
		{Temp: "io/" + tempPrefix + "other" + tempSuffix, Final: "io/x.jpg", Size: int64(len(data))}, // another capture's
	} {
		p2, d2 := localFile(t, len(data))
		res, err := uploadOnce(t, cfg, Job{LocalPath: p2, Remote: "io/x.jpg", TempID: "io2", Intent: &in})
		if err != nil || res.Existing || res.DataConns != 1 {
			t.Fatalf("intent %+v: %+v %v, want a normal upload", in, res, err)
		}
		wantFile(t, tg, "io/x.jpg", d2)
	}
}

// TestSameShotHash: with a server hash, Skip and Rename recognise the same
// shot by SIZE and HASH (no RETR; Skip reads the local file to hash it,
// so Result.Hash is set); a server refusing HASH for the file falls back
// to the sampled bytes.
func TestSameShotHash(t *testing.T) {
	tg := startTarget(t, "inproc", false)
	cfg := tg.config(t, false)
	p, data := localFile(t, 300<<10)
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "sh/a.jpg"}); err != nil {
		t.Fatal(err)
	}
	cfg.SameName = Skip
	res, retrs, err := uploadRetrs(t, cfg, Job{LocalPath: p, Remote: "sh/a.jpg"})
	if err != nil || !res.Existing || res.Skipped || res.Verified != "size+sha256" || !hashOf(res.Hash, data) || retrs != 0 || res.DataConns != 0 {
		t.Fatalf("skip, same shot, HASH: %+v %v, %d RETRs", res, err, retrs)
	}
	other := variant(t, data, len(data)/2) // differs in the middle: only a hash sees it
	res, retrs, err = uploadRetrs(t, cfg, Job{LocalPath: other, Remote: "sh/a.jpg"})
	if err != nil || res.Existing || !res.Skipped || res.Hash != "" || retrs != 0 {
		t.Fatalf("skip, other content, HASH: %+v %v, %d RETRs", res, err, retrs)
	}
	tg.inproc.SetFaults(ftpstest.Faults{Replies: map[string]string{"HASH": "550 Not allowed (ftpstest)"}})
	cfg.SameName = Rename
	res, retrs, err = uploadRetrs(t, cfg, Job{LocalPath: p, Remote: "sh/a.jpg", TempID: "sh2"})
	if err != nil || !res.Existing || res.Remote != "sh/a.jpg" || res.Verified != "size+sample" || retrs != 2 {
		t.Fatalf("rename, same shot, HASH refused: %+v %v, %d RETRs", res, err, retrs)
	}
	noTemp(t, tg, "sh")
}

// TestSampleRefused: a server that refuses to send a file back (RETR 550,
// an upload-only account) or to start a download part way (REST refused)
// cannot tell the same shot: Rename gives it a new name, Skip skips it, as
// before; the control connection stays in step (no new login).
func TestSampleRefused(t *testing.T) {
	tg := startInproc(t, ftpstest.Options{NoHash: true})
	cfg := tg.config(t, false)
	p, data := localFile(t, 400<<10)
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "sr/a.jpg"}); err != nil {
		t.Fatal(err)
	}
	for i, f := range []map[string]string{
		{"RETR": "550 Downloads are not allowed (ftpstest)"},
		{"REST": "502 REST not implemented (ftpstest)"},
	} {
		tg.inproc.SetFaults(ftpstest.Faults{Replies: f})
		for _, policy := range []SameName{Rename, Skip} {
			cfg.SameName = policy
			c := New(cfg)
			logins := tg.inproc.Stats().Logins
			res, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "sr/a.jpg", TempID: "sr"})
			if err == nil {
				_, err = c.Upload(t.Context(), Job{LocalPath: p, Remote: "sr/b.jpg", Fresh: true})
			}
			c.Close()
			if err != nil || res.Existing || policy == Skip && !res.Skipped || policy == Rename && res.Remote != "sr/a-"+string(rune('1'+i))+".jpg" {
				t.Fatalf("%v, %s: %+v %v", f, policy, res, err)
			}
			if n := tg.inproc.Stats().Logins - logins; n != 1 {
				t.Fatalf("%v, %s: %d logins for two uploads, want 1 (out of step?)", f, policy, n)
			}
		}
	}
	wantFile(t, tg, "sr/a.jpg", data)
	noTemp(t, tg, "sr")
}

// TestRangRefused: a server that offers RANG but refuses it (ProFTPD with
// RANG denied by <Limit>; here the in-process server, which has no RANG,
// made to look as if it offered it) gets the range read again with REST,
// and no more RANG on that session; the same shot is still recognised and
// the control connection kept.
func TestRangRefused(t *testing.T) {
	tg := startInproc(t, ftpstest.Options{NoHash: true})
	cfg := tg.config(t, false)
	p, _ := localFile(t, 300<<10)
	if _, err := uploadOnce(t, cfg, Job{LocalPath: p, Remote: "rr/a.jpg"}); err != nil {
		t.Fatal(err)
	}
	cfg.SameName = Rename
	c := New(cfg)
	defer c.Close()
	if err := c.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := c.idle[0]
	s.feat["RANG"] = "STREAM"
	tg.inproc.ResetStats()
	res, err := c.Upload(t.Context(), Job{LocalPath: p, Remote: "rr/a.jpg", TempID: "rr2"})
	if err != nil || !res.Existing || res.Verified != "size+sample" || !s.noRang || c.retrs.Load() != 3 {
		t.Fatalf("%+v %v; RANG refused recorded %v, %d ranges read", res, err, s.noRang, c.retrs.Load())
	}
	rang := 0
	for _, cmd := range tg.inproc.Commands() {
		if strings.HasPrefix(cmd, "RANG ") {
			rang++
		}
	}
	if rang != 1 || len(c.idle) != 1 || c.idle[0] != s || tg.inproc.Stats().Logins != 0 {
		t.Fatalf("%d RANG commands, want 1; session kept: %v", rang, len(c.idle) == 1 && c.idle[0] == s)
	}
}

// scriptConn is a control connection whose server side is a list of
// replies, in the order a server sends them.
type scriptConn struct {
	replies []reply
	sent    []string
}

func (c *scriptConn) SendCommand(f string, args ...any) (int, string, error) {
	c.sent = append(c.sent, fmt.Sprintf(f, args...))
	return c.ReadResponse()
}

func (c *scriptConn) ReadResponse() (int, string, error) {
	if len(c.replies) == 0 {
		return 0, "", errors.New("read timeout: no reply (scriptConn)")
	}
	r := c.replies[0]
	c.replies = c.replies[1:]
	return r.code, r.msg, nil
}

func (c *scriptConn) PrepareDataConn() (func() (net.Conn, error), error) {
	return nil, errors.New("scriptConn: no data connections")
}

func (c *scriptConn) Close() error { return nil }

// TestEndRetrScripts: what each server sends after a cut download (their
// sources and the runs of TestRetrCutInStep) is read up to the probe's
// answer and no further: nothing is left unread, the probe count is
// right, and the probe's passive reply is kept for the next data
// connection.
func TestEndRetrScripts(t *testing.T) {
	epsv := reply{229, "Entering Extended Passive Mode (|||4242|)"}
	cases := []struct {
		name    string
		stream  []reply
		probes  int
		wantErr bool
	}{
		{"vsftpd", []reply{{426, "Failure writing network stream."}, epsv}, 1, false},
		{"ftpserverlib", []reply{{550, "Issue during transfer"}, epsv}, 1, false},
		{"all sent before the cut", []reply{{226, "Transfer complete."}, epsv}, 1, false},
		{"ProFTPD, probe during the transfer", []reply{{450, "EPSV: data transfer in progress"}, {426, "Transfer aborted. Data connection closed"}, epsv}, 2, false},
		{"Pure-FTPd, no reply", []reply{epsv}, 1, false},
		{"Pure-FTPd, 150 timing", []reply{{150, "0.002 seconds (measured here), 571.69 Mbytes per second"}, epsv}, 1, false},
		{"Pure-FTPd, probe eaten", []reply{{500, "Unknown command"}, {500, "0.002 seconds (measured here), 571.69 Mbytes per second"}, epsv}, 2, false},
		{"Pure-FTPd, probe eaten, no reply", []reply{{500, "Unknown command"}, epsv}, 2, false},
		// Busy for longer than Timeout (100 ms here): probes 10, 20, 40,
		// 80 ms apart, then the error; -1: at least 3 probes, all answered.
		{"still in the transfer", slices.Repeat([]reply{{450, "busy"}}, 50), -1, true},
		{"unknown replies", []reply{{426, "a"}, {451, "b"}, {426, "c"}, {426, "d"}}, 1, true},
	}
	for _, tc := range cases {
		sc := &scriptConn{replies: tc.stream}
		s := &session{c: New(Config{Host: "h", TLS: &tls.Config{}, Timeout: 100 * time.Millisecond}), rc: sc}
		err := s.endRetr(false)
		probesOK := len(sc.sent) == tc.probes || tc.probes < 0 && len(sc.sent) >= 3 && len(sc.sent)+len(sc.replies) == len(tc.stream)
		if (err != nil) != tc.wantErr || !probesOK || !tc.wantErr && (len(sc.replies) != 0 || s.pasv != epsv.msg) {
			t.Errorf("%s: err %v, %d probes (want %d), %d replies left, pasv %q", tc.name, err, len(sc.sent), tc.probes, len(sc.replies), s.pasv)
		}
		if tc.wantErr && !s.broken {
			t.Errorf("%s: the session is not marked broken", tc.name)
		}
	}
}

// BenchmarkSkipSameShot: the cost of recognising the same shot without a
// server hash, per server, on a warm connection: one Upload under
// SameName Skip whose final name holds a 4 MiB file: of another size
// ("size": decided by SIZE alone), or the same shot ("sample": SIZE and
// its first and last 64 KiB read back).
func BenchmarkSkipSameShot(b *testing.B) {
	for _, name := range []string{"inproc", "vsftpd", "proftpd", "pureftpd"} {
		b.Run(name, func(b *testing.B) {
			tg := startTarget(b, name, false)
			if tg.inproc != nil {
				tg.inproc.SetFaults(ftpstest.Faults{HideFeatures: []string{"HASH", "XSHA", "MD5", "XCRC"}})
			}
			cfg := tg.config(b, false)
			cfg.Logger = nil
			p, data := localFile(b, 4<<20)
			tg.write(b, "bench/A.JPG", data)
			other, _ := localFile(b, 1000)
			cfg.SameName = Skip
			c := New(cfg)
			defer c.Close()
			for _, bc := range []struct {
				name, local string
			}{{"size", other}, {"sample", p}} {
				b.Run(bc.name, func(b *testing.B) {
					for b.Loop() {
						res, err := c.Upload(b.Context(), Job{LocalPath: bc.local, Remote: "bench/A.JPG", TempID: "b"})
						if err != nil || res.Existing == (bc.local == other) {
							b.Fatal(res, err)
						}
					}
				})
			}
		})
	}
}
