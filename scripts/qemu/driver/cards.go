package main

import (
	"bufio"
	crand "crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// The card scenarios (issue 13): a real FAT32 or exFAT card, a server
// without HASH and the same-name policy "rename", so a capture the daemon
// sends again shows as a STOR for a shot already delivered and as a
// name-1 copy. Linux numbers FAT and exFAT inodes per mount and FAT keeps
// local time, so every step below changes what the kernel says about the
// files on the card without changing the files:
//
//	a  the card unmounted and mounted again, three times (new inodes)
//	b  the guest rebooted (same disks)
//	c  a boot with the card mounted at /mnt/sd (media_dir /mnt/sd/DCIM)
//	d  the card mounted again with time_offset=120 (every mtime shifts 2 h)
//	e  ten power cuts while bursts upload, then a last boot (FAT only)
//
// Each step shoots new captures and ends with: every synced capture on the
// server once with its checksum, no name-N copy, no STOR for a capture
// delivered before the step, the new captures delivered.

func fatCard(e *env) result   { return cardScenario(e, "fatcard", "vfat", "abcde") }
func exfatCard(e *env) result { return cardScenario(e, "exfatcard", "exfat", "abcd") }

// ext4Card is the control (not in the default run): steps a, b and c on an
// ext4 card, whose inodes and mtimes survive remounts and reboots (ext4 has
// no time_offset, so no d).
func ext4Card(e *env) result { return cardScenario(e, "ext4card", "ext4", "abc") }

// fatVsftpd runs the remount step against the real vsftpd 3.0.3 (no HASH
// commands at all), which the guest reaches at 10.0.2.2 through QEMU's user
// network: vsftpd listens on 127.0.0.1, where slirp delivers the guest's
// connections to 10.0.2.2, data connections included (the daemon always
// connects to the control address; PASV says 10.0.2.2 anyway). STORs are
// counted from vsftpd's log.
func fatVsftpd(e *env) result {
	cert, err := e.ca.IssueCert(ftpstest.CertOptions{ECDSA: true, DNSNames: []string{"localhost"},
		IPs: []net.IP{net.IPv4(10, 0, 2, 2), net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return fail("%v", err)
	}
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{ECDSA: true, CA: e.ca, Cert: cert, PasvAddress: "10.0.2.2"})
	if err != nil {
		return fail("starting vsftpd: %v", err)
	}
	defer r.Close()
	e.root = r.Root
	res := runCard(e, "fatvsftpd", "vfat", "a", vsftpdView{r},
		guestConfig{port: r.Port, user: r.User, password: r.Password, caPEM: r.CAPEM})
	res.figures = "vsftpd 3.0.3: " + res.figures
	return res
}

func cardScenario(e *env, name, fs, steps string) result {
	return runCard(e, name, fs, steps, inprocView{e.srv}, e.defaultConfig())
}

// serverView is what a card scenario needs from its server.
type serverView interface {
	// counts: STOR/APPE commands so far, and per final base name the STORs
	// whose data was delivered to it (moved along RNFR/RNTO).
	counts() (stors int, storsTo map[string]int)
	throttle(bytesPerSec int64) // 0 = full speed
}

type inprocView struct{ s *ftpstest.Server }

func (v inprocView) counts() (int, map[string]int) {
	st := v.s.Stats()
	to := map[string]int{}
	for p, n := range st.StorsTo {
		to[path.Base(p)] += n
	}
	return st.Stors, to
}

func (v inprocView) throttle(rate int64) { v.s.SetFaults(ftpstest.Faults{DataRate: rate}) }

// vsftpdView reads vsftpd's log (log_ftp_protocol): "FTP command: ...
// "STOR x"" lines are the STORs; "OK UPLOAD"/"FAIL UPLOAD" name the file
// written, "OK RENAME" moves it, "OK DELETE" drops it. Keyed by base name
// (temporary names are unique per capture).
type vsftpdView struct{ r *ftpstest.Real }

func (v vsftpdView) counts() (int, map[string]int) {
	stors, to := 0, map[string]int{}
	f, err := os.Open(v.r.LogPath)
	if err != nil {
		return 0, to
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		q := quoted(l)
		switch {
		case strings.Contains(l, "FTP command: ") && len(q) >= 2:
			verb, _, _ := strings.Cut(q[len(q)-1], " ")
			if v := strings.ToUpper(verb); v == "STOR" || v == "APPE" {
				stors++
			}
		case (strings.Contains(l, "OK UPLOAD: ") || strings.Contains(l, "FAIL UPLOAD: ")) && len(q) >= 2:
			to[path.Base(q[1])]++
		case strings.Contains(l, "OK RENAME: ") && len(q) >= 2:
			if a, b, ok := strings.Cut(q[1], " "); ok {
				to[path.Base(b)] += to[path.Base(a)]
				delete(to, path.Base(a))
			}
		case strings.Contains(l, "OK DELETE: ") && len(q) >= 2:
			delete(to, path.Base(q[1]))
		}
	}
	return stors, to
}

func (v vsftpdView) throttle(int64) {}

// quoted returns the "..." strings of a vsftpd log line, in order (the
// last one may contain quotes of its own: it runs to the last quote).
func quoted(l string) []string {
	var out []string
	for {
		i := strings.IndexByte(l, '"')
		if i < 0 {
			return out
		}
		l = l[i+1:]
		j := strings.Index(l, `", `)
		if j < 0 {
			j = strings.LastIndexByte(l, '"')
		}
		if j < 0 {
			return out
		}
		out = append(out, l[:j])
		l = l[j+1:]
	}
}

type cardTest struct {
	e            *env
	name, fs     string
	srv          serverView
	initrd       string // config with media_dir on /media
	cfg          guestConfig
	state, media string
	g            *Guest
	mnt          string            // the card's mount point in the guest now
	want         map[string]string // every synced capture: name -> sha256
	stepStart    time.Time
	figures      []string
	fails        []string
}

// snap is the server at the start of a step.
type snap struct {
	stors   int
	storsTo map[string]int
	final   map[string][]string
}

func (t *cardTest) snapshot() snap {
	st, to := t.srv.counts()
	final, _ := t.e.remote()
	return snap{st, to, final}
}

func runCard(e *env, name, fs, steps string, srv serverView, cfg guestConfig) result {
	t := &cardTest{e: e, name: name, fs: fs, srv: srv, mnt: "/media", want: map[string]string{}}
	defer func() {
		if t.g != nil {
			t.g.Shutdown()
		}
	}()
	t.stepStart = time.Now()
	if err := t.setup(cfg); err != nil {
		return t.result(fmt.Errorf("setup: %w", err))
	}
	// The lease proof on vfat and exfat is fatcard's and exfatcard's;
	// fatvsftpd checks the server's side and skips it (26 s).
	if _, vsftpd := srv.(vsftpdView); !vsftpd {
		if err := t.completionStep(); err != nil {
			return t.result(fmt.Errorf("completion: %w", err))
		}
	}
	for _, st := range steps {
		var err error
		t.stepStart = time.Now()
		switch st {
		case 'a':
			err = t.remountStep()
		case 'b':
			err = t.rebootStep()
		case 'c':
			err = t.mountPointStep()
		case 'd':
			err = t.timeZoneStep()
		case 'e':
			err = t.powerCutStep()
		}
		if err != nil {
			return t.result(fmt.Errorf("step %c: %w", st, err))
		}
	}
	return t.result(nil)
}

func (t *cardTest) result(abort error) result {
	r := result{pass: abort == nil && len(t.fails) == 0, figures: strings.Join(t.figures, " | ")}
	why := t.fails
	if abort != nil {
		why = append(why, "aborted: "+abort.Error())
	}
	r.why = strings.Join(why, " | ")
	return r
}

// setup: fresh disks (the card holds two captures taken before the camera
// boots: written with mtools on FAT32, copied in by the guest at first boot
// on exFAT), a boot, three captures; all delivered.
func (t *cardTest) setup(cfg guestConfig) error {
	pre := map[string][]byte{}
	for i := 1; i <= 2; i++ {
		b := make([]byte, 200<<10)
		crand.Read(b)
		n := fmt.Sprintf("PRE%05d.JPG", i)
		pre["DCIM/100TEST/"+n] = b
		t.want[n] = shaOf(b)
	}
	var err error
	var guestPre map[string][]byte
	t.state, t.media, guestPre, err = t.e.cardDisks(t.name, t.fs, pre)
	if err != nil {
		return err
	}
	cfg.sameName = "rename"
	t.cfg = cfg
	if t.initrd, err = t.e.makeInitrd(cfg); err != nil {
		return err
	}
	first, appendArgs := t.initrd, ""
	if len(guestPre) > 0 {
		c := cfg
		c.preload = guestPre
		if first, err = t.e.makeInitrd(c); err != nil {
			return err
		}
		appendArgs = "camftpd.preload=1"
	}
	if err := t.boot(first, appendArgs); err != nil {
		return err
	}
	before := t.snapshot()
	names, err := t.shoot("S0_", 3)
	if err != nil {
		return err
	}
	all := append([]string{"PRE00001.JPG", "PRE00002.JPG"}, names...)
	t.verify("setup (2 preloaded + 3 shot)", before, all, nil)
	return nil
}

func (t *cardTest) boot(initrd, appendArgs string) error {
	g, err := t.e.bootWith(t.name, initrd, t.state, t.media, t.fs, appendArgs, "")
	if err != nil {
		return err
	}
	t.g = g
	return nil
}

// shoot writes n captures PREFIX0001.JPG... of 300 KiB on the card.
func (t *cardTest) shoot(prefix string, n int) ([]string, error) {
	mark := t.g.Mark()
	if err := t.g.Send(fmt.Sprintf("shoot %s %d 300 0 %s/DCIM/100TEST", prefix, n, t.mnt)); err != nil {
		return nil, fmt.Errorf("shooting %s: console: %w", prefix, err)
	}
	if _, _, err := t.g.WaitPrefix(mark, 120*time.Second, "SHOOT-DONE "+prefix); err != nil {
		return nil, fmt.Errorf("shooting %s: %w", prefix, err)
	}
	got := map[string]string{}
	synced(t.g.Lines(mark), got)
	if len(got) != n {
		return nil, fmt.Errorf("the camera reported %d of %d captures %s written", len(got), n, prefix)
	}
	var names []string
	for k, v := range got {
		t.want[k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

// delivered lists the captures on the server under their final names.
func (t *cardTest) delivered() map[string]bool {
	final, _ := t.e.remote()
	d := map[string]bool{}
	for n := range t.want {
		if len(final[n]) > 0 {
			d[n] = true
		}
	}
	return d
}

// fileInfo is a card file as the guest's kernel sees it.
type fileInfo struct {
	ino   uint64
	mtime int64
}

// cardFiles lists inode and mtime of the captures on the card.
func (t *cardTest) cardFiles() map[string]fileInfo {
	out, _, _ := t.g.Run(fmt.Sprintf(`for f in %s/DCIM/*/*; do stat -c "CARDFILE %%i %%Y %%n" "$f"; done`, t.mnt), 60*time.Second)
	m := map[string]fileInfo{}
	for _, l := range out {
		i := strings.Index(l, "CARDFILE ")
		if i < 0 {
			continue
		}
		f := strings.Fields(l[i:])
		if len(f) != 4 {
			continue
		}
		ino, err1 := strconv.ParseUint(f[1], 10, 64)
		mt, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil {
			m[path.Base(f[3])] = fileInfo{ino, mt}
		}
	}
	return m
}

// changed says how many files of before have another inode (and the
// mtime shift of the first, in seconds) in after.
func changed(before, after map[string]fileInfo) (inodes, n int, shift int64) {
	first := true
	for k, b := range before {
		a, ok := after[k]
		if !ok {
			continue
		}
		n++
		if a.ino != b.ino {
			inodes++
		}
		if first {
			shift, first = a.mtime-b.mtime, false
		}
	}
	return
}

// remount unmounts the card and mounts it again on dir with opts; waits
// for the daemon to log the mount. The unmount is not lazy (a lazily
// unmounted card still mounted would be mounted again with the same
// superblock, and the same inodes): it is retried while the daemon still
// reads a file of the card, for up to 30 s.
func (t *cardTest) remount(dir, opts string) error {
	mark := t.g.Mark()
	cmd := fmt.Sprintf(`i=0; until umount %s 2>/dev/null; do i=$((i+1)); [ $i -ge 150 ] && break; sleep 0.2; done; cardmount %s %s`, t.mnt, dir, opts)
	_, code, err := t.g.Run(cmd, 60*time.Second)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d", code)
	}
	if err != nil {
		return fmt.Errorf("remounting the card (umount %s; cardmount %s %s): %w", t.mnt, dir, opts, err)
	}
	t.mnt = dir
	if _, _, _, err := t.g.WaitLine(mark, 15*time.Second, func(l string) bool { return strings.Contains(l, "media mounted") }); err != nil {
		t.fails = append(t.fails, "the daemon did not log the card's mount within 15s")
	}
	return nil
}

// a: the card unmounted and mounted again three times.
func (t *cardTest) remountStep() error {
	before := t.snapshot()
	old := t.delivered()
	files := t.cardFiles()
	for i := 0; i < 3; i++ {
		if err := t.remount(t.mnt, ""); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	after := t.cardFiles()
	ch, n, _ := changed(files, after)
	names, err := t.shoot("SA_", 2)
	if err != nil {
		return err
	}
	t.verify(fmt.Sprintf("a remount x3 (inodes changed %d/%d)", ch, n), before, names, old)
	return nil
}

// b: the guest rebooted, same disks.
func (t *cardTest) rebootStep() error {
	before := t.snapshot()
	old := t.delivered()
	files := t.cardFiles()
	t.g.Shutdown()
	t.g = nil
	if err := t.boot(t.initrd, ""); err != nil {
		return err
	}
	after := t.cardFiles()
	ch, n, _ := changed(files, after)
	names, err := t.shoot("SB_", 2)
	if err != nil {
		return err
	}
	t.verify(fmt.Sprintf("b reboot (inodes changed %d/%d)", ch, n), before, names, old)
	return nil
}

// c: a boot with the card at /mnt/sd and the config's media_dir there.
func (t *cardTest) mountPointStep() error {
	before := t.snapshot()
	old := t.delivered()
	files := t.cardFiles()
	c := t.cfg
	c.mediaDir, c.storageMount = "/mnt/sd/DCIM", "/mnt/sd"
	initrd, err := t.e.makeInitrd(c)
	if err != nil {
		return err
	}
	t.g.Shutdown()
	t.g = nil
	if err := t.boot(initrd, "camftpd.cardmnt=/mnt/sd"); err != nil {
		return err
	}
	t.mnt = "/mnt/sd"
	after := t.cardFiles()
	ch, n, _ := changed(files, after)
	names, err := t.shoot("SC_", 2)
	if err != nil {
		return err
	}
	t.verify(fmt.Sprintf("c card at /mnt/sd (inodes changed %d/%d)", ch, n), before, names, old)
	return nil
}

// d: the card mounted again with time_offset=120 (minutes).
func (t *cardTest) timeZoneStep() error {
	before := t.snapshot()
	old := t.delivered()
	files := t.cardFiles()
	if err := t.remount(t.mnt, "time_offset=120"); err != nil {
		return err
	}
	after := t.cardFiles()
	ch, n, shift := changed(files, after)
	names, err := t.shoot("SD_", 2)
	if err != nil {
		return err
	}
	t.verify(fmt.Sprintf("d time_offset=120 (inodes changed %d/%d, mtimes %+ds)", ch, n, shift), before, names, old)
	return nil
}

// e: ten power cuts at random moments of the uploads of bursts (throttled
// to 1 MiB/s so cuts land mid-upload, 0.2-3.2 s after the burst is on the
// card), then a last boot at full speed.
// Everything on the card arrives with the card's content.
func (t *cardTest) powerCutStep() error {
	const rounds = 10
	before := t.snapshot()
	old := t.delivered()
	t.g.Shutdown()
	t.g = nil
	t.mnt = "/media"
	var cuts []string
	t.srv.throttle(1 << 20)
	for r := 1; r <= rounds; r++ {
		if err := t.boot(t.initrd, ""); err != nil {
			return fmt.Errorf("power-cut round %d: %w", r, err)
		}
		mark := t.g.Mark()
		prefix := fmt.Sprintf("E%02d_", r)
		if err := t.g.Send(fmt.Sprintf("shoot %s 20 300 100000 /media/DCIM/100TEST", prefix)); err != nil {
			return fmt.Errorf("power-cut round %d: the burst: console: %w", r, err)
		}
		// Cut while the burst uploads, after the camera finished writing
		// it: FAT has no journal, and a cut during the camera's own writes
		// corrupted the card in one run ("FAT-fs (vda): error,
		// fat_get_cluster: invalid cluster chain" at every later boot, the
		// card's files unreadable), which is the file system's failure, not
		// the uploader's. The daemon never writes the card. The ext4
		// powercut scenario cuts during the writes.
		if _, _, err := t.g.WaitPrefix(mark, 120*time.Second, "SHOOT-DONE "+prefix); err != nil {
			return fmt.Errorf("power-cut round %d: the burst: %w", r, err)
		}
		delay := time.Duration(200+t.e.rng.IntN(3000)) * time.Millisecond
		t.e.watch(delay)
		t.g.Kill()
		got := map[string]string{}
		synced(t.g.Lines(mark), got)
		for k, v := range got {
			t.want[k] = v
		}
		cuts = append(cuts, fmt.Sprintf("%.1fs/%d", delay.Seconds(), len(got)))
		t.g = nil
	}
	t.srv.throttle(0)
	if err := t.boot(t.initrd, ""); err != nil {
		return fmt.Errorf("last boot: %w", err)
	}
	// Everything on the card, synced or not, with its content now: a
	// capture cut off mid-write is uploaded as the card has it.
	lines, _, err := t.g.Run("find /media/DCIM -type f | sort | xargs sha256sum | sed 's/^/CARDSUM /'", 120*time.Second)
	if err != nil {
		return fmt.Errorf("listing the card: %w", err)
	}
	card := map[string]string{}
	for _, l := range lines {
		i := strings.Index(l, "CARDSUM ")
		if i < 0 {
			continue
		}
		f := strings.Fields(l[i:])
		if len(f) == 3 && len(f[1]) == 64 && strings.HasPrefix(f[2], "/media/DCIM/") {
			card[path.Base(f[2])] = f[1]
		}
	}
	var lost []string
	for n, sum := range t.want {
		if c, ok := card[n]; !ok || c != sum {
			lost = append(lost, n)
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		t.fails = append(t.fails, fmt.Sprintf("step e: %d synced captures changed or gone on the card after the cuts: %s", len(lost), strings.Join(lost, " ")))
	}
	var names []string
	for n, sum := range card {
		if _, ok := old[n]; !ok {
			names = append(names, n)
			t.want[n] = sum
		}
	}
	sort.Strings(names)
	t.verify(fmt.Sprintf("e 10 power cuts (s after the burst/synced: %s; %d new on the card)", strings.Join(cuts, " "), len(names)),
		before, names, old)
	return nil
}

// verify waits for the new captures and a quiet server, then checks the
// step: every capture once with its checksum, no name-N copy, no STOR for
// a capture in old, every STOR of the step accounted for by a new capture.
func (t *cardTest) verify(step string, before snap, news []string, old map[string]bool) {
	newSet := map[string]string{}
	for _, n := range news {
		newSet[n] = t.want[n]
	}
	var bad []string
	if _, err := t.e.waitArrived(newSet, 180*time.Second); err != nil {
		bad = append(bad, "new captures: "+err.Error())
	}
	t.quiet(4*time.Second, 90*time.Second)
	stors, storsTo := t.srv.counts()
	final, temps := t.e.remote()

	// STORs per capture, its name-N copies included.
	per := func(to map[string]int, n string) int {
		c := to[n]
		for k, v := range to {
			if o, ok := copyOf(k); ok && o == n {
				c += v
			}
		}
		return c
	}
	var resent []string
	resentStors, newStors := 0, 0
	olds := sortedKeys(old)
	for _, n := range olds {
		if d := per(storsTo, n) - per(before.storsTo, n); d > 0 {
			resent = append(resent, fmt.Sprintf("%s x%d", n, d))
			resentStors += d
		}
	}
	for _, n := range news {
		newStors += per(storsTo, n) - per(before.storsTo, n)
	}
	// Copies, duplicates, missing, checksums over every capture.
	var copies, newCopies []string
	for _, k := range sortedKeys(final) {
		if o, ok := copyOf(k); ok && t.want[o] != "" {
			copies = append(copies, k)
			if len(before.final[k]) == 0 {
				newCopies = append(newCopies, k)
			}
		}
	}
	var missing, dups, mism []string
	for _, n := range sortedKeys(t.want) {
		switch p := final[n]; {
		case len(p) == 0:
			missing = append(missing, n)
		case len(p) > 1:
			dups = append(dups, fmt.Sprintf("%s x%d", n, len(p)))
		default:
			if fileSHA(p[0]) != t.want[n] {
				mism = append(mism, n)
			}
		}
	}
	delta := stors - before.stors
	stray := delta - newStors - resentStors
	fig := fmt.Sprintf("%s: STORs %d (new captures %d: %d; captures delivered before: %d); name-N copies made %d (on server %d); temp files %d; %.0fs",
		step, delta, len(news), newStors, resentStors, len(newCopies), len(copies), len(temps), time.Since(t.stepStart).Seconds())
	t.figures = append(t.figures, fig)
	if resentStors > 0 {
		bad = append(bad, fmt.Sprintf("%d of %d captures delivered before were sent again (%d STORs: %s)", len(resent), len(olds), resentStors, short(resent, 6)))
	}
	if len(newCopies) > 0 {
		bad = append(bad, fmt.Sprintf("%d name-N copies made: %s", len(newCopies), short(newCopies, 6)))
	} else if len(copies) > 0 {
		bad = append(bad, fmt.Sprintf("%d name-N copies on the server from earlier steps", len(copies)))
	}
	if len(missing) > 0 {
		bad = append(bad, fmt.Sprintf("%d captures missing: %s", len(missing), short(missing, 6)))
	}
	if len(dups) > 0 {
		bad = append(bad, fmt.Sprintf("%d captures in several folders: %s", len(dups), short(dups, 6)))
	}
	if len(mism) > 0 {
		bad = append(bad, fmt.Sprintf("%d checksum mismatches: %s", len(mism), short(mism, 6)))
	}
	if stray > 0 {
		bad = append(bad, fmt.Sprintf("%d STORs not accounted for by a capture (deleted or left as temp files)", stray))
	}
	if len(temps) > 0 {
		bad = append(bad, fmt.Sprintf("%d temp files left", len(temps)))
	}
	if len(bad) > 0 {
		t.fails = append(t.fails, "step "+step+": "+strings.Join(bad, "; "))
	}
	fmt.Fprintf(os.Stderr, "qemu e2e: %s: %s\n", t.name, fig)
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "qemu e2e: %s:   FAIL: %s\n", t.name, strings.Join(bad, "; "))
	}
}

// quiet waits until the server saw no STOR for d and holds no temp file
// (at most limit), so that a late re-send is counted in its step.
func (t *cardTest) quiet(d, limit time.Duration) {
	end := time.Now().Add(limit)
	last, _ := t.srv.counts()
	since := time.Now()
	for time.Now().Before(end) {
		time.Sleep(250 * time.Millisecond)
		n, _ := t.srv.counts()
		_, temps := t.e.remote()
		if n != last || len(temps) > 0 {
			last, since = n, time.Now()
			continue
		}
		if time.Since(since) >= d {
			return
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func short(list []string, n int) string {
	if len(list) > n {
		return strings.Join(list[:n], ", ") + fmt.Sprintf(", ... (%d more)", len(list)-n)
	}
	return strings.Join(list, ", ")
}

// cardDisks makes a fresh ext4 state disk and a card image of file system
// fs (ext4, vfat = FAT32, exfat) labelled "card", filled with preload
// (path under the card -> content) without mounting it: mkfs.ext4 -d,
// mtools for FAT32. exFAT has no such tool (exfatprogs 1.2 only formats):
// its preload is returned for the guest to copy at first boot.
func (e *env) cardDisks(name, fs string, preload map[string][]byte) (state, media string, guest map[string][]byte, err error) {
	if fs == "ext4" {
		state, media, err = e.disks(name, preload)
		return state, media, nil, err
	}
	state = filepath.Join(e.work, name+"-state.img")
	media = filepath.Join(e.work, name+"-media.img")
	os.Remove(media)
	run := func(c ...string) error {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, out)
		}
		return nil
	}
	if err := run("mkfs.ext4", "-q", "-F", "-L", "state", state, "64M"); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(media, nil, 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.Truncate(media, 256<<20); err != nil {
		return "", "", nil, err
	}
	switch fs {
	case "vfat":
		if err := run("mkfs.vfat", "-F", "32", "-n", "card", media); err != nil {
			return "", "", nil, err
		}
		dirs := map[string]bool{}
		for _, p := range sortedKeys(preload) {
			var mk []string
			for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
				dirs[d] = true
				mk = append([]string{"::" + d}, mk...)
			}
			if len(mk) > 0 {
				if err := run(append([]string{"mmd", "-i", media}, mk...)...); err != nil {
					return "", "", nil, err
				}
			}
			src := filepath.Join(e.work, name+"-preload.tmp")
			if err := os.WriteFile(src, preload[p], 0o644); err != nil {
				return "", "", nil, err
			}
			if err := run("mcopy", "-i", media, "-m", src, "::"+p); err != nil {
				return "", "", nil, err
			}
			os.Remove(src)
		}
	case "exfat":
		if err := run("mkfs.exfat", "-L", "card", media); err != nil {
			return "", "", nil, err
		}
		guest = preload
	default:
		return "", "", nil, fmt.Errorf("unknown card file system %q", fs)
	}
	return state, media, guest, nil
}
