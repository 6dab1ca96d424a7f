//go:build !openssl

package transfer

import (
	"context"

	"github.com/camftpd/camftpd/tlspolicy"
)

// Engine is the second TLS engine of this build: none (the default build
// is pure Go). The openssl build's (engine_openssl.go) is OpenSSL. It is
// an untyped nil, so tlspolicy.Options.Engine = Engine() stays nil.
func Engine() tlspolicy.Engine { return nil }

// dialEngine is never called in this build (no Policy has an engine).
func (c *Client) dialEngine(context.Context) (*session, error) {
	return nil, &Error{Class: TLSPolicy, Op: "connect", Msg: "this build has no second TLS engine: use the openssl build of camftpd"}
}
