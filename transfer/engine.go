package transfer

import (
	"context"
	"errors"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
)

// dialOnce connects with crypto/tls (dialGo), or with the openssl build's
// engine (dialEngine) when the server accepts none of crypto/tls's
// suites: the Go handshake ended with the server's "no common suite"
// outcome (tlspolicy.IsNoCommonSuite: a handshake_failure or
// insufficient_security alert; never a network error, a certificate error
// or a timeout), and the same call dials again with the engine, offering
// Policy.EngineCiphers. The Client then remembers it (viaEngine): later
// connects go straight to the engine until its handshake fails. A new
// Client (a config reload) tries crypto/tls first again.
func (c *Client) dialOnce(ctx context.Context) (*session, error) {
	if !c.engineUsable() {
		c.goDials.Add(1)
		s, err := c.dialGo(ctx)
		return s, c.noEngineHint(err)
	}
	if c.viaEngine.Load() {
		c.engineDials.Add(1)
		return c.dialEngine(ctx)
	}
	c.goDials.Add(1)
	s, err := c.dialGo(ctx)
	if err == nil || ctx.Err() != nil || !tlspolicy.IsNoCommonSuite(err) {
		return s, err
	}
	c.fallbacks.Add(1)
	c.log.Info("the server accepts none of crypto/tls's suites: connecting again with "+c.cfg.Policy.Engine().Name(), "err", tlspolicy.OneLine(err.Error()))
	c.engineDials.Add(1)
	return c.dialEngine(ctx)
}

// engineUsable reports whether this Client may use the engine: over TLS,
// with a Policy that has one (only the openssl build's Engine() does) and
// allows a suite crypto/tls lacks (mode recommended allows none: the
// engine would offer what crypto/tls offered, and the error is
// crypto/tls's, which names the mode).
func (c *Client) engineUsable() bool {
	if c.cfg.Plain || c.cfg.Policy == nil || c.cfg.Policy.Engine() == nil {
		return false
	}
	for _, id := range c.cfg.Policy.EngineSuites() {
		if s, _ := tlspolicy.Lookup(id); !s.Implemented {
			return true
		}
	}
	return false
}

// noEngineHint adds to a "no common suite" error of the default build
// that the openssl build has the suites crypto/tls lacks (not in mode
// recommended, which refuses them all the same).
func (c *Client) noEngineHint(err error) error {
	var te *Error
	if err == nil || Engine() != nil || c.cfg.Plain || !tlspolicy.IsNoCommonSuite(err) || !errors.As(err, &te) {
		return err
	}
	recOnly := true
	for _, id := range c.tls.CipherSuites {
		if s, _ := tlspolicy.Lookup(id); s.Class != tlspolicy.Recommended {
			recOnly = false
		}
	}
	if recOnly {
		return err
	}
	e := *te
	e.Msg += "; the openssl build of camftpd negotiates those DHE and AES-256-CBC suites too"
	return &e
}

// engineHandshake runs a data connection's TLS with the session's engine,
// resuming the control connection's session, bounded by Timeout and ctx;
// the policy checks it as it checks crypto/tls's (VerifyConnection).
func (s *session) engineHandshake(ctx context.Context, dc *dataConn) error {
	ec, err := s.eng.client(dc.raw)
	if err != nil {
		return err
	}
	dc.mu.Lock()
	if dc.aborted {
		dc.mu.Unlock()
		ec.Close()
		return context.Canceled
	}
	dc.ec, dc.c = ec, ec
	dc.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, s.c.cfg.Timeout)
	defer cancel()
	if err := ec.Handshake(hctx); err != nil {
		return err
	}
	cs, err := ec.ConnectionState()
	if err != nil {
		return err
	}
	return s.tls.VerifyConnection(cs)
}

// engineFinish ends an upload's data connection on the engine path: the
// engine's Close sends close_notify and reads until the server's (its TLS
// 1.3 tickets included) or its EOF, bounded by Timeout, then closes.
func (s *session) engineFinish(dc *dataConn) error {
	if err := dc.ec.SetWriteDeadline(time.Now().Add(s.c.cfg.Timeout)); err != nil {
		dc.ec.Close()
		s.setData(nil)
		return err
	}
	err := dc.ec.Close()
	s.setData(nil)
	return err
}

// engineName is the engine that made the session's control connection:
// "openssl", or "crypto/tls" ("" in plain FTP).
func (s *session) engineName() string {
	switch {
	case s.eng != nil:
		return s.eng.name()
	case s.tls != nil:
		return "crypto/tls"
	}
	return ""
}
