package transfer

import "crypto/tls"

// dataTLS returns the TLS config of a session's data connections: the
// control connection's (tcfg), offering under TLS 1.3 only the
// key-exchange group the server chose on the control connection (cs).
//
// crypto/tls sends key shares for its own first choices (X25519MLKEM768
// and X25519, whatever the order of CurvePreferences); a server that takes
// another group answers with a HelloRetryRequest, and every data
// connection then costs two ClientHellos, an unused ML-KEM and X25519 key
// generation, and one more round trip. vsftpd 3.0.3 takes only P-256: the
// retry was about a tenth of camftpd's CPU per file on the benchmark's
// 1,000 small files (BENCHMARKS.md, "Where the per-file CPU goes"). The
// server answers its data connections with the control connection's TLS
// settings, so it takes the same group; the group is one the policy
// offered, and nothing else of the policy changes. Should a server refuse
// it all the same, the session goes back to tcfg (see session.handshake).
func dataTLS(tcfg *tls.Config, cs tls.ConnectionState) *tls.Config {
	if cs.Version != tls.VersionTLS13 || cs.CurveID == 0 {
		return tcfg
	}
	d := tcfg.Clone() // shares the session cache and VerifyConnection
	d.CurvePreferences = []tls.CurveID{cs.CurveID}
	return d
}
