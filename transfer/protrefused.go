package transfer

import (
	"context"
	"fmt"

	"github.com/camftpd/camftpd/tlspolicy"
)

// protFix is what to change on a server that refuses encrypted data
// connections.
const protFix = "enable TLS for data connections on the server, e.g. vsftpd force_local_data_ssl / ProFTPD TLSRequired on"

// loginRefused explains a login that goftp saw refused after the TLS
// handshake with code (goftp returns the reply without its command: USER,
// PASS, PBSZ 0 or PROT P). 536 answers PROT alone (RFC 2228); another
// refusal that is not the password's (530, 532) nor temporary (4xx) is
// asked again step by step with tlspolicy.WalkLogin. A refused PROT P or
// PBSZ is a TLSPolicy error naming it and the fix, a refused USER or PASS
// an Auth error: uploads block instead of parking every capture. It
// returns nil when the walk could not tell (classify then judges the
// reply alone).
func (c *Client) loginRefused(ctx context.Context, addr string, code int, err error) *Error {
	if code == 536 {
		return protRefused("PROT P", err)
	}
	if code < 500 || code == 530 || code == 532 {
		return nil
	}
	cfg := c.tls.Clone() // verification included (the policy's VerifyConnection)
	cfg.ClientSessionCache = nil
	r, refused, werr := tlspolicy.WalkLogin(ctx, addr, cfg, c.cfg.ConnectTimeout, c.cfg.User, c.cfg.Password)
	if werr != nil || !refused || r.Code/100 != 5 {
		return nil
	}
	re := &replyError{code: r.Code, msg: r.Text}
	if r.Cmd == "USER" || r.Cmd == "PASS" {
		// Never about one file: block (Auth) instead of parking each.
		return &Error{Class: Auth, Op: "login", Code: r.Code, Err: re,
			Msg: fmt.Sprintf("server refused the login at %s (server said: %s): check the user name, the password and the account on the server", r.Cmd, serverText(re))}
	}
	return protRefused(r.Cmd, re)
}

func protRefused(cmd string, err error) *Error {
	what := "PROT P (encrypted data connections)"
	if cmd == "PBSZ 0" {
		what = "PBSZ 0, which comes before PROT P (encrypted data connections)"
	}
	return &Error{Class: TLSPolicy, Op: "login", Code: codeOf(err), Err: err,
		Msg: fmt.Sprintf("server refuses %s: %s (server said: %s)", what, protFix, serverText(err))}
}
