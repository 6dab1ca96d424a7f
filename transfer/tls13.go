package transfer

import (
	"context"
	"errors"

	"github.com/camftpd/camftpd/tlspolicy"
)

// dial is dialOnce, once more at TLS 1.2 when the TLS policy refused the
// TLS 1.3 handshake because the server chose ChaCha20 (mode recommended:
// tlspolicy.ErrTLS13NotNIST; nothing was sent after the handshake). The
// Client then stays at TLS 1.2 for good (the Policy caps its own Configs
// too), so a server that follows the client's suite order is not refused
// on every connection by a device whose Go puts ChaCha20 first (no AES
// hardware: armv7).
func (c *Client) dial(ctx context.Context) (*session, error) {
	s, err := c.dialOnce(ctx)
	if err == nil || !errors.Is(err, tlspolicy.ErrTLS13NotNIST) || c.tls12.Swap(true) {
		return s, err
	}
	c.log.Warn("TLS 1.3 refused by the TLS policy: connecting again with TLS 1.2", "err", tlspolicy.OneLine(err.Error()))
	s, err2 := c.dialOnce(ctx)
	if err2 == nil {
		return s, nil
	}
	var te *Error
	if errors.As(err2, &te) && te.Class == TLSPolicy {
		e := *te
		e.Msg += " (and in TLS 1.3 the server chose TLS_CHACHA20_POLY1305_SHA256, refused in mode recommended: make the server choose an AES-GCM suite in TLS 1.3, or set the TLS mode to compatible)"
		return nil, &e
	}
	return nil, err2
}
