package daemon

import (
	"path/filepath"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
)

// trustStorePath is where `camftpd trust` records pins and CAs: the
// state folder, next to the queue (the config file is the user's and may
// be read-only).
func trustStorePath(cfg *Config) string {
	return filepath.Join(cfg.StateDir, tlspolicy.TrustStoreFile)
}

// serverTLS returns the TLS policy options of server s under cfg: its
// mode, version cap, CA files and pins, the trust store of `camftpd
// trust` and cert_warn_days, and the build's second TLS engine
// (transfer.Engine: OpenSSL in the openssl build, nil otherwise). Uploads,
// check and trust all build their policy from it, so they judge a
// certificate alike. The caller adds its Logger, Now and Timeout.
func serverTLS(cfg *Config, s Server) tlspolicy.Options {
	warn := cfg.CertWarnDays
	if warn == 0 {
		warn = -1 // cert_warn_days = 0: no warning (tlspolicy's 0 is its default)
	}
	return tlspolicy.Options{
		Mode: s.TLSMode, ServerName: s.Host, MaxTLS12: s.MaxTLS12, CAPEM: s.CAPEM, Pins: s.Pins,
		Trust: tlspolicy.OpenTrustStore(trustStorePath(cfg)), CertWarnDays: warn,
		Engine: transfer.Engine(),
	}
}
