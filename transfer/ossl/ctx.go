//go:build openssl

package ossl

// #cgo LDFLAGS: -lssl -lcrypto
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Ciphers12 is the OpenSSL cipher list of the spec's 13 suites, in the
// spec's order (tlspolicy.Table's OpenSSL names).
const Ciphers12 = "AES256-SHA256:AES128-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-SHA384:" +
	"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
	"ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:DHE-RSA-AES256-GCM-SHA384:" +
	"DHE-RSA-AES256-SHA256:DHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256"

// Suites13 are the TLS 1.3 suites offered: AES-GCM only (NIST SP 800-52r2
// lists no ChaCha20-Poly1305 for TLS 1.3).
const Suites13 = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"

// DefaultMinDHBits is the smallest DHE group accepted (Logjam).
const DefaultMinDHBits = 2048

// Config sets up a Ctx. The zero value offers the 13 suites in TLS 1.2,
// the two AES-GCM suites in TLS 1.3, and refuses DHE groups under 2048 bits.
type Config struct {
	Ciphers   string // TLS 1.2 cipher list (OpenSSL names); "" = Ciphers12
	Suites13  string // TLS 1.3 suites; "" = Suites13
	MaxTLS12  bool   // do not offer TLS 1.3
	MinDHBits int    // 0 = DefaultMinDHBits
}

// Ctx is an SSL_CTX. Connections keep their own reference: Free may be
// called while they are open.
type Ctx struct {
	ctx       *C.SSL_CTX
	minDHBits int
}

// NewCtx makes a client SSL_CTX from cfg.
func NewCtx(cfg Config) (*Ctx, error) {
	if cfg.Ciphers == "" {
		cfg.Ciphers = Ciphers12
	}
	if cfg.Suites13 == "" {
		cfg.Suites13 = Suites13
	}
	if cfg.MinDHBits == 0 {
		cfg.MinDHBits = DefaultMinDHBits
	}
	maxV := C.int(C.TLS1_3_VERSION)
	if cfg.MaxTLS12 {
		maxV = C.TLS1_2_VERSION
	}
	c12, c13 := C.CString(cfg.Ciphers), C.CString(cfg.Suites13)
	defer C.free(unsafe.Pointer(c12))
	defer C.free(unsafe.Pointer(c13))
	var e C.cam_err
	ctx := C.cam_ctx_new(c12, c13, maxV, &e)
	if ctx == nil {
		return nil, &Error{Kind: KindConfig, Msg: fmt.Sprintf("openssl: cipher list %q / TLS 1.3 suites %q refused: %s", cfg.Ciphers, cfg.Suites13, goMsg(&e))}
	}
	return &Ctx{ctx: ctx, minDHBits: cfg.MinDHBits}, nil
}

// Free drops the Ctx's reference to the SSL_CTX.
func (c *Ctx) Free() {
	if c.ctx != nil {
		C.SSL_CTX_free(c.ctx)
		c.ctx = nil
	}
}

// Offered returns the IANA ids of every suite the Ctx offers (TLS 1.3
// suites first, as OpenSSL lists them).
func (c *Ctx) Offered() []uint16 {
	n := int(C.cam_ctx_cipher_count(c.ctx))
	ids := make([]uint16, n)
	for i := range ids {
		ids[i] = uint16(C.cam_ctx_cipher_id(c.ctx, C.int(i)))
	}
	return ids
}

// Version is the version of the libssl in use: "3.0.20".
func Version() string {
	return C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION_STRING))
}

func goMsg(e *C.cam_err) string {
	s := C.GoString(&e.msg[0])
	if s == "" {
		return "no OpenSSL error queued"
	}
	// "error:0A0000C1:SSL routines::no shared cipher" -> keep the reason.
	if i := strings.LastIndex(s, ":"); i >= 0 && i+1 < len(s) {
		return s[i+1:] + " (" + s + ")"
	}
	return s
}
