package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/camftpd/camftpd/queue"
)

// reinode gives the file at p a new inode with the same name, size and
// content (what a FAT/exFAT remount or reboot does: inode numbers are handed
// out per mount), and shifts its mtime by shift (a FAT card mounted with
// another time zone offset).
func reinode(t *testing.T, p string, shift time.Duration) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(filepath.Dir(p)), "reinode.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := st.ModTime().Add(shift)
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// newEnvNoHash is newEnv with a server that offers no HASH (a re-send
// then shows as a STOR and, under same_name rename, as a name-1 copy).
func newEnvNoHash(t *testing.T) *testEnv {
	e := newEnv(t)
	e.stopServer()
	e.noHash = true
	e.startServer()
	return e
}

func serverNames(t *testing.T, root string) []string {
	var names []string
	for rel := range treeSHA(t, root) {
		names = append(names, rel)
	}
	sort.Strings(names)
	return names
}

// TestSameShotAcrossRemountRebootMountPointAndTimeZone: against a server
// without HASH and with same_name rename (a re-send would show as a name-1
// copy), shots delivered once are never sent again when their files get
// new inodes while the daemon runs (remount, three times), across a restart
// with new inodes, mtimes shifted by two hours (time zone) and the card at
// another mount point. Counted by the server's STORs.
func TestSameShotAcrossRemountRebootMountPointAndTimeZone(t *testing.T) {
	e := newEnvNoHash(t)
	cfg := e.writeConfig("150ms", 2)
	d, cancel, done := startDaemon(t, cfg, testLogger(t))
	shots := []string{"100CAM/DSC00001.JPG", "100CAM/DSC00002.JPG", "100CAM/DSC00003.JPG"}
	for i, s := range shots {
		writeCapture(t, filepath.Join(e.media, s), 300<<10+i, uint64(i))
	}
	waitFor(t, 20*time.Second, "3 shots done", func() bool { return counts(t, d.Queue()).Done == 3 })
	stors := e.server().Stats().Stors
	if stors != 3 {
		t.Fatalf("%d STORs for 3 new shots", stors)
	}
	for round := 0; round < 3; round++ { // remounted while running
		for _, s := range shots {
			reinode(t, filepath.Join(e.media, s), 0)
		}
		// A quiet window under test (four settle windows): a re-send of a
		// remounted shot would start in it.
		time.Sleep(within(600 * time.Millisecond))
	}
	if got := e.server().Stats().Stors; got != 3 {
		t.Fatalf("after 3 remounts: %d STORs, want 3 (shots sent again)", got)
	}
	cancel()
	err := <-done
	done <- err // for runDaemon's cleanup
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}

	// Reboot: new inodes, mtimes +2h, card at another mount point.
	for _, s := range shots {
		reinode(t, filepath.Join(e.media, s), 2*time.Hour)
	}
	card := filepath.Join(e.dir, "card")
	if err := os.Rename(filepath.Dir(e.media), card); err != nil {
		t.Fatal(err)
	}
	e.media = filepath.Join(card, "DCIM")
	cfg = e.writeConfig("150ms", 2)
	d, _, _ = startDaemon(t, cfg, testLogger(t))
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00004.JPG"), 200<<10, 4)
	waitFor(t, 20*time.Second, "the new shot done", func() bool { return counts(t, d.Queue()).Done == 4 })
	time.Sleep(within(600 * time.Millisecond)) // a quiet window under test: no shot of before the reboot is sent again
	if got := e.server().Stats().Stors; got != 4 {
		t.Fatalf("after reboot, time zone change and new mount point: %d STORs, want 4 (3 before + 1 new shot)", got)
	}
	c := counts(t, d.Queue())
	if c.Done != 4 || c.Pending+c.InFlight+c.Retry+c.Parked != 0 {
		t.Fatalf("queue %+v", c)
	}
	want := append(append([]string{}, shots...), "100CAM/DSC00004.JPG")
	if got := serverNames(t, e.root); len(got) != 4 || got[0] != want[0] || got[3] != want[3] {
		t.Fatalf("server holds %v, want %v (no name-1 copies)", got, want)
	}
	verifyArrived(t, e.media, e.root)
}

// TestSkipReportedApart: under same_name skip, a shot whose name is held on
// the server by another file is recorded as skipped (state, event, status
// count), never as done; a shot whose identical copy is there already is
// done without a STOR.
func TestSkipReportedApart(t *testing.T) {
	e := newEnvNoHash(t)
	e.srvExtra = `same_name = "skip"`
	taken := filepath.Join(e.root, "100CAM", "DSC00009.JPG")
	writeCapture(t, taken, 100<<10, 99) // another camera's file under the same name
	takenSHA := fileSHA(t, taken)
	writeCapture(t, filepath.Join(e.root, "100CAM", "DSC00008.JPG"), 120<<10, 8) // this very shot, delivered before
	cfg := e.writeConfig("150ms", 2)
	d, _, _ := startDaemon(t, cfg, testLogger(t))
	events, stop := d.hub.subscribe(256)
	defer stop()
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00009.JPG"), 100<<10, 9)
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00008.JPG"), 120<<10, 8)
	waitFor(t, 20*time.Second, "one skipped, one done", func() bool {
		c := counts(t, d.Queue())
		return c.Skipped == 1 && c.Done == 1
	})
	if got := e.server().Stats().Stors; got != 0 {
		t.Errorf("%d STORs: neither shot needed sending", got)
	}
	if fileSHA(t, taken) != takenSHA {
		t.Error("the other file under the taken name was overwritten")
	}
	st := d.Status()
	if st.SkippedFiles != 1 || st.UploadedFiles != 1 {
		t.Errorf("status: %d uploaded, %d skipped; want 1 and 1", st.UploadedFiles, st.SkippedFiles)
	}
	sawSkipped := false
	for len(events) > 0 {
		ev := <-events
		if ev.Type == "skipped" && ev.File == "100CAM/DSC00009.JPG" {
			sawSkipped = true
		}
		if ev.Type == "done" && ev.File == "100CAM/DSC00009.JPG" {
			t.Error("the skipped shot was reported done")
		}
	}
	if !sawSkipped {
		t.Error("no skipped event")
	}
}

// TestShotsGoneFromTheCardAreAbsent: after a restart, the history of shots
// deleted from the card (one of a folder, and every shot of an emptied
// folder) is marked absent, and that of shots still there is not; after
// the last shot is deleted too (every folder empty), all are absent.
func TestShotsGoneFromTheCardAreAbsent(t *testing.T) {
	e := newEnv(t)
	cfg := e.writeConfig("150ms", 2)
	d, cancel, done := startDaemon(t, cfg, testLogger(t))
	shots := []string{"100CAM/A.JPG", "100CAM/B.JPG", "101CAM/C.JPG"}
	for i, s := range shots {
		writeCapture(t, filepath.Join(e.media, s), 50<<10+i, uint64(i))
	}
	waitFor(t, 20*time.Second, "3 shots done", func() bool { return counts(t, d.Queue()).Done == 3 })
	restartWithout := func(gone []string, wantAbsent int) []queue.Item {
		cancel()
		err := <-done
		done <- err
		for _, s := range gone {
			if err := os.Remove(filepath.Join(e.media, s)); err != nil {
				t.Fatal(err)
			}
		}
		d, cancel, done = startDaemon(t, cfg, testLogger(t))
		var items []queue.Item
		waitFor(t, 10*time.Second, fmt.Sprintf("the start rescan to mark %d shots absent", wantAbsent), func() bool {
			items, err = d.Queue().List()
			n := 0
			for _, it := range items {
				if !it.AbsentSince.IsZero() {
					n++
				}
			}
			return err == nil && n == wantAbsent && len(items) == 3
		})
		return items
	}
	for _, it := range restartWithout(shots[1:], 2) {
		if absent := !it.AbsentSince.IsZero(); absent != (it.Capture.Rel != shots[0]) {
			t.Errorf("%s: absent=%v", it.Capture.Rel, absent)
		}
	}
	restartWithout(shots[:1], 3)
}

// TestCrashBetweenRenameAndRecord: the daemon dies (forced by a hook) after
// the server renamed a shot into place and before the queue recorded it,
// against a server without HASH under same_name rename. After a restart
// the recorded rename intent is settled by what the server shows: the shot
// is done with no second STOR and no name-1 copy.
func TestCrashBetweenRenameAndRecord(t *testing.T) {
	e := newEnvNoHash(t)
	cfg := e.writeConfig("150ms", 1)
	d := New(cfg, testLogger(t))
	crashed := make(chan queue.Item, 1)
	d.crashBeforeRecord = func(it queue.Item) bool {
		select {
		case crashed <- it:
		default:
		}
		return true
	}
	cancel, done := runDaemon(t, d)
	writeCapture(t, filepath.Join(e.media, "100CAM/DSC00001.JPG"), 300<<10, 1)
	var it queue.Item
	select {
	case it = <-crashed:
	case <-time.After(within(20 * time.Second)):
		t.Fatal("no upload reached the rename")
	}
	cancel()
	err := <-done
	done <- err
	if e.server().Stats().Stors != 1 {
		t.Fatalf("%d STORs before the crash", e.server().Stats().Stors)
	}
	if got, err := d.Queue().Get(it.ID); err == nil && got.State == queue.Done {
		t.Fatal("the hook did not stop the record")
	}

	d2, _, _ := startDaemon(t, cfg, testLogger(t))
	waitFor(t, 20*time.Second, "the shot done after the restart", func() bool { return counts(t, d2.Queue()).Done == 1 })
	got, err := d2.Queue().Get(it.ID)
	if err != nil || got.Remote != "100CAM/DSC00001.JPG" {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	if n := e.server().Stats().Stors; n != 1 {
		t.Fatalf("%d STORs: the shot was sent again after the restart", n)
	}
	if names := serverNames(t, e.root); len(names) != 1 {
		t.Fatalf("server holds %v (a name-1 copy?)", names)
	}
}
