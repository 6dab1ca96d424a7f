package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/secsy/goftp"
)

// Class says what the caller should do about a failed upload.
type Class int

const (
	// Transient: try again later (network, timeouts, 4xx replies). The
	// remote temporary file is kept so the next attempt resumes.
	Transient Class = iota
	// Permanent: the server refuses this file or path (550, 553, 501...);
	// retrying will not help until someone changes the server or the path.
	Permanent
	// Auth: the server refused the user name or password (530).
	Auth
	// TLSPolicy: the server and the TLS policy have nothing in common, the
	// server refuses explicit TLS, or refuses our data connections' TLS.
	// Other handshake failures (an alert such as internal_error, a reset
	// or EOF mid-handshake, a record that is not TLS) are Transient.
	TLSPolicy
	// Certificate: the server's certificate is not trusted (unknown CA,
	// name mismatch, expired, pin mismatch).
	Certificate
	// Local: the local file vanished, cannot be read or changed during
	// the upload, or Job.BeforeRename failed (nothing was renamed): try
	// again later.
	Local
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Auth:
		return "auth"
	case TLSPolicy:
		return "tls-policy"
	case Certificate:
		return "certificate"
	case Local:
		return "local"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Error is every error Upload returns. Its message is one line saying what
// went wrong and, where known, what to fix.
type Error struct {
	Class Class
	Op    string // what was being done, e.g. "connect", "STOR 2026-11-25/a.jpg"
	Code  int    // FTP reply code, 0 when the failure was not a reply
	Msg   string // one line: what is wrong and what to fix
	Err   error  // underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Msg == "" && e.Err != nil {
		b.WriteString(oneLine(e.Err.Error()))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: the Class of an *Error in its chain, or
// the class the error would get if Upload had returned it (so plain network
// errors are Transient). ClassOf(nil) is Transient; check err != nil first.
func ClassOf(err error) Class {
	var te *Error
	if errors.As(err, &te) {
		return te.Class
	}
	if err == nil {
		return Transient
	}
	return classify("", err).Class
}

// oneLine is tlspolicy.OneLine bounded in length: server or library text
// in a one-line message.
func oneLine(s string) string {
	s = tlspolicy.OneLine(s)
	const max = 240
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

// replyError is an unexpected FTP reply.
type replyError struct {
	code int
	msg  string
}

func (r *replyError) Error() string { return fmt.Sprintf("%d %s", r.code, oneLine(r.msg)) }

// codeOf returns the FTP reply code carried by err, or 0.
func codeOf(err error) int {
	var re *replyError
	if errors.As(err, &re) {
		return re.code
	}
	var ge goftp.Error
	if errors.As(err, &ge) {
		return ge.Code()
	}
	return 0
}

func serverText(err error) string {
	var re *replyError
	if errors.As(err, &re) {
		return fmt.Sprintf("%d %s", re.code, oneLine(re.msg))
	}
	var ge goftp.Error
	if errors.As(err, &ge) && ge.Code() != 0 {
		return fmt.Sprintf("%d %s", ge.Code(), oneLine(ge.Message()))
	}
	return oneLine(err.Error())
}

// classifyReply maps an FTP reply code to a class and a hint.
func classifyReply(code int) (Class, string) {
	switch {
	case code == 421:
		return Transient, "server closing or busy, will retry"
	case code == 425:
		return Transient, "server could not open the data connection, will retry"
	case code == 426:
		return Transient, "transfer aborted by the server, will resume"
	case code == 450:
		return Transient, "file busy on the server, will retry"
	case code == 451:
		return Transient, "server local error, will retry"
	case code == 452:
		return Transient, "server out of storage space: free space on the server; will retry"
	case code == 552:
		// RFC 959 calls 552 permanent, but servers use it for a full disk or
		// quota: the queue must wait, not park every capture.
		return Transient, "server storage or quota exceeded: free space on the server; will retry"
	case code == 522:
		return TLSPolicy, "server refused the TLS data connection: it requires TLS session reuse (vsftpd require_ssl_reuse, ProFTPD mod_tls) and the data connection did not resume the control session"
	case code == 534 || code == 533:
		return TLSPolicy, "server refused the request for TLS policy reasons: check the server's TLS settings"
	case code == 530 || code == 532:
		return Auth, "login refused: check user name and password"
	case code == 550:
		return Permanent, "not allowed or not found on the server: check the remote path and the user's write permission"
	case code == 553:
		return Permanent, "file name not allowed by the server: change the remote path template"
	case code == 501:
		return Permanent, "server rejected the path or argument: change the remote path template"
	case code == 500 || code == 502 || code == 504:
		return Permanent, "command not supported by the server"
	case code >= 400 && code < 500:
		return Transient, "temporary server error, will retry"
	case code >= 500:
		return Permanent, "server refused"
	}
	return Transient, "unexpected reply"
}

// classify turns any error into an *Error for operation op.
func classify(op string, err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		if te.Op == "" {
			c := *te
			c.Op = op
			return &c
		}
		return te
	}
	e := &Error{Class: Transient, Op: op, Err: err}
	var pe *tlspolicy.Error
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	var sre x509.SystemRootsError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		e.Msg = "canceled; the upload will resume from the server's temporary file"
	case errors.Is(err, context.DeadlineExceeded):
		e.Msg = "deadline exceeded; the upload will resume from the server's temporary file"
	case errors.As(err, &pe):
		switch pe.Kind {
		case tlspolicy.KindPolicy:
			e.Class = TLSPolicy
			if errors.Is(err, tlspolicy.ErrTLS13NotNIST) {
				e.Class = Transient // the Policy is capped at TLS 1.2 now: a retry connects (tls13.go)
			}
		case tlspolicy.KindCertificate:
			e.Class = Certificate
		default: // clock: the device clock is wrong; retry once it is set
			e.Class = Transient
		}
		// The policy's own message, with its fix at the end: one line
		// already, and not cut (oneLine's bound is for server text).
		e.Msg = tlspolicy.OneLine(pe.Error())
	case errors.As(err, &uae), errors.As(err, &sre):
		e.Class = Certificate
		e.Msg = "server certificate is signed by an unknown authority (" + oneLine(err.Error()) + "): import the server's CA certificate"
	case errors.As(err, &hne):
		e.Class = Certificate
		e.Msg = "server certificate does not match the host name (" + oneLine(err.Error()) + "): use the name in the certificate as host"
	case errors.As(err, &cie):
		e.Class = Certificate
		e.Msg = "server certificate is invalid (" + oneLine(err.Error()) + "): renew the server certificate or check the device clock"
	case errors.As(err, &cve):
		e.Class = Certificate
		e.Msg = "server certificate rejected (" + oneLine(err.Error()) + "): import the server's CA certificate"
	case codeOf(err) != 0:
		e.Code = codeOf(err)
		var hint string
		e.Class, hint = classifyReply(e.Code)
		e.Msg = hint + " (server said: " + serverText(err) + ")"
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		// Only reached for local files: remote "not found" arrives as a reply.
		e.Class = Local
		e.Msg = "local file: " + oneLine(err.Error())
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Msg = "connection refused: is the FTP server running on that host and port? will retry"
	case errors.As(err, &ne) && ne.Timeout():
		e.Msg = "timed out (" + oneLine(err.Error()) + "); will retry"
	case isTLSError(err):
		// An alert or a record that is not TLS, which the policy did not
		// explain (tlspolicy.Explain makes a refused suite or version a
		// KindPolicy error): a server glitch or someone on the path, not a
		// setting to fix. Blocking on it would let one forged alert stop
		// every upload until a reload.
		e.Msg = "TLS handshake failed (" + oneLine(err.Error()) + "); will retry (if it persists, run `camftpd check` to see what the server accepts)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		e.Msg = "connection closed by the server (" + oneLine(err.Error()) + "); will retry"
	default:
		e.Msg = oneLine(err.Error())
	}
	return e
}

func isTLSError(err error) bool {
	var ae tls.AlertError
	var op *net.OpError
	if errors.As(err, &ae) {
		return true
	}
	if errors.As(err, &op) && op.Op == "remote error" {
		return true
	}
	var rhe tls.RecordHeaderError
	return errors.As(err, &rhe)
}

// localErr wraps a local file problem.
func localErr(op string, err error, msg string) *Error {
	return &Error{Class: Local, Op: op, Msg: msg + ": " + oneLine(err.Error()), Err: err}
}
