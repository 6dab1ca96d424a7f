package tlspolicy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// TrustStoreFile is the trust store's file name in the daemon's state
// folder (next to the queue).
const TrustStoreFile = "trust.json"

// maxTrustFile bounds the trust store file.
const maxTrustFile = 4 << 20

// TrustStore is the file where `camftpd trust` records what the user
// trusted for a server, by host name (as configured, lower case): pinned
// certificates and imported CA certificates. The daemon's policies read it
// through Options.Trust and see a change at their next handshake (the
// file is stat'ed on each one and read again when it was replaced), so
// neither a reload nor a restart is needed. A missing file trusts nothing.
// It is safe for concurrent use.
type TrustStore struct {
	path string

	mu   sync.Mutex
	seen os.FileInfo // the file as last read (nil: missing or not read yet)
	snap trustSnap
}

// TrustedCert is one certificate of the trust store.
type TrustedCert struct {
	Pin       string    `json:"pin"` // "sha256/<base64>" of the whole certificate
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Slot      string    `json:"server,omitempty"` // the [[server]] name it was trusted for
	Added     time.Time `json:"added"`
	Via       string    `json:"via,omitempty"` // "server" (fetched from it) or the imported file's path
	PEM       string    `json:"pem"`
}

// TrustEntry is what is trusted for one host: pinned certificates (one of
// them must be the server's, and it replaces the chain and name checks)
// and CA certificates (trusted roots of that host only).
type TrustEntry struct {
	Pins []TrustedCert `json:"pins,omitempty"`
	CAs  []TrustedCert `json:"cas,omitempty"`
}

type trustFile struct {
	Version int                    `json:"version"`
	Hosts   map[string]*TrustEntry `json:"hosts"`
}

// trustSnap is the parsed file: per host, the pins' digests, the CA pool
// and the CAs' digests (a server presenting an imported certificate itself
// is that certificate: see Policy.verifyCert). gen changes on every read.
type trustSnap struct {
	gen   uint64
	err   error // the file could not be read or parsed: nothing in it is trusted
	hosts map[string]*hostTrust
}

type hostTrust struct {
	pins  [][]byte
	roots *x509.CertPool
	self  [][]byte // SHA-256 of each CA certificate
}

// OpenTrustStore returns the trust store at path; the file is read at the
// first lookup, and need not exist.
func OpenTrustStore(path string) *TrustStore { return &TrustStore{path: path} }

// Path returns the store's file.
func (s *TrustStore) Path() string { return s.path }

func trustKey(host string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(host), "[]"))
}

// lookup returns what is trusted for host, reading the file again when it
// was replaced since the last look, with the snapshot's generation and
// its read error.
func (s *TrustStore) lookup(host string) (*hostTrust, uint64, error) {
	if s == nil {
		return nil, 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s.seen != nil || s.snap.hosts != nil || s.snap.err != nil {
			s.seen, s.snap = nil, trustSnap{gen: s.snap.gen + 1}
		}
	case err != nil:
		s.seen, s.snap = nil, trustSnap{gen: s.snap.gen + 1, err: err}
	case s.seen == nil || !os.SameFile(s.seen, fi) || !fi.ModTime().Equal(s.seen.ModTime()) || fi.Size() != s.seen.Size():
		s.seen = fi
		s.snap = parseTrust(s.path, s.snap.gen+1)
	}
	return s.snap.hosts[trustKey(host)], s.snap.gen, s.snap.err
}

// parseTrust reads the store file into a snapshot of generation gen.
func parseTrust(path string, gen uint64) trustSnap {
	f, err := readTrustFile(path)
	if err != nil {
		return trustSnap{gen: gen, err: err}
	}
	snap := trustSnap{gen: gen, hosts: map[string]*hostTrust{}}
	for host, e := range f.Hosts {
		ht := &hostTrust{}
		for _, p := range e.Pins {
			d, err := ParsePin(p.Pin)
			if err != nil {
				return trustSnap{gen: gen, err: fmt.Errorf("host %q: %w", host, err)}
			}
			ht.pins = append(ht.pins, d)
		}
		for _, ca := range e.CAs {
			c, err := parseStoredPEM(ca.PEM)
			if err != nil {
				return trustSnap{gen: gen, err: fmt.Errorf("host %q: CA %q: %w", host, ca.Subject, err)}
			}
			if ht.roots == nil {
				ht.roots = x509.NewCertPool()
			}
			ht.roots.AddCert(c)
			sum := sha256.Sum256(c.Raw)
			ht.self = append(ht.self, sum[:])
		}
		snap.hosts[trustKey(host)] = ht
	}
	return snap
}

func parseStoredPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// readTrustFile reads and parses the store file; a missing file is an
// empty store.
func readTrustFile(path string) (*trustFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &trustFile{Version: 1, Hosts: map[string]*TrustEntry{}}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(data) > maxTrustFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxTrustFile)
	}
	var f trustFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s has version %d, this camftpd reads version 1", path, f.Version)
	}
	if f.Hosts == nil {
		f.Hosts = map[string]*TrustEntry{}
	}
	return &f, nil
}

// Entries returns the store's content by host.
func (s *TrustStore) Entries() (map[string]TrustEntry, error) {
	f, err := readTrustFile(s.path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]TrustEntry, len(f.Hosts))
	for h, e := range f.Hosts {
		out[h] = *e
	}
	return out, nil
}

// TrustedFrom describes c for the store: its pin, names and dates, and
// where it came from (slot: the [[server]] name; via: "server" or a file).
func TrustedFrom(c *x509.Certificate, slot, via string, now time.Time) TrustedCert {
	pin, _ := CertPins(c)
	return TrustedCert{Pin: pin, Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotBefore: c.NotBefore.UTC(),
		NotAfter: c.NotAfter.UTC(), Slot: slot, Added: now.UTC(), Via: via,
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))}
}

// Pin records c as the pinned certificate of host: from then on the host
// is accepted when it presents c (validity dates, version and suite still
// checked), and refused when it presents another certificate. It reports
// false when c was pinned for host already.
func (s *TrustStore) Pin(host string, c TrustedCert) (bool, error) {
	return s.add(host, c, func(e *TrustEntry) *[]TrustedCert { return &e.Pins })
}

// AddCA records c as a trusted root of host (for that host only). It
// reports false when c was there already.
func (s *TrustStore) AddCA(host string, c TrustedCert) (bool, error) {
	return s.add(host, c, func(e *TrustEntry) *[]TrustedCert { return &e.CAs })
}

func (s *TrustStore) add(host string, c TrustedCert, list func(*TrustEntry) *[]TrustedCert) (bool, error) {
	if _, err := parseStoredPEM(c.PEM); err != nil {
		return false, fmt.Errorf("certificate to trust: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := readTrustFile(s.path)
	if err != nil {
		return false, fmt.Errorf("%w: move it away and run camftpd trust again", err)
	}
	key := trustKey(host)
	e := f.Hosts[key]
	if e == nil {
		e = &TrustEntry{}
		f.Hosts[key] = e
	}
	l := list(e)
	if slices.ContainsFunc(*l, func(t TrustedCert) bool { return t.Pin == c.Pin }) {
		return false, nil
	}
	*l = append(*l, c)
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return false, err
	}
	return true, writeFileAtomic(s.path, append(data, '\n'))
}

// writeFileAtomic writes data to path by a temporary file, fsync and
// rename, then fsyncs the folder: a power cut leaves the old file or the
// new one, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".trust-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails once renamed: nothing to remove then
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// matchesAny reports whether sum is one of ds.
func matchesAny(sum []byte, ds [][]byte) bool {
	for _, d := range ds {
		if bytes.Equal(d, sum) {
			return true
		}
	}
	return false
}
