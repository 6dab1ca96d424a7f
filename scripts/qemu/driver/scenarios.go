package main

import (
	crand "crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// steady: one capture already on the card when the camera boots (start to
// first upload), then 100 captures shot 50 ms apart; every one arrives once
// with the camera's checksum; then 10 single shots 1 s apart. The captures
// are written by the shutter (scripts/qemu/shutter), which also reports, on
// the guest's clock, each one's close to the daemon's start and done events
// (time to desk: figures, not judged; every capture uploaded once is).
func steady(e *env) result {
	first := make([]byte, 300<<10)
	crand.Read(first)
	state, media, err := e.disks("steady", map[string][]byte{"DCIM/100TEST/DSC00000.JPG": first})
	if err != nil {
		return fail("%v", err)
	}
	g, err := e.boot("steady", state, media, "", "")
	if err != nil {
		return fail("%v", err)
	}
	defer g.Shutdown()
	_, tStart, err := g.WaitPrefix(0, time.Second, "camftpd-e2e: daemon start")
	if err != nil {
		return fail("the daemon was not started by /etc/init.d/camftpd")
	}
	want := map[string]string{"DSC00000.JPG": shaOf(first)}
	seen, err := e.waitArrived(want, 60*time.Second)
	if err != nil {
		return fail("first capture: %v", err)
	}
	startToFirst := seen["DSC00000.JPG"].Sub(tStart)
	bootToFirst := seen["DSC00000.JPG"].Sub(g.started)

	burst, err := e.shootTimed(g, "DSC", 100, 50*time.Millisecond, want)
	if err != nil {
		return fail("burst: %v", err)
	}
	// Single shots as in make bench's time to desk (1 shot/s), once the
	// burst is delivered: the daemon idle, each shot alone in the queue.
	single, err := e.shootTimed(g, "ONE", 10, time.Second, want)
	if err != nil {
		return fail("single shots: %v", err)
	}
	time.Sleep(2 * time.Second) // let a late duplicate show
	v := e.check(want, nil)
	r := result{pass: v.ok() && v.temps == 0 && v.reuploads == 0, why: v.why()}
	r.figures = fmt.Sprintf("%d/%d arrived once, checksums equal %d; uploaded twice %d; start-to-first-upload %.2fs (boot-to-first %.2fs); 100 shots in %.1fs, last arrival +%.1fs after last shot; burst %s; 10 single shots at 1/s %s",
		v.arrived, len(want), v.arrived-v.mismatch, v.reuploads, startToFirst.Seconds(), bootToFirst.Seconds(), burst.shooting.Seconds(), burst.lag.Seconds(), burst.desk, single.desk)
	if v.temps > 0 {
		r.why = strings.TrimPrefix(r.why+fmt.Sprintf("; %d temp files left on the server", v.temps), "; ")
	}
	return r
}

// linkCut: a 16 MiB capture uploads at 1 MiB/s; at about a third the guest's
// link is cut for 30 s through the QEMU monitor, then restored. The capture
// must arrive once, resumed from an offset, with no partial file visible.
func linkCut(e *env) result {
	const size = 16 << 20
	g, want, err := e.bootAndShootSlow("linkcut", "BIG", size)
	if err != nil {
		return fail("%v", err)
	}
	defer g.Shutdown()
	// Wait until the upload is a good part in, as the server sees it.
	var cutAt int64
	deadline := time.Now().Add(90 * time.Second)
	for cutAt < size/3 {
		if time.Now().After(deadline) {
			return fail("the upload did not reach %d bytes within 90s (at %d)", size/3, cutAt)
		}
		time.Sleep(100 * time.Millisecond)
		_, temps := e.remote()
		for _, n := range temps {
			cutAt = max(cutAt, n)
		}
		if final, _ := e.remote(); len(final["BIG0001.JPG"]) > 0 {
			return fail("the upload finished before the link could be cut (server rate limit not applied?)")
		}
	}
	markCut := g.Mark()
	if out, err := g.Monitor("set_link nic0 off"); err != nil {
		return fail("monitor set_link off: %v %s", err, out)
	}
	tOff := time.Now()
	time.Sleep(2 * time.Second)
	_, temps := e.remote()
	var atCut2 int64
	for _, n := range temps {
		atCut2 = max(atCut2, n)
	}
	e.watch(28 * time.Second)
	_, temps = e.remote()
	var atOn int64
	for _, n := range temps {
		atOn = max(atOn, n)
	}
	if out, err := g.Monitor("set_link nic0 on"); err != nil {
		return fail("monitor set_link on: %v %s", err, out)
	}
	tOn := time.Now()
	seen, err := e.waitArrived(want, 120*time.Second)
	if err != nil {
		v := e.check(want, nil)
		return fail("after the link came back: %v; %s", err, v.why())
	}
	recover := seen["BIG0001.JPG"].Sub(tOn)
	time.Sleep(2 * time.Second)
	v := e.check(want, nil)
	var resumedFrom int64
	for _, n := range e.restOffsets() {
		resumedFrom = max(resumedFrom, n)
	}
	st := e.srv.Stats()
	sawDown := false
	for _, l := range g.Lines(markCut) {
		if strings.Contains(l, "link down") {
			sawDown = true
		}
	}
	// Bytes still arriving while the link is cut come from buffers on the
	// host side (slirp, loopback sockets) that the throttled server drains;
	// the guest sends nothing then.
	r := result{pass: v.ok() && v.temps == 0 && resumedFrom > 0 && st.BytesReceived < 2*size, why: v.why()}
	r.figures = fmt.Sprintf("16 MiB at 1 MiB/s: cut at %.1f MiB for %.0fs (daemon logged link down: %v; host buffers drained %.1f MiB during the cut), resumed from %.1f MiB (REST), %.1f MiB received in all, arrived %.1fs after link up; %s",
		float64(cutAt)/(1<<20), tOn.Sub(tOff).Seconds(), sawDown, float64(atOn-atCut2)/(1<<20), float64(resumedFrom)/(1<<20), float64(st.BytesReceived)/(1<<20), recover.Seconds(), v)
	if st.BytesReceived >= 2*size {
		r.why = strings.TrimPrefix(r.why+fmt.Sprintf("; %d bytes received for a %d-byte file: restarted rather than resumed", st.BytesReceived, size), "; ")
	}
	if resumedFrom == 0 {
		r.why = strings.TrimPrefix(r.why+"; no REST with an offset: the upload restarted from 0", "; ")
	}
	if v.temps > 0 {
		r.why = strings.TrimPrefix(r.why+"; a partial temp file is left on the server", "; ")
	}
	return r
}

// powerCut: ten boots from the same disks, each killed at a random moment
// of a burst of captures; then a last boot. Every capture the camera synced
// before a cut arrives exactly once with its checksum; whatever else is on
// the card arrives with the card's content.
func powerCut(e *env) result {
	const rounds = 10
	state, media, err := e.disks("powercut", nil)
	if err != nil {
		return fail("%v", err)
	}
	// Uploads throttled to 1 MiB/s and 400 KiB captures: the queue has a
	// backlog, so most cuts land in the middle of an upload.
	e.srv.SetFaults(ftpstest.Faults{DataRate: 1 << 20})
	want := map[string]string{}
	var cuts []string
	var inFlight int // cuts with a partial upload on the server
	for r := 1; r <= rounds; r++ {
		g, err := e.boot("powercut", state, media, "", "")
		if err != nil {
			return fail("round %d: %v", r, err)
		}
		mark := g.Mark()
		if err := g.Send(fmt.Sprintf("shoot P%02d_ 40 400 100000", r)); err != nil {
			g.Kill()
			return fail("round %d: shooting: console: %v", r, err)
		}
		delay := time.Duration(1000+e.rng.IntN(6000)) * time.Millisecond
		e.watch(delay)
		if _, temps := e.remote(); len(temps) > 0 {
			inFlight++
		}
		g.Kill()
		n := len(want)
		synced(g.Lines(mark), want)
		cuts = append(cuts, fmt.Sprintf("%.1fs/%d", delay.Seconds(), len(want)-n))
	}
	final, _ := e.remote()
	uploadedBeforeLast := len(final)
	e.srv.SetFaults(ftpstest.Faults{})
	g, err := e.boot("powercut", state, media, "", "")
	if err != nil {
		return fail("last boot: %v", err)
	}
	defer g.Shutdown()
	if _, err := e.waitArrived(want, 240*time.Second); err != nil {
		v := e.check(want, nil)
		return fail("%v; %s", err, v.why())
	}
	// Everything on the card, synced or not, with its content now.
	lines, _, err := g.Run("find /media/DCIM -type f | sort | xargs sha256sum", 120*time.Second)
	if err != nil {
		return fail("listing the card: %v", err)
	}
	card := map[string]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 2 && len(f[0]) == 64 && strings.HasPrefix(f[1], "/media/DCIM/") {
			card[f[1][strings.LastIndex(f[1], "/")+1:]] = f[0]
		}
	}
	rest := map[string]string{}
	for n, s := range card {
		if _, ok := want[n]; !ok {
			rest[n] = s
		}
	}
	if _, err := e.waitArrived(rest, 120*time.Second); err != nil {
		return fail("unsynced captures still on the card: %v", err)
	}
	time.Sleep(2 * time.Second)
	onCard, syncedSet := map[string]bool{}, map[string]bool{}
	for n := range card {
		onCard[n] = true
	}
	for n := range want {
		syncedSet[n] = true
	}
	v := e.check(want, onCard)
	vr := e.check(rest, syncedSet)
	// A capture uploaded twice (renamed into place again, or a name-N copy)
	// fails the scenario: the daemon must send each capture once, power
	// cuts or not.
	why := strings.Trim(v.why()+"; "+vr.why(), "; ")
	if re := append(v.reuploaded, vr.reuploaded...); len(re) > 0 {
		why = strings.TrimPrefix(why+fmt.Sprintf("; uploaded twice: %d captures: %s", len(re), strings.Join(re, ", ")), "; ")
	}
	r := result{pass: v.ok() && vr.ok() && v.reuploads+vr.reuploads == 0, why: why}
	r.figures = fmt.Sprintf("%d cuts (seconds into the burst/captures synced: %s), %d with a partial upload on the server, %d uploads resumed (REST > 0); synced before a cut %d: %s; also on the card (unsynced) %d, all arrived with the card's content: %v; uploaded before the last boot %d; uploaded twice %d",
		rounds, strings.Join(cuts, " "), inFlight, len(e.restOffsets()), len(want), v, len(rest), vr.ok(), uploadedBeforeLast, v.reuploads+vr.reuploads)
	return r
}

// wrongClock: the camera boots in 1970 (RTC and system clock). The daemon
// must not upload (nor give up on the certificate) until the clock is set,
// then upload promptly.
func wrongClock(e *env) result {
	state, media, err := e.disks("clock", nil)
	if err != nil {
		return fail("%v", err)
	}
	g, err := e.boot("clock", state, media, "camftpd.clock=1970", "1970-01-01T00:00:00")
	if err != nil {
		return fail("%v", err)
	}
	defer g.Shutdown()
	out, _, err := g.Run("date +%s", 10*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	guestNow := int64(-1)
	for _, l := range out {
		if n, err := strconv.ParseInt(strings.TrimSpace(l), 10, 64); err == nil {
			guestNow = n
		}
	}
	if guestNow < 0 || guestNow > 1e9 {
		return fail("guest clock is %d, not 1970", guestNow)
	}
	mark := g.Mark()
	if err := g.Send("shoot CLK 1 100"); err != nil {
		return fail("shooting: console: %v", err)
	}
	if _, _, err := g.WaitPrefix(mark, 60*time.Second, "SHOOT-DONE CLK"); err != nil {
		return fail("%v", err)
	}
	want := map[string]string{}
	synced(g.Lines(mark), want)
	hold := 10 * time.Second
	time.Sleep(hold)
	if final, _ := e.remote(); len(final) > 0 {
		return fail("uploaded while the clock said 1970")
	}
	stBefore := e.srv.Stats()
	if _, rc, err := g.Run(fmt.Sprintf("date -s @%d >/dev/null", time.Now().Unix()), 10*time.Second); err != nil || rc != 0 {
		return fail("setting the guest clock: rc %d %v", rc, err)
	}
	tSet := time.Now()
	seen, err := e.waitArrived(want, 60*time.Second)
	if err != nil {
		return fail("after the clock was set: %v", err)
	}
	v := e.check(want, nil)
	r := result{pass: v.ok(), why: v.why()}
	r.figures = fmt.Sprintf("booted at %d (1970): %d TLS logins and no upload in %.0fs; clock set -> arrived in %.2fs; %s",
		guestNow, stBefore.Logins, hold.Seconds(), seen["CLK0001.JPG"].Sub(tSet).Seconds(), v)
	return r
}

// bootCheck: the image boots to a shell, runs the arm64 daemon binary, and
// the monitor's set_link reaches the guest as a carrier change.
func bootCheck(e *env) result {
	state, media, err := e.disks("boot", nil)
	if err != nil {
		return fail("%v", err)
	}
	g, err := e.boot("boot", state, media, "camftpd.nodaemon=1", "")
	if err != nil {
		return fail("%v", err)
	}
	defer g.Shutdown()
	bootTime := time.Since(g.started)
	ver, _, err := g.WaitPrefix(0, time.Second, "camftpd-e2e: camftpd ")
	if err != nil {
		return fail("the daemon binary did not print its version")
	}
	carrier := func() string {
		out, _, _ := g.Run("cat /sys/class/net/eth0/carrier", 10*time.Second)
		for _, l := range out {
			if l = strings.TrimSpace(l); l == "0" || l == "1" {
				return l
			}
		}
		return "?"
	}
	before := carrier()
	if out, err := g.Monitor("set_link nic0 off"); err != nil {
		return fail("monitor set_link off: %v %s", err, out)
	}
	off := carrier()
	if out, err := g.Monitor("set_link nic0 on"); err != nil {
		return fail("monitor set_link on: %v %s", err, out)
	}
	on := carrier()
	r := result{pass: before == "1" && off == "0" && on == "1"}
	r.figures = fmt.Sprintf("QEMU start to shell %.2fs; %q; eth0 carrier %s, set_link off -> %s, on -> %s",
		bootTime.Seconds(), strings.TrimPrefix(ver, "camftpd-e2e: "), before, off, on)
	if !r.pass {
		r.why = "set_link did not reach the guest's carrier"
	}
	return r
}

// restOffsets lists the offsets of the REST commands (> 0) the server got:
// one per resumed upload.
func (e *env) restOffsets() []int64 {
	var out []int64
	for _, c := range e.srv.Commands() {
		if f := strings.Fields(c); len(f) == 2 && strings.EqualFold(f[0], "REST") {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && n > 0 {
				out = append(out, n)
			}
		}
	}
	return out
}

// cardPull: the card is pulled (lazy unmount: gone from the tree at once,
// as when the slot is emptied) while a 6 MiB capture uploads at 1 MiB/s.
// The daemon must notice through /proc/self/mountinfo (no fake events),
// stop and report "paused: media unmounted"; captures taken meanwhile on
// another camera (written to the card mounted elsewhere) are found by the
// rescan when the card is back, and every capture arrives once, the
// interrupted one resumed.
func cardPull(e *env) result {
	const size = 6 << 20
	g, want, err := e.bootAndShootSlow("cardpull", "PULL", size)
	if err != nil {
		return fail("%v", err)
	}
	defer g.Shutdown()
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, temps := e.remote()
		var at int64
		for _, n := range temps {
			at = max(at, n)
		}
		if at >= size/4 {
			break
		}
		if time.Now().After(deadline) {
			return fail("the upload did not reach %d bytes within 90s", size/4)
		}
		time.Sleep(100 * time.Millisecond)
	}
	markPull := g.Mark()
	tPull := time.Now()
	if _, code, err := g.Run("umount -l /media; echo pulled", 10*time.Second); err != nil || code != 0 {
		return fail("pulling the card (umount -l /media): %v (exit %d)", err, code)
	}
	_, _, tPaused, err := g.WaitLine(markPull, 10*time.Second, func(l string) bool { return strings.Contains(l, "media unmounted") })
	if err != nil {
		return fail("the daemon did not log the unmount within 10s: %v", err)
	}
	noticed := tPaused.Sub(tPull)
	// Another camera writes to the card meanwhile.
	if _, code, err := g.Run("mkdir -p /mnt/card && mount -t ext4 \"$(findfs LABEL=card)\" /mnt/card && echo ok", 20*time.Second); err != nil || code != 0 {
		return fail("mounting the card elsewhere: %v (exit %d)", err, code)
	}
	mark := g.Mark()
	if err := g.Send("shoot AWAY 5 300 0 /mnt/card/DCIM/101TEST"); err != nil {
		return fail("shooting on the other camera: console: %v", err)
	}
	if _, _, err := g.WaitPrefix(mark, 60*time.Second, "SHOOT-DONE AWAY"); err != nil {
		return fail("shooting on the other camera: %v", err)
	}
	synced(g.Lines(mark), want)
	if _, code, err := g.Run("umount /mnt/card && echo ok", 20*time.Second); err != nil || code != 0 {
		return fail("unmounting the other camera's card: %v (exit %d)", err, code)
	}
	time.Sleep(2 * time.Second)
	if final, _ := e.remote(); len(final["PULL0001.JPG"])+len(final["AWAY0001.JPG"]) > 0 {
		return fail("something was uploaded while the card was out")
	}
	markIn := g.Mark()
	tIn := time.Now()
	if _, code, err := g.Run("mount -t ext4 -o noatime \"$(findfs LABEL=card)\" /media && echo ok", 20*time.Second); err != nil || code != 0 {
		return fail("putting the card back: %v (exit %d)", err, code)
	}
	if _, err := e.waitArrived(want, 120*time.Second); err != nil {
		v := e.check(want, nil)
		return fail("after the card came back: %v; %s", err, v.why())
	}
	back := time.Since(tIn)
	time.Sleep(2 * time.Second)
	v := e.check(want, nil)
	var resumedFrom int64
	for _, n := range e.restOffsets() {
		resumedFrom = max(resumedFrom, n)
	}
	sawMount := false
	for _, l := range g.Lines(markIn) {
		if strings.Contains(l, "media mounted") {
			sawMount = true
		}
	}
	r := result{pass: v.ok() && v.temps == 0 && v.reuploads == 0 && resumedFrom > 0 && sawMount, why: v.why()}
	r.figures = fmt.Sprintf("card pulled at a quarter of a 6 MiB upload: paused after %.2fs; 5 captures written elsewhere meanwhile; card back -> all %d arrived in %.1fs (daemon logged the mount: %v), interrupted upload resumed from %.1f MiB; %s",
		noticed.Seconds(), len(want), back.Seconds(), sawMount, float64(resumedFrom)/(1<<20), v)
	if resumedFrom == 0 {
		r.why = strings.TrimPrefix(r.why+"; the interrupted upload restarted from 0", "; ")
	}
	if !sawMount {
		r.why = strings.TrimPrefix(r.why+"; the daemon did not log the remount", "; ")
	}
	return r
}

// bootAndShootSlow boots a guest on fresh disks, slows the server to 1 MiB/s
// and has the camera write one capture PREFIX0001.JPG of size bytes; it
// returns the guest (the caller shuts it down) and the capture's checksum.
func (e *env) bootAndShootSlow(name, prefix string, size int) (*Guest, map[string]string, error) {
	state, media, err := e.disks(name, nil)
	if err != nil {
		return nil, nil, err
	}
	g, err := e.boot(name, state, media, "", "")
	if err != nil {
		return nil, nil, err
	}
	e.srv.SetFaults(ftpstest.Faults{DataRate: 1 << 20})
	mark := g.Mark()
	if err := g.Send(fmt.Sprintf("shoot %s 1 %d", prefix, size>>10)); err != nil {
		g.Shutdown()
		return nil, nil, fmt.Errorf("writing the capture: console: %w", err)
	}
	if _, _, err := g.WaitPrefix(mark, 120*time.Second, "SHOOT-DONE "+prefix); err != nil {
		g.Shutdown()
		return nil, nil, fmt.Errorf("writing the capture: %w", err)
	}
	want := map[string]string{}
	synced(g.Lines(mark), want)
	return g, want, nil
}
