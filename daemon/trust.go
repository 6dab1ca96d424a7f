package daemon

import (
	"net/http"
	"strings"

	"github.com/camftpd/camftpd/transfer"
)

// serveTrusted is POST /trusted, sent by `camftpd trust` after it changed
// the trust store: a block on a certificate error is lifted, so that the
// next connection tries again under the new trust (the policies read the
// store at every handshake). Other blocks stay.
func (d *Daemon) serveTrusted(w http.ResponseWriter, _ *http.Request) {
	lifted := d.trustChanged()
	msg := "trust store noted"
	if lifted != "" {
		msg = "certificate block lifted: " + lifted
	}
	writeJSON(w, map[string]string{"ok": msg})
}

// trustChanged lifts a block on a certificate error and returns its
// reason ("" when there was none).
func (d *Daemon) trustChanged() string {
	d.mu.Lock()
	reason := d.blocked
	d.mu.Unlock()
	if !strings.HasPrefix(reason, transfer.Certificate.String()+": ") {
		return ""
	}
	d.setState(func() {
		if d.blocked == reason {
			d.blocked = ""
		}
	})
	d.log.Info("trust store changed: certificate block lifted, the next connection tries again", "was", reason)
	return reason
}

// tlsWarnings is the text of a tls event: the suite's warning and the
// certificate's expiry warning.
func tlsWarnings(t *TLSInfo) string {
	var w []string
	for _, s := range []string{t.Warning, t.CertWarning} {
		if s != "" {
			w = append(w, s)
		}
	}
	return strings.Join(w, "; ")
}
