package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// The openssl scenario boots the image that scripts/openssl/qemu-image
// makes: the openssl build of the daemon (make cross-openssl) with the
// shared libraries it needs appended to the initramfs.
var (
	opensslImage   = flag.String("openssl-image", "bin/qemu-openssl", "folder made by scripts/openssl/qemu-image (the openssl scenario)")
	opensslCiphers = flag.String("openssl-ciphers", "AES256-SHA256", "vsftpd's ssl_ciphers in the openssl scenario (TLS 1.2 only)")
	opensslSuite   = flag.String("openssl-suite", "TLS_RSA_WITH_AES_256_CBC_SHA256", "the suite the openssl scenario must see negotiated")
	opensslEngine  = flag.String("openssl-engine", "openssl", `the TLS engine the openssl scenario's status must name ("engine"); "" = not checked`)
)

// opensslScenario: the openssl build on the camera against the real vsftpd
// 3.0.3 restricted to a suite that crypto/tls lacks (ssl_ciphers=
// AES256-SHA256, TLS 1.2 at most, an RSA certificate for 10.0.2.2). Five
// captures are shot; each must arrive once (one STOR each in vsftpd's log)
// with the camera's checksum, and the daemon's status must name the
// negotiated suite (-openssl-suite) and the engine (-openssl-engine). The
// pure-Go build cannot pass it: it has no suite in common with the server.
func opensslScenario(e *env) result {
	for _, f := range []string{"vmlinuz", "base.cpio.gz", "camftpd"} {
		if _, err := os.Stat(filepath.Join(*opensslImage, f)); err != nil {
			return fail("the openssl image: %v: run scripts/openssl/qemu-image (scripts/qemu/e2e does)", err)
		}
	}
	cert, err := e.ca.IssueCert(ftpstest.CertOptions{DNSNames: []string{"localhost"},
		IPs: []net.IP{net.IPv4(10, 0, 2, 2), net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return fail("%v", err)
	}
	r, err := ftpstest.StartVsftpd(ftpstest.RealOptions{CA: e.ca, Cert: cert, PasvAddress: "10.0.2.2",
		MaxTLS12: true, Ciphers: *opensslCiphers})
	if err != nil {
		return fail("starting vsftpd: %v", err)
	}
	defer r.Close()
	// The same env on another image: its own work folder, so that its
	// initramfs files do not take the names of the default image's.
	oe := *e
	oe.image, oe.work, oe.root = *opensslImage, filepath.Join(e.work, "openssl"), r.Root
	oe.initrds = map[string]string{}
	if err := os.MkdirAll(oe.work, 0o755); err != nil {
		return fail("%v", err)
	}
	initrd, err := oe.makeInitrd(guestConfig{port: r.Port, user: r.User, password: r.Password, caPEM: r.CAPEM})
	if err != nil {
		return fail("%v", err)
	}
	state, media, err := oe.disks("openssl", nil)
	if err != nil {
		return fail("%v", err)
	}
	g, err := oe.bootWith("openssl", initrd, state, media, "ext4", "", "")
	if err != nil {
		return fail("%v", err)
	}
	defer g.Shutdown()
	if _, _, err := g.WaitPrefix(0, time.Second, "camftpd-e2e: daemon start"); err != nil {
		return fail("the daemon was not started by /etc/init.d/camftpd: %s", consoleWhy(g.Lines(0)))
	}
	mark := g.Mark()
	if err := g.Send("shoot OSL 5 300"); err != nil {
		return fail("shooting: console: %v", err)
	}
	if _, _, err := g.WaitPrefix(mark, 60*time.Second, "SHOOT-DONE OSL"); err != nil {
		return fail("shooting: %v", err)
	}
	want := map[string]string{}
	synced(g.Lines(mark), want)
	if len(want) != 5 {
		return fail("the camera reported %d of 5 captures written", len(want))
	}
	if _, err := oe.waitArrived(want, 90*time.Second); err != nil {
		if st := guestState(g); st != "" {
			return fail("%v; the daemon's %s", err, st)
		}
		return fail("%v; the daemon's status has no state line; console: %s", err, consoleWhy(g.Lines(0)))
	}
	time.Sleep(2 * time.Second) // let a late duplicate show
	return opensslVerdict(&oe, g, r, want)
}

// opensslVerdict judges the scenario once the captures are on the server.
func opensslVerdict(e *env, g *Guest, r *ftpstest.Real, want map[string]string) result {
	v := e.check(want, nil)
	stors, to := vsftpdView{r}.counts()
	var twice []string
	for n := range want {
		if to[n] != 1 {
			twice = append(twice, fmt.Sprintf("%s delivered by %d STORs", n, to[n]))
		}
	}
	sort.Strings(twice)
	tlsInfo := guestTLS(g)
	engineOK := *opensslEngine == "" || tlsInfo["engine"] == *opensslEngine
	res := result{pass: v.ok() && v.temps == 0 && stors == len(want) && len(twice) == 0 && tlsInfo["suite"] == *opensslSuite && engineOK, why: v.why()}
	res.figures = fmt.Sprintf("vsftpd 3.0.3 ssl_ciphers=%s, TLS 1.2 at most: %d/%d arrived, checksums equal %d, %d STORs; daemon status: %s; vsftpd's log: %s",
		*opensslCiphers, v.arrived, len(want), v.arrived-v.mismatch, stors, fmtTLS(tlsInfo), vsftpdCiphers(r))
	add := func(s string) { res.why = strings.TrimPrefix(res.why+"; "+s, "; ") }
	if len(twice) > 0 {
		add(strings.Join(twice, ", "))
	}
	if stors != len(want) {
		add(fmt.Sprintf("%d STORs for %d captures", stors, len(want)))
	}
	if tlsInfo["suite"] != *opensslSuite {
		add(fmt.Sprintf("the daemon's status names suite %q, want %s", tlsInfo["suite"], *opensslSuite))
	}
	if !engineOK {
		add(fmt.Sprintf("the daemon's status names engine %q, want %s", tlsInfo["engine"], *opensslEngine))
	}
	if v.temps > 0 {
		add(fmt.Sprintf("%d temp files left on the server", v.temps))
	}
	return res
}

// guestTLS is the "tls" object of camftpd status -json in the guest (what
// the last handshake negotiated), its values as text; empty when absent.
func guestTLS(g *Guest) map[string]string {
	out, code, err := g.Run(`camftpd status -json; echo`, 30*time.Second)
	info := map[string]string{}
	if err != nil || code != 0 {
		info["error"] = fmt.Sprintf("camftpd status -json: exit %d %v", code, err)
		return info
	}
	all := strings.Join(out, "\n")
	i, j := strings.Index(all, "{"), strings.LastIndex(all, "}")
	var st struct {
		TLS map[string]any `json:"tls"`
	}
	if i < 0 || j <= i || json.Unmarshal([]byte(all[i:j+1]), &st) != nil {
		info["error"] = "no status JSON from camftpd status -json"
		return info
	}
	for k, v := range st.TLS {
		info[k] = fmt.Sprint(v)
	}
	return info
}

// fmtTLS prints the status's TLS fields that say what was negotiated and
// by which engine.
func fmtTLS(info map[string]string) string {
	if len(info) == 0 {
		return "no tls in the status"
	}
	var parts []string
	for _, k := range []string{"version", "suite", "suite_id", "class", "resumed", "engine", "error"} {
		if v, ok := info[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// guestState is the state line of camftpd status in the guest ("" when
// there is none), spaces squeezed.
func guestState(g *Guest) string {
	out, _, err := g.Run(`camftpd status | grep -E '^(state|attention):'`, 30*time.Second)
	var keep []string
	for _, l := range out {
		if strings.HasPrefix(l, "state:") || strings.HasPrefix(l, "attention:") {
			keep = append(keep, strings.Join(strings.Fields(l), " "))
		}
	}
	if err != nil {
		return "status: " + err.Error()
	}
	return strings.Join(keep, " | ")
}

// consoleWhy picks the daemon's last error lines from the console (why a
// capture did not arrive), at most three, distinct.
func consoleWhy(lines []string) string {
	seen := map[string]bool{}
	var why []string
	for i := len(lines) - 1; i >= 0 && len(why) < 3; i-- {
		l := lines[i]
		if !strings.Contains(l, "level=ERROR") && !strings.Contains(l, "level=WARN") && !strings.Contains(l, "not found") {
			continue
		}
		if !seen[l] {
			seen[l] = true
			why = append(why, strings.TrimSpace(l))
		}
	}
	if len(why) == 0 {
		return "no error or warning on the console"
	}
	return strings.Join(why, " / ")
}

var vsftpdCipherRe = regexp.MustCompile(`SSL cipher: ([A-Za-z0-9_-]+)`)

// vsftpdCiphers lists the ciphers vsftpd's debug_ssl log names, with
// their counts (control and data connections).
func vsftpdCiphers(r *ftpstest.Real) string {
	n := map[string]int{}
	for _, m := range vsftpdCipherRe.FindAllStringSubmatch(r.LogText(), -1) {
		n[m[1]]++
	}
	if len(n) == 0 {
		return "no handshake logged"
	}
	var parts []string
	for _, k := range sortedKeys(n) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}
