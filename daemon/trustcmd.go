package daemon

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

// maxImportFile bounds a certificate file given to trust -import.
const maxImportFile = 4 << 20

// trustCmd is one run of `camftpd trust`: the server slot it trusts for,
// the trust store, and where it asks and reports.
type trustCmd struct {
	ctx       context.Context
	cfg       *Config
	srv       Server
	store     *tlspolicy.TrustStore
	in        io.Reader
	out, errw io.Writer
	yes       bool
	now       time.Time
}

// cmdTrust is `camftpd trust`: -server NAME fetches the server's
// certificate, shows it and pins it on confirmation; -import FILE trusts
// a CA (a root for that server) or pins a server certificate from a file;
// -list shows the trust store.
func cmdTrust(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, path := newFlags("trust", stderr)
	name := fs.String("server", "", "server slot to trust for (default: the active one)")
	file := fs.String("import", "", "certificate file (PEM or DER): a CA becomes a root for the server, a server certificate is pinned")
	yes := fs.Bool("yes", false, "trust without asking (scripts); without it, trust asks on the terminal")
	list := fs.Bool("list", false, "list what camftpd trust has trusted")
	if fs.Parse(args) != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "camftpd trust: unexpected argument %q: give a certificate file as -import FILE\n", escName(fs.Arg(0)))
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	t := &trustCmd{ctx: ctx, cfg: cfg, store: tlspolicy.OpenTrustStore(trustStorePath(cfg)), in: stdin, out: stdout, errw: stderr, yes: *yes, now: time.Now()}
	if *list {
		return t.list()
	}
	idx := cfg.ActiveIndex()
	if *name != "" {
		idx = -1
		for i, s := range cfg.Servers {
			if s.Name == *name {
				idx = i
			}
		}
	}
	if idx < 0 {
		names := make([]string, len(cfg.Servers))
		for i, s := range cfg.Servers {
			names[i] = strconv.Quote(s.Name)
		}
		fmt.Fprintf(stderr, "camftpd trust: no [[server]] named %q in %s: use one of %s\n", escName(*name), cfg.Path, strings.Join(names, ", "))
		return 2
	}
	t.srv = cfg.Servers[idx]
	if *file != "" {
		return t.importFile(*file)
	}
	return t.fetch()
}

// fetch connects to the server under its version and suite rules, shows
// its certificate and what the policy says of it today, and pins it on
// confirmation.
func (t *trustCmd) fetch() int {
	s := t.srv
	opts := serverTLS(t.cfg, s)
	opts.Timeout = s.ConnectTimeout
	ctx, cancel := context.WithTimeout(t.ctx, s.ConnectTimeout+s.Timeout)
	defer cancel()
	f, err := tlspolicy.FetchCertificate(ctx, net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), opts)
	if err != nil {
		fmt.Fprintf(t.errw, "camftpd trust: server %q: %v\n", s.Name, err)
		return 2
	}
	leaf := f.Chain[0]
	fmt.Fprintf(t.out, "server %q: %s port %d, %s\ncertificate presented by the server:\n", s.Name, s.Host, s.Port, f.Negotiated)
	tlspolicy.DescribeCert(t.out, leaf, t.now, t.cfg.CertWarnDays)
	for _, c := range f.Chain[1:] {
		fmt.Fprintf(t.out, "  chain:        %s\n", escName(c.Subject.String()))
	}
	switch {
	case f.Verdict == nil && f.Pinned:
		fmt.Fprintf(t.out, "already trusted: it matches a pin of server %q; nothing to do\n", s.Name)
		return 0
	case f.Verdict == nil:
		fmt.Fprintf(t.out, "today: accepted on its chain and name; pinned, a renewed certificate is refused until it is trusted again\n")
	default:
		fmt.Fprintf(t.out, "today: refused: %s\n", escName(f.Verdict.Error()))
	}
	return t.trust([]*x509.Certificate{leaf}, false, "server")
}

// importFile trusts the certificates of a file: a server certificate is
// pinned (the CA certificates next to it are not needed then), CA
// certificates become roots of the server.
func (t *trustCmd) importFile(path string) int {
	data, err := readImport(path)
	if err == nil {
		var certs []*x509.Certificate
		if certs, err = tlspolicy.ParseImport(data); err == nil {
			return t.importCerts(path, certs)
		}
	}
	fmt.Fprintf(t.errw, "camftpd trust: %s: %v\n", escName(path), err)
	return 2
}

func (t *trustCmd) importCerts(path string, certs []*x509.Certificate) int {
	var leaves, cas []*x509.Certificate
	for _, c := range certs {
		if c.BasicConstraintsValid && c.IsCA {
			cas = append(cas, c)
		} else {
			leaves = append(leaves, c)
		}
	}
	if len(leaves) > 1 {
		fmt.Fprintf(t.errw, "camftpd trust: %s holds %d server certificates: give a file with the one of server %q\n", escName(path), len(leaves), t.srv.Name)
		return 2
	}
	if len(leaves) == 1 {
		fmt.Fprintf(t.out, "server certificate from %s, to pin for server %q (%s):\n", escName(path), t.srv.Name, t.srv.Host)
		tlspolicy.DescribeCert(t.out, leaves[0], t.now, t.cfg.CertWarnDays)
		if len(cas) > 0 {
			fmt.Fprintf(t.out, "the file's %d CA certificate(s) are not needed for a pinned certificate: not imported\n", len(cas))
		}
		return t.trust(leaves, false, path)
	}
	fmt.Fprintf(t.out, "CA certificate(s) from %s, to trust as roots of server %q (%s) only:\n", escName(path), t.srv.Name, t.srv.Host)
	for _, c := range cas {
		tlspolicy.DescribeCert(t.out, c, t.now, t.cfg.CertWarnDays)
	}
	return t.trust(cas, true, path)
}

// trust checks the certificates' dates, asks for confirmation and records
// them (pins, or CAs when ca), then tells a running daemon.
func (t *trustCmd) trust(certs []*x509.Certificate, ca bool, via string) int {
	for _, c := range certs {
		ex := tlspolicy.CertExpiry(c, t.now, t.cfg.CertWarnDays)
		switch ex.Class {
		case tlspolicy.ExpiryExpired, tlspolicy.ExpiryNotYetValid:
			fmt.Fprintf(t.errw, "camftpd trust: not trusted: %s\n", escName(ex.Msg))
			return 2
		case tlspolicy.ExpiryWarn:
			fmt.Fprintf(t.out, "warning: %s\n", escName(ex.Msg))
		}
	}
	what := fmt.Sprintf("Pin this certificate for server %q (%s)? It is then accepted for this host on its SHA-256 alone, whatever names it holds, until it changes.", t.srv.Name, t.srv.Host)
	if ca {
		what = fmt.Sprintf("Trust these CA certificate(s) for server %q (%s)? Certificates they issue for %s are then accepted.", t.srv.Name, t.srv.Host, t.srv.Host)
	}
	if code := t.confirm(what); code != 0 {
		return code
	}
	for _, c := range certs {
		tc := tlspolicy.TrustedFrom(c, t.srv.Name, via, t.now)
		add, word := t.store.Pin, "pinned"
		if ca {
			add, word = t.store.AddCA, "trusted CA"
		}
		added, err := add(t.srv.Host, tc)
		if err != nil {
			fmt.Fprintf(t.errw, "camftpd trust: cannot write the trust store %s: %v: check that the state folder is writable\n", t.store.Path(), err)
			return 2
		}
		if !added {
			fmt.Fprintf(t.out, "already trusted for server %q: %s\n", t.srv.Name, tc.Pin)
			continue
		}
		fmt.Fprintf(t.out, "%s %s for server %q (%s) in %s\n", word, tc.Pin, t.srv.Name, t.srv.Host, t.store.Path())
	}
	t.tellDaemon()
	return 0
}

// confirm asks on the terminal unless -yes; it returns 0 to go on, or the
// exit status.
func (t *trustCmd) confirm(what string) int {
	if t.yes {
		return 0
	}
	if !isTerminal(t.in) {
		fmt.Fprintf(t.errw, "camftpd trust: not trusted: no terminal to ask on: run it on a terminal, or add -yes to trust without asking\n")
		return 2
	}
	fmt.Fprintf(t.out, "%s [y/N] ", what)
	line, err := bufio.NewReader(t.in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a == "y" || a == "yes" {
		return 0
	}
	if err != nil && line == "" {
		fmt.Fprintf(t.out, "\n")
	}
	fmt.Fprintf(t.out, "not trusted\n")
	return 1
}

// tellDaemon asks a running daemon to lift a block on a certificate error
// (POST /trusted); its policies read the store at the next handshake.
func (t *trustCmd) tellDaemon() {
	body, err := socketDo(t.ctx, t.cfg.StatusSocket, http.MethodPost, "/trusted", nil)
	var ans map[string]string
	if err == nil {
		err = json.Unmarshal(body, &ans)
	}
	if err != nil {
		fmt.Fprintf(t.out, "no daemon answered on %s: camftpd uses it when it starts\n", t.cfg.StatusSocket)
		return
	}
	fmt.Fprintf(t.out, "the running daemon uses it from its next connection (%s)\n", escName(ans["ok"]))
}

// list prints the trust store, host by host.
func (t *trustCmd) list() int {
	entries, err := t.store.Entries()
	if err != nil {
		fmt.Fprintf(t.errw, "camftpd trust: %v: move it away and trust again\n", err)
		return 2
	}
	if len(entries) == 0 {
		fmt.Fprintf(t.out, "nothing trusted in %s\n", t.store.Path())
		return 0
	}
	hosts := make([]string, 0, len(entries))
	for h := range entries {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		for _, l := range []struct {
			word  string
			certs []tlspolicy.TrustedCert
		}{{"pinned", entries[h].Pins}, {"CA", entries[h].CAs}} {
			for _, c := range l.certs {
				fmt.Fprintf(t.out, "%s  %-6s  %s  %s  expires %s  (server %q, from %s, %s)\n", escName(h), l.word, c.Pin,
					escName(c.Subject), c.NotAfter.Format(time.DateOnly), escName(c.Slot), escName(c.Via), c.Added.Format(time.DateOnly))
			}
		}
	}
	return 0
}

func readImport(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %s", unwrapPathErr(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImportFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %w", err)
	}
	return data, nil
}

// printCertStatus prints the server certificate's expiry and how it was
// accepted (status, under the tls line).
func printCertStatus(w io.Writer, t *TLSInfo) {
	if t == nil || t.CertNotAfter.IsZero() {
		return
	}
	how := "chain and name"
	if t.Pinned {
		how = "pin"
	}
	fmt.Fprintf(w, "tls cert:   expires %s (%d days left), accepted on its %s\n", t.CertNotAfter.UTC().Format(time.DateOnly), t.CertDaysLeft, how)
	if t.CertWarning != "" {
		fmt.Fprintf(w, "tls cert warning: %s\n", escName(t.CertWarning))
	}
}
