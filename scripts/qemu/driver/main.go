// Command driver runs the firmware scenarios of issues 7 and 13 against the
// emulated arm64 camera built by scripts/qemu/build-image: the daemon runs in
// qemu-system-aarch64, the FTPS server (transfer/ftpstest, or the real
// vsftpd) on the host's loopback, reached from the guest as 10.0.2.2. It
// prints a pass/fail table with figures and exits 1 when a scenario fails.
// The card scenarios (fatcard, exfatcard, fatvsftpd) are in cards.go.
//
//	go run ./scripts/qemu/driver -image bin/qemu [-run steady,linkcut,powercut,clock,fatcard,...]
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

type result struct {
	name    string
	pass    bool
	wall    time.Duration
	figures string
	why     string
}

type env struct {
	image  string
	work   string
	logs   string
	initrd string // the default config (server srvHash), CA
	// srv is the server of the running scenario: srvHash (offers HASH) or
	// srvNoHash (no HASH: the card scenarios, where a capture sent twice
	// cannot be recognised by its content and shows as a name-1 copy).
	srv       *ftpstest.Server
	srvHash   *ftpstest.Server
	srvNoHash *ftpstest.Server
	ca        *ftpstest.CA
	cert      *ftpstest.Cert
	// root, when set, is the served folder of a real server (vsftpd) that
	// remote() lists instead of srv.Root.
	root    string
	initrds map[string]string // config text -> initramfs
	rng     *rand.Rand
	// firstSeen is the content of each final name when it first appeared on
	// the server: a partial file under a final name shows up here.
	firstSeen map[string]string
	// listErr is the first error of remote() in this scenario other than
	// a file that went away while listed: it fails the scenario, whose
	// figures were counted on an incomplete listing.
	listErr error
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "qemu e2e:", err)
		os.Exit(1)
	}
}

var scenarios = []struct {
	name     string
	fn       func(*env) result
	noHash   bool // run against the server without HASH
	optional bool // only when named in -run
}{
	{"boot", bootCheck, false, false},
	{"steady", steady, false, false},
	{"linkcut", linkCut, false, false},
	{"cardpull", cardPull, false, false},
	{"powercut", powerCut, false, false},
	{"clock", wrongClock, false, false},
	{"battery", batteryLow, false, false},
	{"fatcard", fatCard, true, false},
	{"exfatcard", exfatCard, true, false},
	{"fatvsftpd", fatVsftpd, true, false},
	{"openssl", opensslScenario, false, false}, // openssl.go: the openssl build's image
	{"ext4card", ext4Card, true, true},
}

func scenarioNames() string {
	var n []string
	for _, sc := range scenarios {
		if !sc.optional {
			n = append(n, sc.name)
		}
	}
	return strings.Join(n, ",") + "; also ext4card"
}

func run() error {
	image := flag.String("image", "bin/qemu", "folder made by scripts/qemu/build-image")
	only := flag.String("run", "", "comma-separated scenarios to run (default all: "+scenarioNames()+")")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed (power-cut moments)")
	flag.Parse()
	for _, tool := range []struct{ name, pkg string }{
		{"qemu-system-aarch64", "qemu-system-arm"}, {"mkfs.ext4", "e2fsprogs"}, {"cpio", "cpio"},
		{"mkfs.vfat", "dosfstools"}, {"mkfs.exfat", "exfatprogs"}, {"mcopy", "mtools"}, {"mmd", "mtools"},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			return fmt.Errorf("%s is missing: apt-get install %s (scripts/setup installs it)", tool.name, tool.pkg)
		}
	}
	for _, f := range []string{"vmlinuz", "base.cpio.gz", "camftpd"} {
		if _, err := os.Stat(filepath.Join(*image, f)); err != nil {
			return fmt.Errorf("%w: run scripts/qemu/build-image first", err)
		}
	}
	start := time.Now()
	work, err := os.MkdirTemp("", "camftpd-qemu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	e := &env{image: *image, work: work, logs: filepath.Join(*image, "logs"), rng: rand.New(rand.NewPCG(*seed, 7)), initrds: map[string]string{}}
	if err := os.RemoveAll(e.logs); err != nil {
		return fmt.Errorf("remove the console logs of the last run: %w", err)
	}
	if err := os.MkdirAll(e.logs, 0o755); err != nil {
		return fmt.Errorf("console logs: %w", err)
	}

	// The server certificate names 10.0.2.2, the host as the guest sees it.
	ca, err := ftpstest.NewCA(true)
	if err != nil {
		return err
	}
	cert, err := ca.IssueCert(ftpstest.CertOptions{ECDSA: true, DNSNames: []string{"localhost"},
		IPs: []net.IP{net.IPv4(10, 0, 2, 2), net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return err
	}
	e.ca, e.cert = ca, cert
	root := filepath.Join(work, "ftproot")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("the FTP server's folder: %w", err)
	}
	e.srvHash, err = ftpstest.Start(ftpstest.Options{Root: root, CA: ca, Cert: cert})
	if err != nil {
		return err
	}
	defer e.srvHash.Close()
	root = filepath.Join(work, "ftproot-nohash")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("the FTP server's folder: %w", err)
	}
	e.srvNoHash, err = ftpstest.Start(ftpstest.Options{Root: root, CA: ca, Cert: cert, NoHash: true})
	if err != nil {
		return err
	}
	defer e.srvNoHash.Close()
	e.srv = e.srvHash
	if e.initrd, err = e.makeInitrd(e.defaultConfig()); err != nil {
		return err
	}

	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	var results []result
	for _, sc := range scenarios {
		if len(want) > 0 && !want[sc.name] || len(want) == 0 && sc.optional {
			continue
		}
		fmt.Fprintf(os.Stderr, "qemu e2e: scenario %s ...\n", sc.name)
		e.srv = e.srvHash
		if sc.noHash {
			e.srv = e.srvNoHash
		}
		if err := e.resetServer(); err != nil {
			return err
		}
		t0 := time.Now()
		r := sc.fn(e)
		r.name, r.wall = sc.name, time.Since(t0)
		if e.listErr != nil {
			r.pass = false
			r.why = strings.TrimPrefix(r.why+"; the figures are not to be trusted: "+e.listErr.Error(), "; ")
		}
		fmt.Fprintf(os.Stderr, "qemu e2e: scenario %s: pass=%v %s %s\n", sc.name, r.pass, r.figures, r.why)
		results = append(results, r)
	}
	bin, _ := os.Stat(filepath.Join(*image, "camftpd"))
	fmt.Printf("\n%-10s %-6s %8s  %s\n", "scenario", "result", "wall", "figures")
	failed := 0
	for _, r := range results {
		st := "PASS"
		if !r.pass {
			st = "FAIL"
			failed++
		}
		fmt.Printf("%-10s %-6s %7.1fs  %s\n", r.name, st, r.wall.Seconds(), r.figures)
		if r.why != "" {
			fmt.Printf("%-10s %-6s %8s  why: %s\n", "", "", "", r.why)
		}
	}
	fmt.Printf("arm64 camftpd binary: %d bytes (%.2f MiB); seed %d; console logs in %s\n", bin.Size(), float64(bin.Size())/(1<<20), *seed, e.logs)
	fmt.Printf("qemu e2e wall time: %.1fs\n", time.Since(start).Seconds())
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios failed", failed, len(results))
	}
	if len(results) == 0 {
		return errors.New("no scenario matched -run")
	}
	return nil
}

// guestConfig is what the run's initramfs holds besides the base image:
// the daemon config and the CA, and files to copy onto the card at first
// boot (camftpd.preload=1: an exFAT card cannot be filled on the host).
type guestConfig struct {
	port           int
	user, password string
	caPEM          []byte
	mediaDir       string // "" = the board profile's (/media/DCIM)
	storageMount   string // "" = the board profile's (/media)
	sameName       string // "" = the key is absent (daemon default)
	extra          string // more top-level lines (the battery scenario's policy)
	preload        map[string][]byte
}

func (e *env) defaultConfig() guestConfig {
	return guestConfig{port: e.srv.Port, user: "camftpd", password: "secret", caPEM: e.ca.PEM}
}

func (c guestConfig) text() string {
	var b strings.Builder
	b.WriteString("# written by scripts/qemu/driver\nboard = \"qemu-virt\"\n")
	if c.mediaDir != "" {
		fmt.Fprintf(&b, "media_dir = %q\n", c.mediaDir)
	}
	if c.storageMount != "" {
		fmt.Fprintf(&b, "storage_mount = %q\n", c.storageMount)
	}
	b.WriteString(c.extra)
	// The scenarios put shots on the card before the first boot and expect
	// them sent: the whole card, not only shots taken after the start.
	fmt.Fprintf(&b, `backlog = "all"
settle = "1s"
retry_min = "1s"
retry_max = "5s"
log_level = "debug"

[[server]]
name = "host"
host = "10.0.2.2"
port = %d
user = %q
password = %q
ca_files = ["/etc/camftpd/ca.pem"]
remote_template = "{dir}/{name}"
timeout = "20s"
connect_timeout = "10s"
`, c.port, c.user, c.password)
	if c.sameName != "" {
		fmt.Fprintf(&b, "same_name = %q\n", c.sameName)
	}
	return b.String()
}

// makeInitrd appends the run's files (daemon config, CA, card preload) to
// the base initramfs as a second cpio archive; one initramfs per distinct
// config.
func (e *env) makeInitrd(c guestConfig) (string, error) {
	h := sha256.New()
	h.Write([]byte(c.text()))
	h.Write(c.caPEM)
	pre := make([]string, 0, len(c.preload))
	for p := range c.preload {
		pre = append(pre, p)
	}
	sort.Strings(pre)
	for _, p := range pre {
		fmt.Fprintf(h, "\x00%s\x00%s", p, shaOf(c.preload[p]))
	}
	key := hex.EncodeToString(h.Sum(nil))
	if p, ok := e.initrds[key]; ok {
		return p, nil
	}
	n := len(e.initrds)
	dir := filepath.Join(e.work, fmt.Sprintf("extra-%d", n))
	if err := os.MkdirAll(filepath.Join(dir, "etc/camftpd"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/camftpd.toml"), []byte(c.text()), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/camftpd/ca.pem"), c.caPEM, 0o644); err != nil {
		return "", err
	}
	top := "etc"
	if len(pre) > 0 {
		top = "etc preload"
		for _, p := range pre {
			f := filepath.Join(dir, "preload", filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(f, c.preload[p], 0o644); err != nil {
				return "", err
			}
		}
	}
	base, err := os.ReadFile(filepath.Join(e.image, "base.cpio.gz"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command("sh", "-c", "find "+top+" | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0")
	cmd.Dir = dir
	extra, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cpio of the run's files: %w", err)
	}
	p := filepath.Join(e.work, fmt.Sprintf("run-%d.cpio", n))
	if err := os.WriteFile(p, append(base, extra...), 0o644); err != nil {
		return "", err
	}
	e.initrds[key] = p
	return p, nil
}

// resetServer gives the next scenario a server with no faults, no
// statistics and an empty folder.
func (e *env) resetServer() error {
	e.srv.SetFaults(ftpstest.Faults{})
	e.srv.ResetStats()
	e.firstSeen = map[string]string{}
	e.root = ""
	e.listErr = nil
	if err := os.RemoveAll(e.srv.Root); err != nil {
		return fmt.Errorf("empty the FTP server's folder for the next scenario: %w", err)
	}
	if err := os.MkdirAll(e.srv.Root, 0o755); err != nil {
		return fmt.Errorf("the FTP server's folder: %w", err)
	}
	return nil
}

// disks makes a fresh state disk and a card holding preload (relative path
// under the card -> content).
func (e *env) disks(name string, preload map[string][]byte) (state, media string, err error) {
	state = filepath.Join(e.work, name+"-state.img")
	media = filepath.Join(e.work, name+"-media.img")
	stage := filepath.Join(e.work, name+"-card")
	if err := os.RemoveAll(stage); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(filepath.Join(stage, "DCIM"), 0o755); err != nil {
		return "", "", err
	}
	for p, b := range preload {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(stage, p)), 0o755); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(stage, p), b, 0o644); err != nil {
			return "", "", err
		}
	}
	for _, c := range [][]string{
		{"mkfs.ext4", "-q", "-F", "-L", "state", state, "64M"},
		{"mkfs.ext4", "-q", "-F", "-L", "card", "-d", stage, media, "256M"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, out)
		}
	}
	return state, media, nil
}

func (e *env) boot(name, state, media, appendArgs, rtc string) (*Guest, error) {
	return e.bootWith(name, e.initrd, state, media, "ext4", appendArgs, rtc)
}

// bootWith boots an initramfs with a card of file system cardFS (ext4,
// vfat, exfat) and waits for the guest's shell.
func (e *env) bootWith(name, initrd, state, media, cardFS, appendArgs, rtc string) (*Guest, error) {
	g, err := Boot(BootOptions{Image: e.image, Initrd: initrd, State: state, Media: media,
		Append:  strings.TrimSpace("camftpd.cardfs=" + cardFS + " " + appendArgs),
		RTCBase: rtc, Log: filepath.Join(e.logs, name+".log"), Dir: e.work})
	if err != nil {
		return nil, err
	}
	if _, _, err := g.WaitPrefix(0, 90*time.Second, "camftpd-e2e: ready"); err != nil {
		g.Kill()
		return nil, fmt.Errorf("boot: %w", err)
	}
	return g, nil
}

// remote lists the server's files: final names (base name -> paths) and
// temporary upload files (hidden names). A file or folder that goes away
// while it is listed (a temp file renamed into place) is left out; any
// other error is kept in e.listErr, which fails the scenario.
func (e *env) remote() (final map[string][]string, temps map[string]int64) {
	final, temps = map[string][]string{}, map[string]int64{}
	root := e.srv.Root
	if e.root != "" {
		root = e.root
	}
	keep := func(err error) {
		if !errors.Is(err, fs.ErrNotExist) && e.listErr == nil {
			e.listErr = fmt.Errorf("listing the server's files under %s: %w", root, err)
		}
	}
	// The callback returns nil for every entry, so WalkDir returns nil.
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			keep(err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if fi, err := d.Info(); err == nil {
				temps[p] = fi.Size()
			} else {
				keep(err)
			}
			return nil
		}
		final[d.Name()] = append(final[d.Name()], p)
		return nil
	})
	return final, temps
}

// waitArrived waits until every name in want is on the server under its
// final name, and returns when the last one was first seen.
func (e *env) waitArrived(want map[string]string, timeout time.Duration) (map[string]time.Time, error) {
	seen := map[string]time.Time{}
	deadline := time.Now().Add(timeout)
	for {
		final, _ := e.remote()
		for n := range want {
			if _, ok := seen[n]; !ok && len(final[n]) > 0 {
				seen[n] = time.Now()
				if _, ok := e.firstSeen[n]; !ok {
					e.firstSeen[n] = fileSHA(final[n][0])
				}
			}
		}
		if len(seen) == len(want) {
			return seen, nil
		}
		if time.Now().After(deadline) {
			return seen, fmt.Errorf("%d of %d captures arrived within %v", len(seen), len(want), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verdict compares the server with the captures that must be there.
type verdict struct {
	arrived, missing, dups, mismatch, extra, temps, reuploads int
	partial                                                   int // final name first seen with other content
	copies                                                    int // name-N copies of a capture (same-name policy rename)
	reuploaded                                                []string
	notes                                                     []string
}

func (e *env) check(want map[string]string, allowed map[string]bool) verdict {
	var v verdict
	final, temps := e.remote()
	v.temps = len(temps)
	renames := map[string]int{}
	for _, c := range e.srv.Commands() {
		if strings.HasPrefix(c, "RNTO ") {
			renames[filepath.Base(strings.TrimSpace(c[5:]))]++
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		paths := final[n]
		switch {
		case len(paths) == 0:
			v.missing++
			v.notes = append(v.notes, "missing "+n)
			continue
		case len(paths) > 1:
			v.dups++
			v.notes = append(v.notes, fmt.Sprintf("%s %d times", n, len(paths)))
		}
		v.arrived++
		if sum := fileSHA(paths[0]); sum != want[n] {
			v.mismatch++
			v.notes = append(v.notes, fmt.Sprintf("%s checksum %.12s, camera %.12s", n, sum, want[n]))
		} else if first, ok := e.firstSeen[n]; ok && first != sum {
			v.partial++
			v.notes = append(v.notes, fmt.Sprintf("%s was visible with other content (%.12s) before the final one", n, first))
		}
		if renames[n] > 1 {
			v.reuploads++
			v.reuploaded = append(v.reuploaded, fmt.Sprintf("%s (renamed into place %d times)", n, renames[n]))
		}
	}
	var odd []string
	for n := range final {
		odd = append(odd, n)
	}
	sort.Strings(odd)
	for _, n := range odd {
		paths := final[n]
		if _, ok := want[n]; ok || allowed[n] {
			continue
		}
		if orig, ok := copyOf(n); ok && (want[orig] != "" || allowed[orig]) {
			v.copies += len(paths)
			v.notes = append(v.notes, fmt.Sprintf("%s: a copy of %s (sent again)", n, orig))
			continue
		}
		v.extra += len(paths)
		v.notes = append(v.notes, "unexpected "+n)
	}
	return v
}

var copyRe = regexp.MustCompile(`^(.+)-([0-9]+)(\.[^.]*)?$`)

// copyOf says whether n is a "name-N.ext" copy (same-name policy rename)
// and of which name.
func copyOf(n string) (string, bool) {
	m := copyRe.FindStringSubmatch(n)
	if m == nil {
		return "", false
	}
	return m[1] + m[3], true
}

func (v verdict) String() string {
	return fmt.Sprintf("arrived %d, missing %d, duplicates %d, name-N copies %d, checksum mismatches %d, partial visible %d, unexpected %d, temp files left %d",
		v.arrived, v.missing, v.dups, v.copies, v.mismatch, v.partial, v.extra, v.temps)
}

func (v verdict) ok() bool {
	return v.missing == 0 && v.dups == 0 && v.copies == 0 && v.mismatch == 0 && v.partial == 0 && v.extra == 0
}

func (v verdict) why() string {
	if len(v.notes) > 6 {
		return strings.Join(v.notes[:6], "; ") + fmt.Sprintf("; ... (%d more)", len(v.notes)-6)
	}
	return strings.Join(v.notes, "; ")
}

// fileSHA is the checksum of a file on the server, "" (which no capture's
// checksum equals) when it cannot be read whole.
func fileSHA(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

func shaOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// synced parses "SYNCED name sha" lines.
func synced(lines []string, into map[string]string) {
	for _, l := range lines {
		if i := strings.Index(l, "SYNCED "); i >= 0 {
			f := strings.Fields(l[i:])
			if len(f) == 3 && len(f[2]) == 64 {
				into[f[1]] = f[2]
			}
		}
	}
}

func fail(why string, args ...any) result { return result{why: fmt.Sprintf(why, args...)} }

// watch spends d looking at the server every 100 ms and records the content
// of every final name when it first appears (see firstSeen).
func (e *env) watch(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		final, _ := e.remote()
		for n, paths := range final {
			if _, ok := e.firstSeen[n]; !ok {
				e.firstSeen[n] = fileSHA(paths[0])
			}
		}
		time.Sleep(min(100*time.Millisecond, time.Until(end)))
	}
}
