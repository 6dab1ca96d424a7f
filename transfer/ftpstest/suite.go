package ftpstest

import "strings"

// SuiteServer returns the real server and options that accept the TLS 1.2
// suite named openssl (OpenSSL's name, as in tlspolicy's table) alone,
// with TLS 1.3 off: vsftpd with an RSA certificate, or an ECDSA one for
// the ECDHE-ECDSA suites; ProFTPD with the DH parameter file dhFile (2048
// bits: OpenSSL's own default security level refuses less) for the DHE
// suites, which vsftpd 3.0.3 cannot serve (it sets no DH parameters).
func SuiteServer(openssl, dhFile string) (server string, o RealOptions) {
	o = RealOptions{MaxTLS12: true, Ciphers: openssl, ECDSA: strings.Contains(openssl, "ECDSA")}
	if strings.HasPrefix(openssl, "DHE-") {
		o.Extra = []string{"TLSDHParamFile " + dhFile}
		return "proftpd", o
	}
	return "vsftpd", o
}
